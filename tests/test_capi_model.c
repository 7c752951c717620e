/* The model C ABI used the way an R or Julia binding would: a dataset from the caller's arrays,
 * options by text, training with a progress callback, posterior samples copied out, save/load,
 * cancellation, refused options and NULL handles. Strict C99, linking libpvengine only.
 *
 * usage: test_capi_model [TEMP_DIR]   (the model file goes there; default /tmp) */
#define _POSIX_C_SOURCE 200809L /* mkstemp, close */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pvengine.h"

enum { kCells = 60, kGenes = 8, kSamples = 4 };

static int failures = 0;

static void expect_at(int ok, const char* what, int line) {
  if (ok) return;
  fprintf(stderr, "test_capi_model.c:%d: FAILED: %s\n", line, what);
  ++failures;
}
#define EXPECT(cond, what) expect_at((cond) ? 1 : 0, (what), __LINE__)

/* A status check that shows both codes and the library's message when it fails. */
static int expect_status_at(pv_status got, pv_status want, const char* what, int line) {
  if (got == want) return 1;
  fprintf(stderr, "test_capi_model.c:%d: FAILED: %s: status %d (%s), expected %d (%s); last error '%s'\n", line, what,
          (int)got, pv_status_string(got), (int)want, pv_status_string(want), pv_last_error());
  ++failures;
  return 0;
}
#define EXPECT_STATUS(got, want, what) expect_status_at((got), (want), (what), __LINE__)

static void expect_error_mentions_at(const char* fragment, const char* what, int line) {
  if (strstr(pv_last_error(), fragment) != NULL) return;
  fprintf(stderr, "test_capi_model.c:%d: FAILED: %s: last error '%s' lacks '%s'\n", line, what, pv_last_error(),
          fragment);
  ++failures;
}
#define EXPECT_ERROR_MENTIONS(fragment, what) expect_error_mentions_at((fragment), (what), __LINE__)

/* Counts that move smoothly along a fake time (the cell index): unspliced rise then fall,
 * spliced rise; every gene at its own rate, with scattered zeros. Integer arithmetic only, so the
 * data are the same everywhere. */
static void make_counts(int64_t n_cells, int64_t n_genes, double* spliced, double* unspliced) {
  int64_t c, g;
  for (c = 0; c < n_cells; ++c) {
    for (g = 0; g < n_genes; ++g) {
      const int64_t at = c * n_genes + g;
      unspliced[at] = (double)((c * (n_cells - c) * (g + 2)) / 450 + (c + g) % 3);
      spliced[at] = (double)((c * c * (g + 3)) / 600 + (2 * c + g) % 4);
      if ((c * 13 + g * 7) % 10 == 0) unspliced[at] = 0.0;
      if ((c * 11 + g * 5) % 12 == 0) spliced[at] = 0.0;
    }
  }
}

static pv_dataset* make_dataset(int64_t n_cells, int64_t n_genes) {
  double* spliced = malloc(sizeof(double) * (size_t)(n_cells * n_genes));
  double* unspliced = malloc(sizeof(double) * (size_t)(n_cells * n_genes));
  pv_dataset* data = NULL;
  if (!spliced || !unspliced) {
    free(spliced);
    free(unspliced);
    return NULL;
  }
  make_counts(n_cells, n_genes, spliced, unspliced);
  EXPECT_STATUS(pv_dataset_from_dense(n_cells, n_genes, spliced, unspliced, &data), PV_OK, "pv_dataset_from_dense");
  free(spliced);
  free(unspliced);
  return data;
}

/* A one-key options handle, for the refusal checks. */
static pv_options* options_with(const char* key, const char* value) {
  pv_options* options = NULL;
  if (pv_options_create(&options) != PV_OK) return NULL;
  if (pv_options_set(options, key, value) != PV_OK) {
    pv_options_free(options);
    return NULL;
  }
  return options;
}

struct progress_log {
  int64_t calls;
  int64_t cancel_at; /* epoch at which to return non-zero; -1: never */
  int64_t last_epoch, last_max_epochs;
  int all_finite;
};

static int32_t on_progress(void* user_data, int64_t epoch, int64_t max_epochs, double loss, double validation_loss) {
  struct progress_log* log = user_data;
  (void)validation_loss;
  ++log->calls;
  log->last_epoch = epoch;
  log->last_max_epochs = max_epochs;
  if (!isfinite(loss)) log->all_finite = 0;
  return epoch == log->cancel_at ? 1 : 0;
}

static struct progress_log fresh_log(int64_t cancel_at) {
  struct progress_log log;
  log.calls = 0;
  log.cancel_at = cancel_at;
  log.last_epoch = -1;
  log.last_max_epochs = -1;
  log.all_finite = 1;
  return log;
}

static pv_status train(pv_model* model, const char* method, const char* max_epochs, struct progress_log* log) {
  pv_options* options = NULL;
  pv_status status;
  if (pv_options_create(&options) != PV_OK) return PV_ERR_OUT_OF_MEMORY;
  pv_options_set(options, "method", method);
  pv_options_set(options, "max_epochs", max_epochs);
  status = pv_model_train(model, options, log ? on_progress : NULL, log);
  pv_options_free(options);
  return status;
}

/* The whole history of one kind, malloc'd (NULL when empty or on failure). */
static double* loss_history(const pv_model* model, int32_t kind, int64_t* count) {
  double* values;
  *count = -1;
  if (!EXPECT_STATUS(pv_model_loss_history(model, kind, NULL, 0, count), PV_OK, "loss history count")) return NULL;
  if (*count <= 0) return NULL;
  values = malloc(sizeof(double) * (size_t)*count);
  if (!values) return NULL;
  EXPECT_STATUS(pv_model_loss_history(model, kind, values, *count, count), PV_OK, "loss history values");
  return values;
}

/* A key's values, malloc'd; *n gets their number (0 on failure). */
static float* copy_key(const pv_posterior* posterior, const char* key, int64_t* n) {
  int64_t shape[3] = {0, 0, 0};
  float* values;
  *n = 0;
  if (!EXPECT_STATUS(pv_posterior_shape(posterior, key, shape), PV_OK, key)) return NULL;
  *n = shape[0] * shape[1] * shape[2];
  values = malloc(sizeof(float) * (size_t)(*n > 0 ? *n : 1));
  if (!values) return NULL;
  if (!EXPECT_STATUS(pv_posterior_copy(posterior, key, values, *n), PV_OK, key)) *n = 0;
  return values;
}

/* Every key of a has the same values, bit for bit, in b. */
static int same_values(const pv_posterior* a, const pv_posterior* b, const char* context) {
  int64_t i, same = 1;
  EXPECT(pv_posterior_key_count(a) == pv_posterior_key_count(b), context);
  for (i = 0; i < pv_posterior_key_count(a); ++i) {
    const char* key = pv_posterior_key(a, i);
    int64_t na = 0, nb = 0;
    float* va = copy_key(a, key, &na);
    float* vb = copy_key(b, key, &nb);
    if (na == 0 || na != nb || !va || !vb || memcmp(va, vb, sizeof(float) * (size_t)na) != 0) {
      fprintf(stderr, "  %s: key '%s' differs\n", context, key);
      same = 0;
    }
    free(va);
    free(vb);
  }
  return (int)same;
}

static int has_key(const pv_posterior* posterior, const char* key) {
  int64_t i;
  for (i = 0; i < pv_posterior_key_count(posterior); ++i)
    if (strcmp(pv_posterior_key(posterior, i), key) == 0) return 1;
  return 0;
}

static void check_shape(const pv_posterior* posterior, const char* key, int64_t s, int64_t c, int64_t g) {
  int64_t shape[3] = {-1, -1, -1};
  char what[96];
  snprintf(what, sizeof what, "shape of %s is (%d, %d, %d)", key, (int)s, (int)c, (int)g);
  EXPECT_STATUS(pv_posterior_shape(posterior, key, shape), PV_OK, what);
  EXPECT(shape[0] == s && shape[1] == c && shape[2] == g, what);
}

static void check_posterior_layout(const pv_posterior* posterior) {
  /* MODEL.md section 6 for model1 (no u_offset, s_offset): 9 gene keys, 3 cell keys, 5 cell x gene. */
  static const char* const gene_keys[] = {"alpha", "gamma", "beta", "t0", "u_scale", "dt_switching", "u_inf", "s_inf",
                                          "switching"};
  static const char* const cell_keys[] = {"cell_time", "u_read_depth", "s_read_depth"};
  static const char* const cell_gene_keys[] = {"cell_gene_state", "ut", "st", "u", "s"};
  size_t i;
  EXPECT(pv_posterior_key_count(posterior) == 17, "model1 has 17 posterior keys");
  EXPECT(pv_posterior_key(posterior, 17) == NULL && pv_posterior_key(posterior, -1) == NULL,
         "pv_posterior_key out of range is NULL");
  EXPECT(!has_key(posterior, "u_offset") && !has_key(posterior, "s_offset"), "model1 has no offsets");
  for (i = 0; i < sizeof gene_keys / sizeof gene_keys[0]; ++i) {
    EXPECT(has_key(posterior, gene_keys[i]), gene_keys[i]);
    check_shape(posterior, gene_keys[i], kSamples, 1, kGenes);
  }
  for (i = 0; i < sizeof cell_keys / sizeof cell_keys[0]; ++i) {
    EXPECT(has_key(posterior, cell_keys[i]), cell_keys[i]);
    check_shape(posterior, cell_keys[i], kSamples, kCells, 1);
  }
  for (i = 0; i < sizeof cell_gene_keys / sizeof cell_gene_keys[0]; ++i) {
    EXPECT(has_key(posterior, cell_gene_keys[i]), cell_gene_keys[i]);
    check_shape(posterior, cell_gene_keys[i], kSamples, kCells, kGenes);
  }
}

static void check_all_finite(const pv_posterior* posterior, const char* key) {
  int64_t n = 0, i, finite = 1;
  float* values = copy_key(posterior, key, &n);
  for (i = 0; values && i < n; ++i)
    if (!isfinite(values[i])) finite = 0;
  EXPECT(n > 0 && finite, key);
  free(values);
}

/* Every seed PyroVelocity parameter at its default value is accepted. */
static void check_seed_defaults(const pv_dataset* data) {
  static const char* const defaults[][2] = {
      {"input_type", "raw"},        {"shared_time", "True"},        {"model_type", "auto"},
      {"guide_type", "auto"},       {"likelihood", "Poisson"},       {"t_scale_on", "False"},
      {"plate_size", "2"},          {"latent_factor", "none"},       {"latent_factor_operation", "selection"},
      {"inducing_point_size", "0"}, {"latent_factor_size", "0"},     {"include_prior", "False"},
      {"use_gpu", "auto"},          {"init", "False"},               {"num_aux_cells", "0"},
      {"only_cell_times", "True"},  {"decoder_on", "False"},         {"add_offset", "False"},
      {"correct_library_size", "True"}, {"cell_specific_kinetics", "None"}, {"kinetics_num", "None"}};
  pv_options* options = NULL;
  pv_model* model = NULL;
  size_t i;
  EXPECT_STATUS(pv_options_create(&options), PV_OK, "pv_options_create");
  for (i = 0; i < sizeof defaults / sizeof defaults[0]; ++i) {
    pv_options* single = options_with(defaults[i][0], defaults[i][1]);
    EXPECT_STATUS(pv_model_create(data, single, &model), PV_OK, defaults[i][0]);
    pv_model_free(model);
    model = NULL;
    pv_options_free(single);
    pv_options_set(options, defaults[i][0], defaults[i][1]);
  }
  EXPECT_STATUS(pv_model_create(data, options, &model), PV_OK, "all 21 seed defaults together");
  pv_model_free(model);
  pv_options_free(options);
}

static void check_refused_options(const pv_dataset* data) {
  pv_options* options;
  pv_model* model = (pv_model*)&options; /* any non-NULL value: a failing create must reset it */
  struct progress_log log = fresh_log(-1);
  int64_t count = 0;

  options = options_with("shared_time", "False");
  EXPECT_STATUS(pv_model_create(data, options, &model), PV_ERR_UNSUPPORTED, "shared_time=False");
  EXPECT_ERROR_MENTIONS("shared_time", "shared_time=False");
  EXPECT(model == NULL, "a failed pv_model_create sets *out to NULL");
  pv_options_free(options);

  options = options_with("likelihood", "Gaussian");
  EXPECT_STATUS(pv_model_create(data, options, &model), PV_ERR_INVALID_ARGUMENT, "likelihood=Gaussian");
  EXPECT_ERROR_MENTIONS("Gaussian", "likelihood=Gaussian");
  pv_options_free(options);

  options = options_with("no_such_option", "1");
  EXPECT_STATUS(pv_model_create(data, options, &model), PV_ERR_INVALID_ARGUMENT, "unknown option key");
  EXPECT_ERROR_MENTIONS("no_such_option", "unknown option key");
  pv_options_free(options);

  /* Training options are checked by pv_model_train on a valid model. */
  options = options_with("seed", "1");
  EXPECT_STATUS(pv_model_create(data, options, &model), PV_OK, "pv_model_create for the training checks");
  pv_options_free(options);

  EXPECT(train(model, "train_faster", "0", &log) != PV_OK, "max_epochs=0 is refused");
  EXPECT_ERROR_MENTIONS("max_epochs", "max_epochs=0");
  EXPECT(log.calls == 0, "a refused training runs no epoch");

  options = options_with("method", "train_faster_with_batch");
  pv_options_set(options, "batch_size", "100");
  pv_options_set(options, "max_epochs", "2");
  pv_options_set(options, "batch_size", "-1");
  EXPECT(pv_model_train(model, options, NULL, NULL) != PV_OK, "a negative batch_size is refused");
  EXPECT_ERROR_MENTIONS("batch_size", "batch_size -1");
  pv_options_free(options);

  EXPECT_STATUS(pv_model_loss_history(model, 0, NULL, 0, &count), PV_OK, "history after refusals");
  EXPECT(count == 0, "refused trainings leave no history");

  /* As in the reference's loader, a batch larger than the data is one batch of every cell. */
  options = options_with("method", "train_faster_with_batch");
  pv_options_set(options, "batch_size", "100");
  pv_options_set(options, "max_epochs", "2");
  EXPECT_STATUS(pv_model_train(model, options, NULL, NULL), PV_OK, "batch_size 100 for 60 cells");
  pv_options_free(options);
  EXPECT_STATUS(pv_model_loss_history(model, 0, NULL, 0, &count), PV_OK, "history after one batch per epoch");
  EXPECT(count == 2, "2 epochs of one batch");
  pv_model_free(model);
  options = options_with("seed", "1");
  EXPECT_STATUS(pv_model_create(data, options, &model), PV_OK, "a fresh model for the validated training");
  pv_options_free(options);

  /* The reference's train(): a validation split, one validation loss per epoch. */
  options = options_with("method", "train");
  pv_options_set(options, "train_size", "0.8");
  pv_options_set(options, "valid_size", "0.2");
  pv_options_set(options, "max_epochs", "5");
  log = fresh_log(-1);
  EXPECT_STATUS(pv_model_train(model, options, on_progress, &log), PV_OK, "method=train with a validation split");
  pv_options_free(options);
  EXPECT(log.calls == 5, "method=train: 5 progress calls");
  EXPECT_STATUS(pv_model_loss_history(model, 1, NULL, 0, &count), PV_OK, "validation history");
  EXPECT(count == 5, "method=train: 5 validation losses");
  EXPECT_STATUS(pv_model_loss_history(model, 0, NULL, 0, &count), PV_OK, "training history");
  EXPECT(count == 5, "method=train: 5 training losses");
  EXPECT_STATUS(pv_model_loss_history(model, 2, NULL, 0, &count), PV_ERR_INVALID_ARGUMENT, "history kind 2");
  pv_model_free(model);
}

static void check_null_handles(void) {
  int64_t count = 0;
  pv_posterior* posterior = NULL;
  pv_model_free(NULL);
  pv_options_free(NULL);
  pv_posterior_free(NULL);
  pv_dataset_free(NULL);
  EXPECT_STATUS(pv_model_train(NULL, NULL, NULL, NULL), PV_ERR_INVALID_ARGUMENT, "pv_model_train(NULL)");
  EXPECT_ERROR_MENTIONS("model", "pv_model_train(NULL)");
  EXPECT_STATUS(pv_model_sample(NULL, 1, 0, NULL, 0, 0, &posterior), PV_ERR_INVALID_ARGUMENT, "pv_model_sample(NULL)");
  EXPECT_STATUS(pv_model_loss_history(NULL, 0, NULL, 0, &count), PV_ERR_INVALID_ARGUMENT,
                "pv_model_loss_history(NULL)");
  EXPECT_STATUS(pv_model_create(NULL, NULL, NULL), PV_ERR_INVALID_ARGUMENT, "pv_model_create(NULL)");
  EXPECT(pv_posterior_key_count(NULL) == 0 && pv_posterior_key(NULL, 0) == NULL, "posterior queries on NULL");
}

/* A model with add_offset (the paper's model2) also samples u_offset and s_offset. */
static void check_model2_keys(const pv_dataset* data) {
  pv_options* options = options_with("add_offset", "True");
  pv_model* model = NULL;
  pv_posterior* posterior = NULL;
  pv_options_set(options, "include_prior", "True");
  if (EXPECT_STATUS(pv_model_create(data, options, &model), PV_OK, "model2 create") &&
      EXPECT_STATUS(pv_model_sample(model, 1, 3, NULL, 0, 0, &posterior), PV_OK, "model2 sample")) {
    EXPECT(pv_posterior_key_count(posterior) == 19, "model2 has 19 posterior keys");
    EXPECT(has_key(posterior, "u_offset") && has_key(posterior, "s_offset"), "model2 has the offsets");
  }
  pv_posterior_free(posterior);
  pv_model_free(model);
  pv_options_free(options);
}

/* A statistics key's values (malloc'd) and their count, or NULL. */
static double* copy_statistic(const pv_statistics* statistics, const char* key, int64_t* n) {
  int32_t ndim = 0;
  int64_t shape[3] = {0, 0, 0};
  double* out;
  *n = 0;
  if (!EXPECT_STATUS(pv_statistics_shape(statistics, key, &ndim, shape), PV_OK, key)) return NULL;
  *n = shape[0] * shape[1] * shape[2];
  out = (double*)malloc((size_t)*n * sizeof(double));
  if (out && !EXPECT_STATUS(pv_statistics_copy(statistics, key, out, *n), PV_OK, key)) {
    free(out);
    return NULL;
  }
  return out;
}

static void check_statistic_shape(const pv_statistics* statistics, const char* key, int32_t ndim, int64_t a, int64_t b,
                                  int64_t c) {
  int32_t got_ndim = 0;
  int64_t shape[3] = {0, 0, 0};
  char what[160];
  snprintf(what, sizeof what, "statistics '%s' has ndim %d and shape (%lld, %lld, %lld)", key, (int)ndim, (long long)a,
           (long long)b, (long long)c);
  EXPECT_STATUS(pv_statistics_shape(statistics, key, &got_ndim, shape), PV_OK, key);
  EXPECT(got_ndim == ndim && shape[0] == a && shape[1] == b && shape[2] == c, what);
}

/* compute_statistics_from_posterior_samples through the ABI: an embedding set by the caller, the
 * kNN space computed by the engine, the model's own draws and the same draws handed back as arrays
 * give the same field; bad annotations and options are refused by name. */
static void check_statistics(pv_dataset* data, const pv_model* model) {
  static double umap[kCells * 2], bad_rows[(kCells - 1) * 2];
  static const char* copied_keys[] = {"ut", "st", "s", "beta", "gamma", "cell_time", "u_scale"};
  pv_statistics *drawn = NULL, *handed = NULL, *refused = (pv_statistics*)&failures;
  pv_posterior *arrays = NULL, *posterior = NULL;
  pv_options* options = options_with("vector_field_basis", "umap");
  double *a, *b;
  int64_t c, i, n = 0, m = 0;
  float* values;
  for (c = 0; c < kCells; ++c) {
    umap[2 * c] = (double)c / kCells;
    umap[2 * c + 1] = sin(0.2 * (double)c);
  }
  EXPECT_STATUS(pv_dataset_set_obsm(data, "X_umap", kCells, 2, umap), PV_OK, "pv_dataset_set_obsm X_umap");
  EXPECT_STATUS(pv_dataset_set_obsm(data, "X_umap", kCells - 1, 2, bad_rows), PV_ERR_INVALID_ARGUMENT,
                "X_umap with 59 rows for 60 cells");
  EXPECT_ERROR_MENTIONS("60 cells", "obsm rows mismatch");
  umap[5] = NAN;
  EXPECT_STATUS(pv_dataset_set_obsm(data, "X_bad", kCells, 2, umap), PV_ERR_INVALID_ARGUMENT, "obsm with a NaN");
  EXPECT_ERROR_MENTIONS("finite", "obsm with a NaN");
  umap[5] = 0.0;

  if (!EXPECT_STATUS(pv_model_statistics(model, kSamples, 7, options, &drawn), PV_OK, "pv_model_statistics")) return;
  check_statistic_shape(drawn, "vector_field_posterior_samples", 3, kSamples, kCells, 2);
  check_statistic_shape(drawn, "vector_field_posterior_mean", 2, kCells, 2, 1);
  check_statistic_shape(drawn, "fdri", 1, kCells, 1, 1);
  check_statistic_shape(drawn, "embeds_angle", 2, kSamples, kCells, 1);
  check_statistic_shape(drawn, "st_std", 2, kCells, kGenes, 1);
  check_statistic_shape(drawn, "pca_vector_field_posterior_samples", 3, kSamples, kCells, 2);
  check_statistic_shape(drawn, "mean_mae_rank", 1, kGenes, 1, 1);
  check_statistic_shape(drawn, "genes", 1, 4, 1, 1);
  EXPECT(pv_statistics_key_count(drawn) == 18, "18 statistics keys (13 arrays, 4 gene columns, genes)");
  EXPECT(pv_statistics_key(drawn, 18) == NULL, "key 18 is out of range");

  /* The same draws, handed back as caller arrays. */
  if (!EXPECT_STATUS(pv_model_sample(model, kSamples, 7, NULL, 0, 0, &posterior), PV_OK, "pv_model_sample")) return;
  EXPECT_STATUS(pv_posterior_create(&arrays), PV_OK, "pv_posterior_create");
  for (i = 0; i < (int64_t)(sizeof copied_keys / sizeof copied_keys[0]); ++i) {
    int64_t shape[3];
    if (pv_posterior_shape(posterior, copied_keys[i], shape) != PV_OK) continue; /* u_scale: model2 only */
    values = copy_key(posterior, copied_keys[i], &n);
    EXPECT_STATUS(pv_posterior_set(arrays, copied_keys[i], shape, values), PV_OK, copied_keys[i]);
    free(values);
  }
  if (EXPECT_STATUS(pv_statistics_compute(data, arrays, options, &handed), PV_OK, "pv_statistics_compute")) {
    a = copy_statistic(drawn, "vector_field_posterior_mean", &n);
    b = copy_statistic(handed, "vector_field_posterior_mean", &m);
    if (a && b && n == m) {
      double worst = 0;
      for (i = 0; i < n; ++i) worst = fmax(worst, fabs(a[i] - b[i]) / (1e-6 + fabs(a[i])));
      EXPECT(worst < 1e-3, "drawn and handed-back samples give the same mean field");
    }
    free(a);
    free(b);
  }

  pv_options_set(options, "vector_field_basis", "tsne");
  EXPECT_STATUS(pv_statistics_compute(data, arrays, options, &refused), PV_ERR_INVALID_ARGUMENT, "basis tsne");
  EXPECT_ERROR_MENTIONS("X_tsne", "basis tsne");
  EXPECT(refused == NULL, "a failed pv_statistics_compute sets *out to NULL");
  pv_options_free(options);
  options = options_with("n_neighbours", "5");
  EXPECT_STATUS(pv_model_statistics(model, 2, 1, options, &refused), PV_ERR_INVALID_ARGUMENT, "a misspelt option");
  EXPECT_ERROR_MENTIONS("n_neighbours", "a misspelt option");
  pv_options_free(options);
  options = options_with("device", "gpu");
  EXPECT_STATUS(pv_model_statistics(model, 2, 1, options, &refused), PV_ERR_INVALID_ARGUMENT, "device gpu");
  EXPECT_ERROR_MENTIONS("gpu", "device gpu");
  pv_options_set(options, "device", "cuda");
  {
    /* A GPU runs the graphs there; without one, the refusal says so. */
    const pv_status status = pv_model_statistics(model, 2, 1, options, &refused);
    EXPECT(status == PV_OK || status == PV_ERR_NO_DEVICE, "device cuda: PV_OK with a GPU, PV_ERR_NO_DEVICE without");
    if (status == PV_ERR_NO_DEVICE) EXPECT_ERROR_MENTIONS("CUDA", "device cuda without a GPU");
    pv_statistics_free(refused);
    refused = NULL;
  }
  pv_posterior_free(arrays);
  EXPECT_STATUS(pv_posterior_create(&arrays), PV_OK, "pv_posterior_create");
  EXPECT_STATUS(pv_statistics_compute(data, arrays, NULL, &refused), PV_ERR_INVALID_ARGUMENT, "an empty posterior");
  EXPECT_ERROR_MENTIONS("ut", "an empty posterior");

  pv_posterior_free(arrays);
  pv_posterior_free(posterior);
  pv_options_free(options);
  pv_statistics_free(drawn);
  pv_statistics_free(handed);
  pv_statistics_free(NULL);
}

int main(int argc, char** argv) {
  char model_path[512];
  pv_dataset* data = make_dataset(kCells, kGenes);
  pv_dataset* fewer_genes = make_dataset(kCells, kGenes - 1);
  pv_options* options = options_with("likelihood", "Poisson");
  pv_model* model = NULL;
  pv_model* loaded = NULL;
  pv_posterior *posterior = NULL, *chunked = NULL, *reloaded = NULL;
  struct progress_log log = fresh_log(-1);
  int64_t n_cells = 0, n_genes = 0, count = 0, n = 0;
  double* history;
  float* values;
  float small[4];
  int fd, saved;

  snprintf(model_path, sizeof model_path, "%s/pvengine-capi-model-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  fd = mkstemp(model_path);
  if (fd < 0 || !data || !fewer_genes || !options) {
    fprintf(stderr, "setup failed (temp file %s, last error '%s')\n", model_path, pv_last_error());
    return 1;
  }
  close(fd);

  EXPECT_STATUS(pv_dataset_shape(data, &n_cells, &n_genes), PV_OK, "pv_dataset_shape");
  EXPECT(n_cells == kCells && n_genes == kGenes, "dataset shape is 60 x 8");
  EXPECT_STATUS(pv_dataset_shape(data, NULL, &n_genes), PV_OK, "pv_dataset_shape with a NULL output");

  /* Create and train: 30 epochs, one progress call each, a falling loss. */
  pv_options_set(options, "seed", "1");
  if (!EXPECT_STATUS(pv_model_create(data, options, &model), PV_OK, "pv_model_create")) return 1;
  EXPECT_STATUS(train(model, "train_faster", "30", &log), PV_OK, "pv_model_train 30 epochs");
  EXPECT(log.calls == 30, "30 progress calls");
  EXPECT(log.last_epoch == 29 && log.last_max_epochs == 30, "the last call is epoch 29 of 30");
  EXPECT(log.all_finite, "every progress loss is finite");
  history = loss_history(model, 0, &count);
  EXPECT(count == 30 && history != NULL, "30 training losses");
  if (history && count == 30) {
    int64_t i, finite = 1;
    for (i = 0; i < count; ++i) finite = finite && isfinite(history[i]);
    EXPECT(finite, "the training losses are finite");
    EXPECT(history[29] < history[0], "the loss falls over 30 epochs");
  }
  free(history);
  EXPECT_STATUS(pv_model_loss_history(model, 1, NULL, 0, &count), PV_OK, "validation history");
  EXPECT(count == 0, "train_faster has no validation losses");

  /* Posterior samples: keys, shapes, values, refusal of a short buffer. */
  if (!EXPECT_STATUS(pv_model_sample(model, kSamples, 7, NULL, 0, 0, &posterior), PV_OK, "pv_model_sample")) return 1;
  check_posterior_layout(posterior);
  check_all_finite(posterior, "ut");
  check_all_finite(posterior, "cell_time");
  EXPECT_STATUS(pv_posterior_copy(posterior, "alpha", small, 4), PV_ERR_INVALID_ARGUMENT, "copy into 4 of 32 floats");
  EXPECT_STATUS(pv_posterior_copy(posterior, "no_such_key", small, 4), PV_ERR_INVALID_ARGUMENT,
                "copy of an unknown key");
  values = copy_key(posterior, "cell_time", &n);
  EXPECT(n == kSamples * kCells, "cell_time has S x C values");
  free(values);

  /* The samples do not depend on how the cells are chunked. */
  EXPECT_STATUS(pv_model_sample(model, kSamples, 7, NULL, 0, 7, &chunked), PV_OK, "pv_model_sample in chunks of 7");
  EXPECT(same_values(posterior, chunked, "batch_size 7 vs 0"), "chunks of 7 cells give the same samples");

  /* Save, load onto the same data, sample with the same seed: the same numbers. */
  saved = pv_model_save(model, model_path);
  if (saved == PV_ERR_UNSUPPORTED) {
    printf("note: no HDF5 in this build; save/load not checked (%s)\n", pv_last_error());
  } else if (EXPECT_STATUS(saved, PV_OK, "pv_model_save") &&
             EXPECT_STATUS(pv_model_load(model_path, data, &loaded), PV_OK, "pv_model_load")) {
    EXPECT_STATUS(pv_model_sample(loaded, kSamples, 7, NULL, 0, 0, &reloaded), PV_OK, "sample the loaded model");
    EXPECT(same_values(posterior, reloaded, "saved vs loaded"), "the loaded model samples the same values");
    EXPECT_STATUS(pv_model_loss_history(loaded, 0, NULL, 0, &count), PV_OK, "loaded history");
    EXPECT(count == 30, "the loaded model keeps its 30 losses");
    pv_model_free(loaded);
    loaded = (pv_model*)&count; /* a failing load must reset it */
    EXPECT_STATUS(pv_model_load(model_path, fewer_genes, &loaded), PV_ERR_INVALID_ARGUMENT,
                  "loading onto 7 genes instead of 8");
    EXPECT_ERROR_MENTIONS("genes", "loading onto 7 genes instead of 8");
    EXPECT(loaded == NULL, "a failed pv_model_load sets *out to NULL");
    if (loaded != (pv_model*)&count) pv_model_free(loaded);
  }
  remove(model_path);

  /* Cancellation at epoch 3 keeps the model usable. */
  log = fresh_log(3);
  EXPECT_STATUS(train(model, "train_faster", "20", &log), PV_ERR_CANCELLED, "a callback returning 1 cancels");
  EXPECT(log.calls == 4, "cancelled after the 4th epoch (epoch index 3)");
  EXPECT_ERROR_MENTIONS("cancel", "cancellation message");
  log = fresh_log(-1);
  EXPECT_STATUS(train(model, "train_faster", "2", &log), PV_OK, "training after a cancel");
  EXPECT(log.calls == 2, "2 epochs after a cancel");

  check_statistics(data, model);
  check_refused_options(data);
  check_seed_defaults(data);
  check_model2_keys(data);
  check_null_handles();

  /* The model keeps its data alive: free the dataset, then train and sample. */
  pv_dataset_free(data);
  data = NULL;
  log = fresh_log(-1);
  EXPECT_STATUS(train(model, "train_faster", "2", &log), PV_OK, "training after pv_dataset_free");
  pv_posterior_free(chunked);
  chunked = NULL;
  if (EXPECT_STATUS(pv_model_sample(model, 2, 9, NULL, 0, 0, &chunked), PV_OK, "sampling after pv_dataset_free"))
    check_all_finite(chunked, "st");

  pv_posterior_free(posterior);
  pv_posterior_free(chunked);
  pv_posterior_free(reloaded);
  pv_model_free(model);
  pv_options_free(options);
  pv_dataset_free(fewer_genes);
  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C model API test passed\n");
  return 0;
}
