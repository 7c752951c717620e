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

/* Annotations the statistics read, attached by the caller (a binding passing an AnnData). Each
 * replaces an entry of the same name. pv_dataset_set_obs: a numeric obs column of n_cells values
 * (e.g. "u_lib_size_raw", "s_lib_size_raw", the library sizes of MODEL.md). pv_dataset_set_obsm:
 * an n_cells x cols matrix (e.g. "X_pca" for the kNN graph, "X_umap" for the embedding).
 * pv_dataset_set_varm: an n_genes x cols matrix ("PCs": the loadings behind X_pca). Values must be
 * finite. Not to be called while another call uses the dataset or a model built on it. */
PV_API pv_status pv_dataset_set_obs(pv_dataset* dataset, const char* key, int64_t n, const double* values);
PV_API pv_status pv_dataset_set_obsm(pv_dataset* dataset, const char* key, int64_t rows, int64_t cols,
                                     const double* values);
PV_API pv_status pv_dataset_set_varm(pv_dataset* dataset, const char* key, int64_t rows, int64_t cols,
                                     const double* values);


/* ---- Options ---------------------------------------------------------------------------------
 * A pv_options is a list of key = value pairs (text, as Python writes them: "True", "None",
 * "NegativeBinomial", "0.01"). pv_model_create reads model keys: every PyroVelocity constructor
 * parameter of the seed (input_type, shared_time, model_type, guide_type, likelihood, t_scale_on,
 * plate_size, latent_factor, latent_factor_operation, inducing_point_size, latent_factor_size,
 * include_prior, use_gpu, init, num_aux_cells, only_cell_times, decoder_on, add_offset,
 * correct_library_size, cell_specific_kinetics, kinetics_num) and the engine's (seed, state_mode
 * = marginal|sampled, entropy = analytic|sample, guide_rank, num_particles,
 * init_read_depth_at_library). A value the engine does not implement is PV_ERR_UNSUPPORTED naming
 * the option; an unknown key is PV_ERR_INVALID_ARGUMENT. pv_model_train reads training keys:
 * method = train | train_faster | train_faster_with_batch (default train_faster), max_epochs, lr,
 * lr_decay, batch_size, train_size, valid_size, improvement, patience, log_every, early_stopping,
 * early_stopping_patience, seed. */
typedef struct pv_options pv_options;
PV_API pv_status pv_options_create(pv_options** out);
PV_API pv_status pv_options_set(pv_options* options, const char* key, const char* value);
PV_API void pv_options_free(pv_options* options);

/* ---- Models ----------------------------------------------------------------------------------
 * A pv_model is the model and guide bound to a dataset (which it keeps alive: the dataset may be
 * freed first), with its loss history. */
typedef struct pv_model pv_model;

PV_API pv_status pv_model_create(const pv_dataset* data, const pv_options* options, pv_model** out);

/* Called after every epoch; return non-zero to cancel (pv_model_train then returns
 * PV_ERR_CANCELLED, and the model keeps the parameters of the last completed epoch).
 * validation_loss is NaN without a validation split. */
typedef int32_t (*pv_progress_fn)(void* user_data, int64_t epoch, int64_t max_epochs, double loss,
                                  double validation_loss);

/* Trains from the current parameters (options may be NULL: train_faster defaults). */
PV_API pv_status pv_model_train(pv_model* model, const pv_options* options, pv_progress_fn progress,
                                void* user_data);

/* The epoch losses so far (-ELBO / (2 cells genes)). Writes min(count, capacity) values and the
 * full count to *count; out may be NULL to ask for the count. kind 0: training, 1: validation. */
PV_API pv_status pv_model_loss_history(const pv_model* model, int32_t kind, double* out, int64_t capacity,
                                       int64_t* count);

PV_API pv_status pv_model_save(const pv_model* model, const char* path);
/* Loads a saved model onto data, which must have the same genes in the same order (and the same
 * cells); a mismatch is refused with a message saying what differs. */
PV_API pv_status pv_model_load(const char* path, const pv_dataset* data, pv_model** out);
PV_API void pv_model_free(pv_model* model);

/* ---- Posterior samples -----------------------------------------------------------------------
 * pv_model_sample draws num_samples posterior samples for the given cells (NULL, 0: all), in
 * chunks of batch_size cells (0: all at once; the numbers do not depend on it). Keys and shapes
 * are MODEL.md section 6's: (S, 1, G) gene sites, (S, C, 1) cell sites, (S, C, G) cell_gene_state,
 * ut, st, u, s. */
typedef struct pv_posterior pv_posterior;
PV_API pv_status pv_model_sample(const pv_model* model, int64_t num_samples, uint64_t seed, const int64_t* cells,
                                 int64_t n_cells, int64_t batch_size, pv_posterior** out);
PV_API int64_t pv_posterior_key_count(const pv_posterior* posterior);
/* The i-th key, or NULL when i is out of range; lives as long as the posterior. */
PV_API const char* pv_posterior_key(const pv_posterior* posterior, int64_t i);
PV_API pv_status pv_posterior_shape(const pv_posterior* posterior, const char* key, int64_t shape[3]);
/* Copies the key's values (row-major, float32) into out, which holds capacity floats. */
PV_API pv_status pv_posterior_copy(const pv_posterior* posterior, const char* key, float* out, int64_t capacity);
PV_API void pv_posterior_free(pv_posterior* posterior);
/* An empty posterior to fill with pv_posterior_set (a binding handing back samples it holds). */
PV_API pv_status pv_posterior_create(pv_posterior** out);
/* Stores a copy of shape[0] x shape[1] x shape[2] float32 values under key (replacing it). */
PV_API pv_status pv_posterior_set(pv_posterior* posterior, const char* key, const int64_t shape[3],
                                  const float* values);

/* ---- Posterior statistics --------------------------------------------------------------------
 * compute_statistics_from_posterior_samples (MODEL.md section 7, STATISTICS.md). The dataset must
 * carry obsm "X_<basis>" (the embedding, >= 2 columns) and obsm "X_pca" (the kNN space; computed
 * from log expression when absent); varm "PCs" gives the loadings of the pca_* keys (computed the
 * same way when absent). Options keys: vector_field_basis (default "umap"), n_neighbors (30),
 * seed (0, for the PCA), device ("cpu", "cuda" or "auto": where the velocity graphs and their
 * projection run; "cuda" without a GPU is PV_ERR_NO_DEVICE). pv_statistics_compute reads the keys ut, st, s, beta, gamma, cell_time and
 * u_scale (1 when absent) of a posterior over every cell of the dataset; pv_model_statistics draws
 * num_samples samples with seed itself, streaming, so S x C x G is never held.
 * Keys: vector_field_posterior_samples (S, C, 2), vector_field_posterior_mean (C, 2),
 * embeds_magnitude, embeds_angle, original_spaces_embeds_magnitude (S, C), fdri (C), ut_mean,
 * st_mean, ut_std, st_std (C, G), pca_vector_field_posterior_samples (S, C, 2), pca_embeds_angle
 * (S, C), pca_fdri (C), and the gene ranking: mean_mae, time_correlation, mean_mae_rank,
 * time_correlation_rank (G) and genes (the selected genes' 0-based column indices). */
typedef struct pv_statistics pv_statistics;
PV_API pv_status pv_statistics_compute(const pv_dataset* data, const pv_posterior* posterior,
                                       const pv_options* options, pv_statistics** out);
PV_API pv_status pv_model_statistics(const pv_model* model, int64_t num_samples, uint64_t seed,
                                     const pv_options* options, pv_statistics** out);
PV_API int64_t pv_statistics_key_count(const pv_statistics* statistics);
/* The i-th key, or NULL when i is out of range; lives as long as the statistics. */
PV_API const char* pv_statistics_key(const pv_statistics* statistics, int64_t i);
/* The key's number of dimensions (1 to 3) and its shape (unused entries set to 1). */
PV_API pv_status pv_statistics_shape(const pv_statistics* statistics, const char* key, int32_t* ndim,
                                     int64_t shape[3]);
/* Copies the key's values (row-major, double) into out, which holds capacity doubles. */
PV_API pv_status pv_statistics_copy(const pv_statistics* statistics, const char* key, double* out,
                                    int64_t capacity);
PV_API void pv_statistics_free(pv_statistics* statistics);

#ifdef __cplusplus
}
#endif

#endif /* PVENGINE_H */
