#include "io/h5ad_layers.h"

#include "io/h5ad_files.h"
#include "io/hdf5_util.h"

namespace pv::io {

DenseMatrix<float> read_dense_layer(const std::string& path, const std::string& name) {
  h5::Session session;
  const h5::Handle file = open_anndata_readonly(path);
  const std::string element = "layers/" + name;
  const std::string where = path + ": " + element;
  require(!name.empty() && name.find('/') == std::string::npos, PV_ERR_INVALID_ARGUMENT,
          where + ": a layer name must be non-empty and hold no '/'");
  const h5::NodeKind kind = h5::node_kind(file, element);
  if (kind == h5::NodeKind::kMissing) {
    std::string available;
    if (h5::node_kind(file, "layers") == h5::NodeKind::kGroup) {
      const h5::Handle layers = h5::check(H5Gopen2(file, "layers", H5P_DEFAULT), PV_ERR_FORMAT,
                                          "cannot open group " + path + ": layers");
      for (const std::string& layer : h5::child_names(layers)) available += (available.empty() ? "" : ", ") + layer;
    }
    fail(PV_ERR_INVALID_ARGUMENT,
         where + ": no such layer; layers in the file: " + (available.empty() ? "none" : available));
  }
  if (kind != h5::NodeKind::kDataset) {
    fail(PV_ERR_FORMAT, where + " is not a dense array (a sparse layer cannot be read here)");
  }
  const h5::Handle dataset = h5::check(H5Dopen2(file, element.c_str(), H5P_DEFAULT), PV_ERR_FORMAT,
                                       "cannot open dataset " + where);
  const h5::Readable source{dataset, false, where};
  const std::vector<int64_t> dims = h5::shape(source);
  if (dims.size() != 2 || !h5::type_info(source).is_numeric()) {
    fail(PV_ERR_FORMAT, where + " is not a 2-D numeric array");
  }
  DenseMatrix<float> matrix;
  matrix.rows = dims[0];
  matrix.cols = dims[1];
  matrix.values = h5::read_numeric<float>(source);
  return matrix;
}

}  // namespace pv::io
