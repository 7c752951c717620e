# R interface to libpvengine (bindings_c/include/pvengine.h) through the .Call glue in
# src/pvengine_r.c. Library handles are external pointers that a finalizer frees; the functions
# here also free each one with on.exit() as soon as they are done with it, error or not.

.pv_call <- function(name, ...) .Call(name, ..., PACKAGE = "pvengine")

.pv_free <- function(handle) invisible(.pv_call("pvr_free", handle))

.onLoad <- function(libname, pkgname) .pv_check_version()

# The glue was compiled against one pvengine.h; the library loaded must speak the same ABI: the
# same major version, and at least the minor version the glue knows.
.pv_check_version <- function() {
  v <- .pv_call("pvr_version")
  if (v$number %/% 10000L != v$header_number %/% 10000L || v$number < v$header_number)
    stop(sprintf("pvengine: the R glue was built for libpvengine %s but %s is loaded; reinstall the package",
                 .pv_version_text(v$header_number), .pv_version_text(v$number)), call. = FALSE)
  invisible(TRUE)
}

.pv_version_text <- function(number) {
  sprintf("%d.%d.%d", number %/% 10000L, (number %/% 100L) %% 100L, number %% 100L)
}

# The version of the libpvengine loaded: list(version, number, build_info).
pv_version <- function() {
  v <- .pv_call("pvr_version")
  list(version = .pv_version_text(v$number), number = v$number, build_info = v$build_info)
}

# Transcription dynamics (MODEL.md section 2): u(tau), s(tau) from (u0, s0) with rates alpha,
# beta, gamma, element-wise with R's recycling. Returns list(u, s).
pv_mrna_dynamics <- function(tau, u0, s0, alpha, beta, gamma) {
  inputs <- list(tau = tau, u0 = u0, s0 = s0, alpha = alpha, beta = beta, gamma = gamma)
  for (name in names(inputs))
    if (!is.numeric(inputs[[name]]))
      stop(sprintf("pv_mrna_dynamics: %s must be numeric", name), call. = FALSE)
  lengths <- vapply(inputs, length, 1L)
  n <- if (any(lengths == 0L)) 0L else max(lengths)
  inputs <- lapply(inputs, function(x) as.double(rep_len(x, n)))
  .pv_call("pvr_mrna_dynamics", inputs$tau, inputs$u0, inputs$s0, inputs$alpha, inputs$beta, inputs$gamma)
}

# Fits the Pyro-Velocity model to spliced and unspliced counts (numeric matrices, cells x genes,
# whole non-negative numbers) and summarises posterior samples.
#
# max_epochs, lr, batch_size, method (train, train_faster, train_faster_with_batch; batch_size is
# read by the first and the last) and seed are training options; likelihood ("Poisson",
# "NegativeBinomial") and seed are model options; NULL leaves the engine's default (Python's).
# model_options and train_options take any other key of pvengine.h as a named list; values are
# written as Python writes them (TRUE -> "True", NULL or NA -> "None").
#
# Returns a "pv_fit" list: cell_time and cell_time_sd (posterior mean and sd per cell), alpha,
# beta, gamma (posterior means per gene), loss and validation_loss (per epoch), and, when
# return_posterior is TRUE, posterior: every sample site as an array with dim c(S, C, G)
# (gene sites have C = 1, cell sites G = 1). progress_every > 0 prints the loss that often;
# Ctrl-C stops training at the end of the current epoch with an error.
pv_fit <- function(spliced, unspliced, max_epochs = NULL, lr = NULL, batch_size = NULL,
                   likelihood = NULL, seed = NULL, num_samples = 30, method = NULL,
                   model_options = list(), train_options = list(), return_posterior = FALSE,
                   sample_batch_size = 0, progress_every = if (interactive()) 100 else 0) {
  spliced <- .pv_counts(spliced, "spliced")
  unspliced <- .pv_counts(unspliced, "unspliced")
  if (!identical(dim(spliced), dim(unspliced)))
    stop(sprintf("pv_fit: spliced is %d x %d but unspliced is %d x %d (both must be cells x genes)",
                 nrow(spliced), ncol(spliced), nrow(unspliced), ncol(unspliced)), call. = FALSE)
  data <- .pv_call("pvr_dataset_from_dense", spliced, unspliced)
  on.exit(.pv_free(data), add = TRUE)
  labels <- .pv_dimnames(spliced, unspliced)
  .pv_fit_dataset(data, labels$cells, labels$genes, max_epochs = max_epochs, lr = lr,
                  batch_size = batch_size, likelihood = likelihood, seed = seed,
                  num_samples = num_samples, method = method, model_options = model_options,
                  train_options = train_options, return_posterior = return_posterior,
                  sample_batch_size = sample_batch_size, progress_every = progress_every)
}

# pv_fit on the counts of an .h5ad (AnnData) file. spliced_layer and unspliced_layer name its
# layers; NULL takes raw_spliced/raw_unspliced when both exist, else spliced/unspliced. The other
# arguments are pv_fit's.
pv_fit_h5ad <- function(path, ..., spliced_layer = NULL, unspliced_layer = NULL) {
  if (!is.character(path) || length(path) != 1L || is.na(path))
    stop("pv_fit_h5ad: path must be one file name", call. = FALSE)
  data <- .pv_call("pvr_dataset_open_h5ad", path.expand(path), spliced_layer, unspliced_layer)
  on.exit(.pv_free(data), add = TRUE)
  .pv_fit_dataset(data, NULL, NULL, ...)
}

print.pv_fit <- function(x, ...) {
  cat(sprintf("pvengine fit: %d cells, %d genes, %d epochs, final loss %.6g\n", length(x$cell_time),
              length(x$alpha), length(x$loss), if (length(x$loss)) x$loss[length(x$loss)] else NA_real_))
  cat(sprintf("cell_time: mean %.4g, range [%.4g, %.4g]\n", mean(x$cell_time), min(x$cell_time),
              max(x$cell_time)))
  invisible(x)
}

.pv_fit_dataset <- function(data, cell_names, gene_names, max_epochs = NULL, lr = NULL,
                            batch_size = NULL, likelihood = NULL, seed = NULL, num_samples = 30,
                            method = NULL, model_options = list(), train_options = list(),
                            return_posterior = FALSE, sample_batch_size = 0,
                            progress_every = if (interactive()) 100 else 0) {
  model_keys <- .pv_merge_options("model_options", model_options,
                                  list(likelihood = likelihood, seed = seed))
  train_keys <- .pv_merge_options("train_options", train_options,
                                  list(method = method, max_epochs = max_epochs, lr = lr,
                                       batch_size = batch_size, seed = seed))
  model_handle <- .pv_options_handle(model_keys)
  on.exit(.pv_free(model_handle), add = TRUE)
  train_handle <- .pv_options_handle(train_keys)
  on.exit(.pv_free(train_handle), add = TRUE)

  model <- .pv_call("pvr_model_create", data, model_handle)
  on.exit(.pv_free(model), add = TRUE)
  .pv_call("pvr_model_train", model, train_handle, progress_every)

  posterior <- .pv_call("pvr_model_sample", model, num_samples, if (is.null(seed)) 0 else seed,
                        sample_batch_size)
  on.exit(.pv_free(posterior), add = TRUE)
  keys <- if (isTRUE(return_posterior)) .pv_call("pvr_posterior_keys", posterior)
          else c("cell_time", "alpha", "beta", "gamma")
  arrays <- lapply(keys, function(key) .pv_call("pvr_posterior_get", posterior, key))
  names(arrays) <- keys

  # (S, C, 1) and (S, 1, G) arrays as S x C and S x G matrices: one row per sample.
  per_sample <- function(key) matrix(arrays[[key]], nrow = dim(arrays[[key]])[1])
  named <- function(x, labels) {
    if (!is.null(labels) && length(labels) == length(x)) names(x) <- labels
    x
  }
  cell_time <- per_sample("cell_time")
  result <- list(
    cell_time = named(colMeans(cell_time), cell_names),
    cell_time_sd = named(if (nrow(cell_time) > 1) apply(cell_time, 2, sd) else rep(0, ncol(cell_time)),
                         cell_names),
    alpha = named(colMeans(per_sample("alpha")), gene_names),
    beta = named(colMeans(per_sample("beta")), gene_names),
    gamma = named(colMeans(per_sample("gamma")), gene_names),
    loss = .pv_call("pvr_model_loss_history", model, 0L),
    validation_loss = .pv_call("pvr_model_loss_history", model, 1L))
  if (isTRUE(return_posterior)) result$posterior <- arrays
  class(result) <- "pv_fit"
  result
}

# Counts as a plain numeric matrix (a data frame or a Matrix package matrix is converted).
.pv_counts <- function(x, what) {
  if (is.data.frame(x) || inherits(x, "Matrix")) x <- as.matrix(x)
  if (!is.matrix(x) || !(is.numeric(x) || is.logical(x)))
    stop(sprintf("pv_fit: %s must be a numeric matrix (cells x genes)", what), call. = FALSE)
  if (!is.integer(x)) storage.mode(x) <- "double"
  x
}

.pv_dimnames <- function(spliced, unspliced) {
  pick <- function(i) {
    n <- dimnames(spliced)[[i]]
    if (is.null(n)) dimnames(unspliced)[[i]] else n
  }
  list(cells = pick(1L), genes = pick(2L))
}

# Explicit arguments (NULL: not given) joined with a user's named list; a key given both ways is an
# error rather than a silent choice.
.pv_merge_options <- function(what, user, explicit) {
  if (!is.list(user)) stop(sprintf("pv_fit: %s must be a named list", what), call. = FALSE)
  if (length(user) && (is.null(names(user)) || any(names(user) == "" | is.na(names(user)))))
    stop(sprintf("pv_fit: every entry of %s needs a name", what), call. = FALSE)
  explicit <- explicit[!vapply(explicit, is.null, TRUE)]
  both <- intersect(names(explicit), names(user))
  if (length(both))
    stop(sprintf("pv_fit: %s given both as an argument and in %s", both[1], what), call. = FALSE)
  c(explicit, user)
}

.pv_options_handle <- function(entries) {
  keys <- names(entries)
  if (is.null(keys)) keys <- character(0)
  values <- vapply(seq_along(entries), function(i) .pv_option_text(keys[i], entries[[i]]), "")
  .pv_call("pvr_options", as.character(keys), values)
}

# A value as Python writes it, which is how pvengine reads options.
.pv_option_text <- function(key, value) {
  if (is.null(value)) return("None")
  if (is.factor(value)) value <- as.character(value)
  if (length(value) != 1L)
    stop(sprintf("pv_fit: option %s needs one value, got %d", key, length(value)), call. = FALSE)
  if (is.na(value)) return("None")
  if (is.logical(value)) return(if (value) "True" else "False")
  if (is.character(value)) return(value)
  if (is.numeric(value)) {
    if (!is.finite(value)) return(if (value > 0) "inf" else "-inf")
    if (value == round(value) && abs(value) < 1e15) return(sprintf("%.0f", value))
    return(format(value, digits = 15))
  }
  stop(sprintf("pv_fit: option %s cannot be a %s", key, class(value)[1]), call. = FALSE)
}
