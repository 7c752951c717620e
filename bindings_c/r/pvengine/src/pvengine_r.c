/* The R package's .Call glue over libpvengine's C ABI (bindings_c/include/pvengine.h).
 *
 * Every library handle lives in an R external pointer whose C finalizer frees it, so a handle is
 * released even when an R error or an interrupt unwinds past the code that made it; the R side
 * also frees them explicitly (pvr_free) as soon as it is done, so memory does not wait for the GC.
 * A handle's external pointer is made (empty) before the library call that fills it, so no
 * allocation can fail between the two and leak the handle.
 *
 * Nothing here may longjmp through the library's C++ frames: the training progress callback looks
 * for Ctrl-C inside R_ToplevelExec, which catches the interrupt, and returns non-zero to cancel. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>

#include "pvengine.h"

/* ---- Errors ---------------------------------------------------------------------------------- */

/* Raises an R error carrying the library's message (it names the function and the argument). The
 * message is copied first: R may run finalizers, which call into the library, before printing it. */
static void raise_library_error(pv_status status) {
  char message[2048];
  const char* text = pv_last_error();
  if (text == NULL || *text == '\0') text = pv_status_string(status);
  strncpy(message, text, sizeof message - 1);
  message[sizeof message - 1] = '\0';
  Rf_errorcall(R_NilValue, "%s", message);
}

static void check(pv_status status) {
  if (status != PV_OK) raise_library_error(status);
}

/* ---- Handles --------------------------------------------------------------------------------- */

typedef enum { kDataset, kOptions, kModel, kPosterior, kHandleKinds } HandleKind;

static const char* const kHandleNames[kHandleKinds] = {"pv_dataset", "pv_options", "pv_model", "pv_posterior"};

static void free_address(HandleKind kind, void* address) {
  switch (kind) {
    case kDataset: pv_dataset_free((pv_dataset*)address); break;
    case kOptions: pv_options_free((pv_options*)address); break;
    case kModel: pv_model_free((pv_model*)address); break;
    case kPosterior: pv_posterior_free((pv_posterior*)address); break;
    default: break;
  }
}

static int kind_of(SEXP handle) {
  int kind;
  if (TYPEOF(handle) != EXTPTRSXP || TYPEOF(R_ExternalPtrTag(handle)) != SYMSXP) return -1;
  for (kind = 0; kind < kHandleKinds; ++kind)
    if (strcmp(CHAR(PRINTNAME(R_ExternalPtrTag(handle))), kHandleNames[kind]) == 0) return kind;
  return -1;
}

static void release(SEXP handle) {
  const int kind = kind_of(handle);
  void* address;
  if (kind < 0) return;
  address = R_ExternalPtrAddr(handle);
  R_ClearExternalPtr(handle);
  if (address != NULL) free_address((HandleKind)kind, address);
}

static void finalize_handle(SEXP handle) { release(handle); }

/* An empty handle of the given kind; the caller fills it with R_SetExternalPtrAddr. */
static SEXP new_handle(HandleKind kind) {
  SEXP handle = PROTECT(R_MakeExternalPtr(NULL, Rf_install(kHandleNames[kind]), R_NilValue));
  R_RegisterCFinalizerEx(handle, finalize_handle, TRUE);
  UNPROTECT(1);
  return handle;
}

/* The live library object behind a handle of the given kind, or an R error. */
static void* address_of(SEXP handle, HandleKind kind, const char* argument) {
  void* address;
  if (kind_of(handle) != (int)kind)
    Rf_errorcall(R_NilValue, "pvengine: %s is not a %s handle", argument, kHandleNames[kind]);
  address = R_ExternalPtrAddr(handle);
  if (address == NULL)
    Rf_errorcall(R_NilValue, "pvengine: %s (a %s) has already been freed", argument, kHandleNames[kind]);
  return address;
}

SEXP pvr_free(SEXP handle) {
  release(handle);
  return R_NilValue;
}

/* ---- Argument helpers ------------------------------------------------------------------------ */

static const char* string_argument(SEXP value, const char* argument) {
  if (!Rf_isString(value) || XLENGTH(value) != 1 || STRING_ELT(value, 0) == NA_STRING)
    Rf_errorcall(R_NilValue, "pvengine: %s must be one string", argument);
  return Rf_translateCharUTF8(STRING_ELT(value, 0));
}

/* NULL stays NULL (the library's default); otherwise one string. */
static const char* optional_string(SEXP value, const char* argument) {
  return Rf_isNull(value) ? NULL : string_argument(value, argument);
}

/* A whole number in [low, 2^53], given as an R integer or double. */
static double whole_number(SEXP value, double low, const char* argument) {
  double x;
  if (!Rf_isNumeric(value) || XLENGTH(value) != 1)
    Rf_errorcall(R_NilValue, "pvengine: %s must be one number", argument);
  x = Rf_asReal(value);
  if (!R_FINITE(x) || x != floor(x) || x < low || x > 9007199254740992.0)
    Rf_errorcall(R_NilValue, "pvengine: %s must be a whole number >= %.0f, got %g", argument, low, x);
  return x;
}

/* ---- Version and dynamics -------------------------------------------------------------------- */

SEXP pvr_version(void) {
  const char* names[] = {"number", "header_number", "build_info", ""};
  SEXP out = PROTECT(Rf_mkNamed(VECSXP, names));
  SET_VECTOR_ELT(out, 0, Rf_ScalarInteger(pv_version_number()));
  SET_VECTOR_ELT(out, 1, Rf_ScalarInteger(PV_VERSION_NUMBER));
  SET_VECTOR_ELT(out, 2, Rf_mkString(pv_build_info()));
  UNPROTECT(1);
  return out;
}

/* Six double vectors of one length (the R side recycles them); returns list(u, s). */
SEXP pvr_mrna_dynamics(SEXP tau, SEXP u0, SEXP s0, SEXP alpha, SEXP beta, SEXP gamma) {
  const char* names[] = {"u", "s", ""};
  SEXP inputs[6], out, u, s;
  R_xlen_t n, i;
  inputs[0] = tau, inputs[1] = u0, inputs[2] = s0, inputs[3] = alpha, inputs[4] = beta, inputs[5] = gamma;
  n = XLENGTH(tau);
  for (i = 0; i < 6; ++i)
    if (TYPEOF(inputs[i]) != REALSXP || XLENGTH(inputs[i]) != n)
      Rf_errorcall(R_NilValue, "pvengine: pvr_mrna_dynamics needs six double vectors of one length");
  out = PROTECT(Rf_mkNamed(VECSXP, names));
  u = Rf_allocVector(REALSXP, n);
  SET_VECTOR_ELT(out, 0, u);
  s = Rf_allocVector(REALSXP, n);
  SET_VECTOR_ELT(out, 1, s);
  if (n > 0)
    check(pv_mrna_dynamics((int64_t)n, REAL(tau), REAL(u0), REAL(s0), REAL(alpha), REAL(beta), REAL(gamma),
                           REAL(u), REAL(s)));
  UNPROTECT(1);
  return out;
}

/* ---- Datasets -------------------------------------------------------------------------------- */

/* An R cells x genes matrix (column-major, double or integer) as a row-major double buffer. NA
 * becomes NaN, which the library refuses with a message naming the entry. */
static double* row_major_counts(SEXP matrix, int64_t cells, int64_t genes) {
  double* out = (double*)R_alloc((size_t)(cells * genes), sizeof(double));
  int64_t c, g;
  if (TYPEOF(matrix) == REALSXP) {
    const double* in = REAL(matrix);
    for (c = 0; c < cells; ++c)
      for (g = 0; g < genes; ++g) out[c * genes + g] = in[c + cells * g];
  } else {
    const int* in = INTEGER(matrix);
    for (c = 0; c < cells; ++c)
      for (g = 0; g < genes; ++g) {
        const int x = in[c + cells * g];
        out[c * genes + g] = x == NA_INTEGER ? R_NaN : (double)x;
      }
  }
  return out;
}

static void matrix_shape(SEXP matrix, const char* argument, int64_t* cells, int64_t* genes) {
  SEXP dim;
  if ((TYPEOF(matrix) != REALSXP && TYPEOF(matrix) != INTSXP) || !Rf_isMatrix(matrix))
    Rf_errorcall(R_NilValue, "pvengine: %s must be a numeric matrix (cells x genes)", argument);
  dim = Rf_getAttrib(matrix, R_DimSymbol);
  *cells = INTEGER(dim)[0];
  *genes = INTEGER(dim)[1];
}

SEXP pvr_dataset_from_dense(SEXP spliced, SEXP unspliced) {
  int64_t cells, genes, u_cells, u_genes;
  const double *s_values, *u_values;
  pv_dataset* dataset = NULL;
  SEXP handle;
  matrix_shape(spliced, "spliced", &cells, &genes);
  matrix_shape(unspliced, "unspliced", &u_cells, &u_genes);
  if (cells != u_cells || genes != u_genes)
    Rf_errorcall(R_NilValue, "pvengine: spliced is %lld x %lld but unspliced is %lld x %lld", (long long)cells,
                 (long long)genes, (long long)u_cells, (long long)u_genes);
  if (cells == 0 || genes == 0)
    Rf_errorcall(R_NilValue, "pvengine: the counts have %lld cells and %lld genes (need at least one of each)",
                 (long long)cells, (long long)genes);
  s_values = row_major_counts(spliced, cells, genes);
  u_values = row_major_counts(unspliced, cells, genes);
  handle = PROTECT(new_handle(kDataset));
  check(pv_dataset_from_dense(cells, genes, s_values, u_values, &dataset));
  R_SetExternalPtrAddr(handle, dataset);
  UNPROTECT(1);
  return handle;
}

SEXP pvr_dataset_open_h5ad(SEXP path, SEXP spliced_layer, SEXP unspliced_layer) {
  const char* file = string_argument(path, "path");
  const char* s_layer = optional_string(spliced_layer, "spliced_layer");
  const char* u_layer = optional_string(unspliced_layer, "unspliced_layer");
  pv_dataset* dataset = NULL;
  SEXP handle = PROTECT(new_handle(kDataset));
  check(pv_dataset_open_h5ad(file, s_layer, u_layer, &dataset));
  R_SetExternalPtrAddr(handle, dataset);
  UNPROTECT(1);
  return handle;
}

/* c(n_cells, n_genes) as doubles (a count may pass 2^31). */
SEXP pvr_dataset_shape(SEXP dataset) {
  int64_t cells = 0, genes = 0;
  SEXP out;
  check(pv_dataset_shape((const pv_dataset*)address_of(dataset, kDataset, "dataset"), &cells, &genes));
  out = PROTECT(Rf_allocVector(REALSXP, 2));
  REAL(out)[0] = (double)cells;
  REAL(out)[1] = (double)genes;
  UNPROTECT(1);
  return out;
}

/* ---- Options --------------------------------------------------------------------------------- */

/* keys and values: character vectors of one length, values already written as Python writes them. */
SEXP pvr_options(SEXP keys, SEXP values) {
  pv_options* options = NULL;
  SEXP handle;
  R_xlen_t i;
  if (!Rf_isString(keys) || !Rf_isString(values) || XLENGTH(keys) != XLENGTH(values))
    Rf_errorcall(R_NilValue, "pvengine: option keys and values must be character vectors of one length");
  for (i = 0; i < XLENGTH(keys); ++i)
    if (STRING_ELT(keys, i) == NA_STRING || STRING_ELT(values, i) == NA_STRING)
      Rf_errorcall(R_NilValue, "pvengine: option %lld has an NA key or value", (long long)i + 1);
  handle = PROTECT(new_handle(kOptions));
  check(pv_options_create(&options));
  R_SetExternalPtrAddr(handle, options);
  for (i = 0; i < XLENGTH(keys); ++i)
    check(pv_options_set(options, Rf_translateCharUTF8(STRING_ELT(keys, i)),
                         Rf_translateCharUTF8(STRING_ELT(values, i))));
  UNPROTECT(1);
  return handle;
}

/* ---- Models ---------------------------------------------------------------------------------- */

SEXP pvr_model_create(SEXP dataset, SEXP options) {
  const pv_dataset* data = (const pv_dataset*)address_of(dataset, kDataset, "dataset");
  const pv_options* model_options =
      Rf_isNull(options) ? NULL : (const pv_options*)address_of(options, kOptions, "model options");
  pv_model* model = NULL;
  SEXP handle = PROTECT(new_handle(kModel));
  check(pv_model_create(data, model_options, &model));
  R_SetExternalPtrAddr(handle, model);
  UNPROTECT(1);
  return handle;
}

typedef struct {
  int64_t every;       /* print every this many epochs; 0: never */
  int interrupted;     /* Ctrl-C seen: training was cancelled */
  int64_t last_epoch;  /* the last epoch reported, 0-based; -1 before the first */
} TrainProgress;

static void check_interrupt(void* unused) {
  (void)unused;
  R_CheckUserInterrupt();
}

/* TRUE when the user pressed Ctrl-C. R_ToplevelExec catches the interrupt's longjmp, so it never
 * crosses the library's frames. */
static int interrupt_pending(void) { return R_ToplevelExec(check_interrupt, NULL) == FALSE; }

static int32_t on_epoch(void* user_data, int64_t epoch, int64_t max_epochs, double loss, double validation_loss) {
  TrainProgress* progress = (TrainProgress*)user_data;
  progress->last_epoch = epoch;
  if (progress->every > 0 && ((epoch + 1) % progress->every == 0 || epoch + 1 == max_epochs)) {
    if (ISNAN(validation_loss))
      Rprintf("epoch %lld/%lld  loss %.6g\n", (long long)epoch + 1, (long long)max_epochs, loss);
    else
      Rprintf("epoch %lld/%lld  loss %.6g  validation %.6g\n", (long long)epoch + 1, (long long)max_epochs, loss,
              validation_loss);
    R_FlushConsole();
  }
  if (interrupt_pending()) {
    progress->interrupted = 1;
    return 1;
  }
  return 0;
}

/* Trains from the model's current parameters; progress_every > 0 prints the loss that often. */
SEXP pvr_model_train(SEXP model, SEXP options, SEXP progress_every) {
  pv_model* fit = (pv_model*)address_of(model, kModel, "model");
  const pv_options* train_options =
      Rf_isNull(options) ? NULL : (const pv_options*)address_of(options, kOptions, "training options");
  TrainProgress progress;
  pv_status status;
  progress.every = (int64_t)whole_number(progress_every, 0, "progress_every");
  progress.interrupted = 0;
  progress.last_epoch = -1;
  status = pv_model_train(fit, train_options, on_epoch, &progress);
  if (status == PV_ERR_CANCELLED && progress.interrupted)
    Rf_errorcall(R_NilValue,
                 "pv_model_train: interrupted by the user after epoch %lld; the model keeps the parameters of the "
                 "last completed epoch",
                 (long long)progress.last_epoch + 1);
  check(status);
  return R_NilValue;
}

/* kind 0: training losses, 1: validation losses. */
SEXP pvr_model_loss_history(SEXP model, SEXP kind) {
  const pv_model* fit = (const pv_model*)address_of(model, kModel, "model");
  const int32_t which = (int32_t)whole_number(kind, 0, "kind");
  int64_t count = 0, again = 0;
  SEXP out;
  check(pv_model_loss_history(fit, which, NULL, 0, &count));
  out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)count));
  if (count > 0) check(pv_model_loss_history(fit, which, REAL(out), count, &again));
  UNPROTECT(1);
  return out;
}

/* ---- Posterior samples ----------------------------------------------------------------------- */

SEXP pvr_model_sample(SEXP model, SEXP num_samples, SEXP seed, SEXP batch_size) {
  const pv_model* fit = (const pv_model*)address_of(model, kModel, "model");
  const int64_t samples = (int64_t)whole_number(num_samples, 1, "num_samples");
  const uint64_t sample_seed = (uint64_t)whole_number(seed, 0, "seed");
  const int64_t batch = (int64_t)whole_number(batch_size, 0, "batch_size");
  pv_posterior* posterior = NULL;
  SEXP handle = PROTECT(new_handle(kPosterior));
  check(pv_model_sample(fit, samples, sample_seed, NULL, 0, batch, &posterior));
  R_SetExternalPtrAddr(handle, posterior);
  UNPROTECT(1);
  return handle;
}

SEXP pvr_posterior_keys(SEXP posterior) {
  const pv_posterior* samples = (const pv_posterior*)address_of(posterior, kPosterior, "posterior");
  const int64_t count = pv_posterior_key_count(samples);
  int64_t i;
  SEXP out = PROTECT(Rf_allocVector(STRSXP, (R_xlen_t)count));
  for (i = 0; i < count; ++i) SET_STRING_ELT(out, (R_xlen_t)i, Rf_mkCharCE(pv_posterior_key(samples, i), CE_UTF8));
  UNPROTECT(1);
  return out;
}

/* The key's samples as an R double array with dim c(S, C, G) (the library's row-major float32
 * values, reordered for R's column-major layout). */
SEXP pvr_posterior_get(SEXP posterior, SEXP key) {
  const pv_posterior* samples = (const pv_posterior*)address_of(posterior, kPosterior, "posterior");
  const char* name = string_argument(key, "key");
  int64_t shape[3], n, a, b, c;
  float* values;
  double* out_values;
  SEXP out, dim;
  check(pv_posterior_shape(samples, name, shape));
  for (a = 0; a < 3; ++a)
    if (shape[a] > INT32_MAX) Rf_errorcall(R_NilValue, "pvengine: posterior '%s' is too large for an R array", name);
  n = shape[0] * shape[1] * shape[2];
  values = (float*)R_alloc((size_t)(n > 0 ? n : 1), sizeof(float));
  check(pv_posterior_copy(samples, name, values, n));
  out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)n));
  out_values = REAL(out);
  for (a = 0; a < shape[0]; ++a)
    for (b = 0; b < shape[1]; ++b)
      for (c = 0; c < shape[2]; ++c)
        out_values[a + shape[0] * (b + shape[1] * c)] = (double)values[(a * shape[1] + b) * shape[2] + c];
  dim = PROTECT(Rf_allocVector(INTSXP, 3));
  for (a = 0; a < 3; ++a) INTEGER(dim)[a] = (int)shape[a];
  Rf_setAttrib(out, R_DimSymbol, dim);
  UNPROTECT(2);
  return out;
}

/* ---- Registration ---------------------------------------------------------------------------- */

static const R_CallMethodDef kCallMethods[] = {
    {"pvr_free", (DL_FUNC)&pvr_free, 1},
    {"pvr_version", (DL_FUNC)&pvr_version, 0},
    {"pvr_mrna_dynamics", (DL_FUNC)&pvr_mrna_dynamics, 6},
    {"pvr_dataset_from_dense", (DL_FUNC)&pvr_dataset_from_dense, 2},
    {"pvr_dataset_open_h5ad", (DL_FUNC)&pvr_dataset_open_h5ad, 3},
    {"pvr_dataset_shape", (DL_FUNC)&pvr_dataset_shape, 1},
    {"pvr_options", (DL_FUNC)&pvr_options, 2},
    {"pvr_model_create", (DL_FUNC)&pvr_model_create, 2},
    {"pvr_model_train", (DL_FUNC)&pvr_model_train, 3},
    {"pvr_model_loss_history", (DL_FUNC)&pvr_model_loss_history, 2},
    {"pvr_model_sample", (DL_FUNC)&pvr_model_sample, 4},
    {"pvr_posterior_keys", (DL_FUNC)&pvr_posterior_keys, 1},
    {"pvr_posterior_get", (DL_FUNC)&pvr_posterior_get, 2},
    {NULL, NULL, 0}};

/* Called by R when the shared object named pvengine is loaded (library(pvengine) or dyn.load). */
void R_init_pvengine(DllInfo* dll) {
  R_registerRoutines(dll, NULL, kCallMethods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
}
