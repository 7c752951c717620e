// Internal to io/: RAII over libhdf5's C handles and the few typed reads and writes the h5ad
// reader and writer share. Only io/*.cpp include this (and so <hdf5.h>); public headers do not.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/error.h"

namespace pv::io::h5 {

// Owns one hid_t (file, group, dataset, attribute, datatype, dataspace or property list) and
// closes it with the matching H5*close, so that no error path leaks a handle.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.release();
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  hid_t release() {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }
  // Closes now; returns false when HDF5 reports a failure (a file that could not be flushed).
  bool close();
  void reset() { close(); }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Held for the duration of every public io call: serialises libhdf5 use within the process and
// turns off HDF5's automatic error printing (restoring the caller's handler afterwards), so the
// library never prints to stderr; failures become pv::Error messages instead.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  std::unique_lock<std::recursive_mutex> lock_;
  H5E_auto2_t saved_handler_ = nullptr;
  void* saved_data_ = nullptr;
};

// The most specific description on HDF5's current error stack ("" if empty), to append to a
// message: "(HDF5: unable to open file)".
std::string error_detail();

// Throws pv::Error(status, message + HDF5's detail) when id < 0; else returns it wrapped.
Handle check(hid_t id, pv_status status, const std::string& message);
void check(herr_t result, pv_status status, const std::string& message);

// ---- Navigation ----------------------------------------------------------------------------

enum class NodeKind { kMissing, kGroup, kDataset, kOther };

// What `path` (relative to loc, any depth) is; kMissing when any component is absent.
NodeKind node_kind(hid_t loc, const std::string& path);
// The names of a group's children, in name order.
std::vector<std::string> child_names(hid_t group);

// ---- Types ---------------------------------------------------------------------------------

template <class T> hid_t native_type();
template <> inline hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> inline hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> inline hid_t native_type<int8_t>() { return H5T_NATIVE_INT8; }
template <> inline hid_t native_type<int16_t>() { return H5T_NATIVE_INT16; }
template <> inline hid_t native_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> inline hid_t native_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> inline hid_t native_type<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> inline hid_t native_type<uint16_t>() { return H5T_NATIVE_UINT16; }
template <> inline hid_t native_type<uint32_t>() { return H5T_NATIVE_UINT32; }
template <> inline hid_t native_type<uint64_t>() { return H5T_NATIVE_UINT64; }

// The little-endian type written to disk for T (what numpy/h5py write on every platform).
template <class T> hid_t file_type();
template <> inline hid_t file_type<float>() { return H5T_IEEE_F32LE; }
template <> inline hid_t file_type<double>() { return H5T_IEEE_F64LE; }
template <> inline hid_t file_type<int8_t>() { return H5T_STD_I8LE; }
template <> inline hid_t file_type<int16_t>() { return H5T_STD_I16LE; }
template <> inline hid_t file_type<int32_t>() { return H5T_STD_I32LE; }
template <> inline hid_t file_type<int64_t>() { return H5T_STD_I64LE; }

// What an element holds, enough to choose how to read it.
struct TypeInfo {
  H5T_class_t type_class = H5T_NO_CLASS;
  size_t size = 0;
  bool is_signed = false;
  bool is_bool = false;  // h5py's boolean: an enum over int8 {FALSE, TRUE}
  bool is_variable_string = false;
  // numpy's name: "float32", "int64", "uint16", "bool", "string", or "compound", "reference"...
  std::string name() const;
  bool is_numeric() const {
    return type_class == H5T_INTEGER || type_class == H5T_FLOAT || type_class == H5T_ENUM;
  }
};

// A dataset or an attribute: both have a type, a dataspace and a read call.
struct Readable {
  hid_t id;
  bool is_attribute;
  std::string what;  // for messages: "pancreas.h5ad: obs/clusters/codes"
};

TypeInfo type_info(const Readable& source);
std::vector<int64_t> shape(const Readable& source);  // empty for a scalar
int64_t element_count(const Readable& source);

// Reads every element, converting to T (HDF5 converts integer and float widths; enums read as
// their integer values). PV_ERR_FORMAT when the element is not numeric.
template <class T>
std::vector<T> read_numeric(const Readable& source);
// Reads every element of a string dataset or attribute, variable- or fixed-length.
std::vector<std::string> read_strings(const Readable& source);

// Attribute helpers on an object; nullopt when the attribute does not exist.
bool has_attribute(hid_t object, const std::string& name);
std::optional<std::string> string_attribute(hid_t object, const std::string& name,
                                            const std::string& what);
std::optional<std::vector<std::string>> string_array_attribute(hid_t object, const std::string& name,
                                                               const std::string& what);
std::optional<std::vector<int64_t>> int_array_attribute(hid_t object, const std::string& name,
                                                        const std::string& what);

// ---- Writing -------------------------------------------------------------------------------

// Scalar variable-length UTF-8 string attribute, replacing any existing one of that name.
void write_string_attribute(hid_t object, const std::string& name, const std::string& value);
void write_string_array_attribute(hid_t object, const std::string& name,
                                  const std::vector<std::string>& values);
// A 0-length float64 array: anndata's "column-order" for a frame without columns.
void write_empty_float_attribute(hid_t object, const std::string& name);
void write_int64_array_attribute(hid_t object, const std::string& name,
                                 const std::vector<int64_t>& values);
// h5py's boolean (enum over int8 {FALSE=0, TRUE=1}), scalar.
void write_bool_attribute(hid_t object, const std::string& name, bool value);
void write_encoding(hid_t object, const std::string& type, const std::string& version);

Handle create_group(hid_t loc, const std::string& name, const std::string& what);

// Datasets: each returns the new dataset, to attach its encoding attributes.
// An n-D numeric dataset of T; large ones are chunked and gzip-compressed.
template <class T>
Handle write_array(hid_t loc, const std::string& name, const std::vector<hsize_t>& dims,
                    const T* values, const std::string& what);
// A 1-D variable-length UTF-8 string dataset.
Handle write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                     const std::string& what);
template <class T>
Handle write_scalar(hid_t loc, const std::string& name, T value, const std::string& what);
Handle write_string_scalar(hid_t loc, const std::string& name, const std::string& value,
                           const std::string& what);

// Copies every attribute of `from` onto `to` (types, shapes and values as they are).
void copy_attributes(hid_t from, hid_t to, const std::string& what);

}  // namespace pv::io::h5
