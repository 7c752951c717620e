/* pvengine: Bayesian RNA-velocity inference (the Pyro-Velocity model) in C++/CUDA.
 *
 * The whole public C ABI. C99; includes only <stddef.h> and <stdint.h>.
 *
 * Conventions
 * - Every call that can fail returns a pv_status (PV_OK = 0). On failure,
 *   pv_last_error() returns a message naming the function and the argument at fault; it is
 *   per thread and lives until the next failing call on that thread.
 * - Objects are opaque handles with a create/free pair; pv_*_free(NULL) does nothing.
 * - Arrays cross by copy: the caller owns what it passes and the buffers it receives into.
 * - Nothing crosses this boundary as an exception, an abort or a print.
 */
#ifndef PVENGINE_H
#define PVENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define PV_API __declspec(dllexport)
#else
#define PV_API __attribute__((visibility("default")))
#endif

#define PV_VERSION_MAJOR 0
#define PV_VERSION_MINOR 1
#define PV_VERSION_PATCH 0
/* major * 10000 + minor * 100 + patch */
#define PV_VERSION_NUMBER (PV_VERSION_MAJOR * 10000 + PV_VERSION_MINOR * 100 + PV_VERSION_PATCH)

/* Status codes. Values are explicit and append-only. */
typedef int32_t pv_status;
enum {
  PV_OK = 0,
  PV_ERR_INVALID_ARGUMENT = 1, /* a value, shape or option the call cannot accept */
  PV_ERR_OUT_OF_MEMORY = 2,    /* host memory */
  PV_ERR_IO = 3,               /* a file cannot be opened, read, written or renamed */
  PV_ERR_FORMAT = 4,           /* a file is not what it must be (not HDF5, not AnnData, corrupt) */
  PV_ERR_UNSUPPORTED = 5,      /* a valid option this build or engine does not implement */
  PV_ERR_NO_DEVICE = 6,        /* CUDA asked for, but not compiled in or no device present */
  PV_ERR_DEVICE_OUT_OF_MEMORY = 7,
  PV_ERR_CUDA = 8,             /* any other CUDA runtime or library error */
  PV_ERR_CANCELLED = 9,        /* a progress callback asked to stop */
  PV_ERR_NUMERIC = 10,         /* NaN or infinite loss, failed numerical step */
  PV_ERR_STATE = 11,           /* the call does not fit the object's state (e.g. not trained) */
  PV_ERR_INTERNAL = 12         /* a bug: please report it with the message */
};

/* A static English description of a status code; never NULL. */
PV_API const char* pv_status_string(pv_status status);

/* The message of the last failed call on this thread ("" if none). */
PV_API const char* pv_last_error(void);

/* PV_VERSION_NUMBER of the library actually loaded (compare with the header's). */
PV_API int32_t pv_version_number(void);

/* Build facts, e.g. "version=0.1.0 commit=abc1234 cuda=on sm_90 hdf5=1.10.8 openmp=on". */
PV_API const char* pv_build_info(void);

/* Transcription dynamics (MODEL.md section 2) for n independent inputs: u(tau), s(tau) from
 * (u0, s0) with rates alpha, beta, gamma. Every input must be finite; tau, alpha, beta and gamma
 * must be non-negative. Smooth and accurate through gamma == beta. */
PV_API pv_status pv_mrna_dynamics(int64_t n, const double* tau, const double* u0,
                                  const double* s0, const double* alpha, const double* beta,
                                  const double* gamma, double* u_out, double* s_out);

/* ---- Datasets ------------------------------------------------------------------------------
 * A pv_dataset holds the spliced and unspliced counts (cells x genes) a model is fitted to, with
 * the cell and gene annotations of the file it came from. Counts must be finite, non-negative
 * whole numbers; a CSR matrix needs indptr[0] == 0, indptr non-decreasing and ending at its
 * number of stored entries, and every column index in [0, n_genes). Anything else is refused
 * with PV_ERR_INVALID_ARGUMENT and a message naming the array, the entry and the value.
 * Constructors set *out to NULL on failure. */
typedef struct pv_dataset pv_dataset;

/* Reads an .h5ad (AnnData) file without modifying it. spliced_layer and unspliced_layer name
 * layers of the file; NULL or "auto" takes raw_spliced/raw_unspliced when both exist, else
 * spliced/unspliced. PV_ERR_IO: the file is missing or unreadable; PV_ERR_FORMAT: not HDF5, not
 * AnnData, or malformed; PV_ERR_INVALID_ARGUMENT: a layer is absent or its counts are unusable;
 * PV_ERR_UNSUPPORTED: this library was built without HDF5. */
PV_API pv_status pv_dataset_open_h5ad(const char* path, const char* spliced_layer,
                                      const char* unspliced_layer, pv_dataset** out);

/* From two row-major n_cells x n_genes arrays (copied). */
PV_API pv_status pv_dataset_from_dense(int64_t n_cells, int64_t n_genes, const double* spliced,
                                       const double* unspliced, pv_dataset** out);

/* From two CSR matrices (copied): each indptr has n_cells + 1 entries; its indices and data have
 * indptr[n_cells] entries. */
PV_API pv_status pv_dataset_from_csr(int64_t n_cells, int64_t n_genes, const int64_t* s_indptr,
                                     const int32_t* s_indices, const double* s_data,
                                     const int64_t* u_indptr, const int32_t* u_indices,
                                     const double* u_data, pv_dataset** out);

/* The number of cells (rows) and genes (columns). Either output pointer may be NULL. */
PV_API pv_status pv_dataset_shape(const pv_dataset* dataset, int64_t* n_cells, int64_t* n_genes);

PV_API void pv_dataset_free(pv_dataset* dataset);

#ifdef __cplusplus
}
#endif

#endif /* PVENGINE_H */
