# The R binding (bindings_c/r/pvengine) end to end: version, transcription dynamics against the
# golden value of tests/test_ctypes.py, a fit of counts simulated here from the model's own
# generative process (so the true cell times are known), errors from C as R errors, Ctrl-C during
# training, and an .h5ad written by `pvengine simulate`.
#
# usage: Rscript --vanilla test_pvengine.R --glue=pvengine.so --rdir=bindings_c/r/pvengine/R [--cli=pvengine]
#        Rscript --vanilla test_pvengine.R --library=DIR [--cli=pvengine]   (an installed package)

args <- commandArgs(trailingOnly = TRUE)
option <- function(name) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else NULL
}

if (!is.null(option("library"))) {
  library(pvengine, lib.loc = option("library"))
  binding <- function(name) getExportedValue("pvengine", name)
  internal <- function(name) get(name, envir = asNamespace("pvengine"))
} else {
  if (is.null(option("glue")) || is.null(option("rdir"))) stop("usage: test_pvengine.R --glue=SO --rdir=DIR | --library=DIR")
  # The package's code without installing it: its glue built by CMake, its R files sourced.
  dyn.load(option("glue"))
  env <- new.env()
  for (file in sort(list.files(option("rdir"), pattern = "[.]R$", full.names = TRUE))) sys.source(file, envir = env)
  env$.pv_check_version()
  binding <- function(name) get(name, envir = env)
  internal <- binding
}
pv_version <- binding("pv_version")
pv_mrna_dynamics <- binding("pv_mrna_dynamics")
pv_fit <- binding("pv_fit")
pv_fit_h5ad <- binding("pv_fit_h5ad")

failures <- character(0)
expect <- function(ok, what) {
  if (!isTRUE(ok)) {
    failures <<- c(failures, what)
    cat("FAIL:", what, "\n")
  }
}
error_of <- function(expr) tryCatch({ expr; "" }, error = function(e) conditionMessage(e))
expect_error_mentions <- function(message, fragments, what) {
  for (f in fragments)
    expect(grepl(f, message, fixed = TRUE), sprintf("%s: error '%s' should mention '%s'", what, message, f))
}

# ---- Version and dynamics ----
v <- pv_version()
cat("pvengine", v$version, "|", v$build_info, "\n")
expect(v$number >= 100L && grepl("version=", v$build_info, fixed = TRUE), "pv_version")

d <- pv_mrna_dynamics(c(2, 1, 0), c(1, 0, 3), c(0.5, 0, 1), c(0.5, 1, 1), c(0.4, 0.7, 0.7), c(0.3, 0.7, 0.2))
expect(round(d$u[1], 4) == 1.1377 && round(d$s[1], 4) == 0.9269,
       sprintf("golden value of pv_mrna_dynamics: (%.6f, %.6f)", d$u[1], d$s[1]))
expect(d$u[3] == 3 && d$s[3] == 1, "tau = 0 keeps the initial state")
expect(length(pv_mrna_dynamics(c(0.5, 1, 2), 0, 0, 1, 1, 0.5)$s) == 3, "pv_mrna_dynamics recycles its inputs")
expect_error_mentions(error_of(pv_mrna_dynamics(1, 0, 0, 1, 1, -0.5)), c("pv_mrna_dynamics", "gamma"),
                      "negative gamma")

# ---- Simulation: the model's generative process (MODEL.md), in R ----
softplus <- function(x) log1p(exp(-abs(x))) + pmax(x, 0)
dynamics <- function(tau, u0, s0, alpha, beta, gamma) {
  eb <- exp(-beta * tau)
  eg <- exp(-gamma * tau)
  list(u = u0 * eb + alpha / beta * (1 - eb),
       s = s0 * eg + alpha / gamma * (1 - eg) + (alpha - beta * u0) / (gamma - beta) * (eg - eb))
}
# Genes switch on at t0 and off at t0 + dt; each cell-gene is in repression with probability
# logistic(t - switch); counts are Poisson around each cell's shares of fixed library sizes.
simulate <- function(cells, genes, seed, mean_spliced = 10, mean_unspliced = 5) {
  set.seed(seed)
  alpha <- exp(rnorm(genes))
  gamma <- exp(rnorm(genes))
  beta <- exp(0.25 * rnorm(genes))
  t0 <- rnorm(genes)
  dt <- exp(rnorm(genes))
  at_switch <- dynamics(dt, 0, 0, alpha, beta, gamma)
  time <- exp(rnorm(cells))
  u <- s <- matrix(0, cells, genes)
  for (g in seq_len(genes)) {
    off <- runif(cells) < plogis(time - (t0[g] + dt[g]))
    on_state <- dynamics(softplus(time - t0[g]), 0, 0, alpha[g], beta[g], gamma[g])
    off_state <- dynamics(softplus(time - t0[g] - dt[g]), at_switch$u[g], at_switch$s[g], 0, beta[g], gamma[g])
    u[, g] <- pmax(ifelse(off, off_state$u, on_state$u), 0) + 1e-6
    s[, g] <- pmax(ifelse(off, off_state$s, on_state$s), 0) + 1e-6
  }
  u <- u / rowSums(u) * mean_unspliced * genes
  s <- s / rowSums(s) * mean_spliced * genes
  list(time = time, unspliced = matrix(rpois(length(u), u), cells), spliced = matrix(rpois(length(s), s), cells))
}

# ---- A fit recovers the cell times ----
cells <- 200
genes <- 20
sim <- simulate(cells, genes, seed = 1)
rownames(sim$spliced) <- paste0("cell", seq_len(cells))
colnames(sim$spliced) <- paste0("gene", seq_len(genes))
elapsed <- system.time(
  fit <- pv_fit(sim$spliced, sim$unspliced, max_epochs = 1000, seed = 0, num_samples = 30,
                train_options = list(improvement = 1e-4), return_posterior = TRUE))[["elapsed"]]
rho <- cor(fit$cell_time, sim$time, method = "spearman")
cat(sprintf("fit: %d cells x %d genes, %d epochs in %.1f s; Spearman(cell_time, true time) = %.3f\n", cells, genes,
            length(fit$loss), elapsed, rho))
expect(length(fit$cell_time) == cells && all(is.finite(fit$cell_time)), "cell_time: one finite value per cell")
expect(length(fit$cell_time_sd) == cells && all(is.finite(fit$cell_time_sd) & fit$cell_time_sd >= 0),
       "cell_time_sd: one finite non-negative value per cell")
expect(identical(names(fit$cell_time), rownames(sim$spliced)), "cell_time is named by the matrix's row names")
# Measured 0.959 (engine seeds 0 to 5: 0.957 to 0.960); 0.85 leaves room for engine changes.
expect(rho > 0.85, sprintf("Spearman(cell_time, true time) = %.3f, expected > 0.85", rho))
for (site in c("alpha", "beta", "gamma"))
  expect(length(fit[[site]]) == genes && all(is.finite(fit[[site]]) & fit[[site]] > 0),
         sprintf("%s: one positive posterior mean per gene", site))
expect(identical(names(fit$alpha), colnames(sim$spliced)), "gene rates are named by the matrix's column names")
expect(length(fit$loss) >= 1 && length(fit$loss) <= 1000 && all(is.finite(fit$loss)), "loss history")
expect(mean(tail(fit$loss, 50)) < mean(head(fit$loss, 50)), "the loss goes down")
expect(length(fit$validation_loss) == 0, "train_faster has no validation loss")
expect(identical(dim(fit$posterior$cell_time), c(30L, as.integer(cells), 1L)), "posterior cell_time is (S, C, 1)")
expect(identical(dim(fit$posterior$alpha), c(30L, 1L, as.integer(genes))), "posterior alpha is (S, 1, G)")
expect(identical(dim(fit$posterior$ut), c(30L, as.integer(cells), as.integer(genes))), "posterior ut is (S, C, G)")
expect(isTRUE(all.equal(colMeans(fit$posterior$cell_time[, , 1]), unname(fit$cell_time))),
       "cell_time is the posterior mean of the samples")

# ---- Options: written as Python writes them; refused ones name themselves ----
option_text <- internal(".pv_option_text")
expect(identical(c(option_text("a", TRUE), option_text("a", FALSE), option_text("a", NULL), option_text("a", 200),
                   option_text("a", 0.01), option_text("a", "Poisson")),
                 c("True", "False", "None", "200", "0.01", "Poisson")), "option values as Python writes them")
small <- simulate(30, 5, seed = 2)
expect_error_mentions(error_of(pv_fit(small$spliced, small$unspliced, max_epochs = 2,
                                      model_options = list(no_such_option = TRUE))),
                      c("pv_model_create", "no_such_option"), "unknown model option")
expect_error_mentions(error_of(pv_fit(small$spliced, small$unspliced, max_epochs = 2, likelihood = "Gaussian")),
                      c("likelihood", "Gaussian"), "unsupported likelihood")
expect_error_mentions(error_of(pv_fit(small$spliced, small$unspliced, lr = 0.1, train_options = list(lr = 0.2))),
                      c("lr", "train_options"), "an option given twice")
quick <- pv_fit(small$spliced, small$unspliced, max_epochs = 3, likelihood = "NegativeBinomial",
                model_options = list(shared_time = TRUE), method = "train_faster_with_batch", batch_size = 10,
                num_samples = 1)
expect(length(quick$loss) == 3 && length(quick$cell_time) == 30 && all(quick$cell_time_sd == 0),
       "a minibatch fit with one posterior sample")

# ---- Errors from C become R errors with the library's message ----
negative <- small$spliced
negative[4, 3] <- -2
expect_error_mentions(error_of(pv_fit(negative, small$unspliced, max_epochs = 2)),
                      c("pv_dataset_from_dense", "spliced", "cell 3, gene 2", ">= 0"), "negative counts")
fractional <- small$unspliced
fractional[1, 1] <- 0.5
expect_error_mentions(error_of(pv_fit(small$spliced, fractional, max_epochs = 2)),
                      c("unspliced", "whole number"), "fractional counts")
expect_error_mentions(error_of(pv_fit(small$spliced, small$unspliced[1:10, ])), c("30 x 5", "10 x 5"),
                      "shapes that differ")
# Without HDF5 the library refuses every file as unsupported instead.
with_hdf5 <- !grepl("hdf5=off", v$build_info, fixed = TRUE)
expect_error_mentions(error_of(pv_fit_h5ad(file.path(tempdir(), "missing.h5ad"))),
                      c("pv_dataset_open_h5ad", if (with_hdf5) "missing.h5ad"), "a missing .h5ad file")

# Handles: a freed handle is refused, never used; the finalizers run cleanly.
free_handle <- internal(".pv_free")
options_handle <- internal(".pv_options_handle")(list(likelihood = "Poisson"))
free_handle(options_handle)
free_handle(options_handle)  # twice is harmless
expect_error_mentions(error_of(.Call("pvr_model_create", options_handle, NULL, PACKAGE = "pvengine")),
                      "not a pv_dataset", "a handle of the wrong kind")
data_handle <- .Call("pvr_dataset_from_dense", small$spliced, small$unspliced, PACKAGE = "pvengine")
expect(identical(.Call("pvr_dataset_shape", data_handle, PACKAGE = "pvengine"), c(30, 5)), "dataset shape")
expect_error_mentions(error_of(.Call("pvr_model_create", data_handle, options_handle, PACKAGE = "pvengine")),
                      "already been freed", "a freed handle")
rm(data_handle)  # left to its finalizer
invisible(gc())

# ---- Ctrl-C during training cancels it at the end of the epoch, as an R error ----
# A background shell sends SIGINT to this R process 2 s into a fit that would run far longer.
system(sprintf("(sleep 2; kill -INT %d) >/dev/null 2>&1 &", Sys.getpid()))
started <- Sys.time()
outcome <- tryCatch({
  pv_fit(sim$spliced, sim$unspliced, max_epochs = 100000, train_options = list(patience = 1000000))
  "training finished before the interrupt"
}, error = function(e) conditionMessage(e), interrupt = function(e) "the interrupt arrived outside training")
took <- as.numeric(difftime(Sys.time(), started, units = "secs"))
cat(sprintf("interrupt: '%s' after %.1f s\n", outcome, took))
if (!grepl("interrupted by the user", outcome, fixed = TRUE))
  tryCatch(Sys.sleep(5), interrupt = function(e) NULL)  # absorb a late SIGINT
expect(grepl("pv_model_train: interrupted by the user after epoch", outcome, fixed = TRUE),
       sprintf("Ctrl-C during training: got '%s'", outcome))
expect(took < 30, sprintf("Ctrl-C stops training promptly (took %.1f s)", took))

# ---- An .h5ad file written by the command line ----
cli <- option("cli")
if (!is.null(cli)) {
  path <- file.path(tempdir(), "simulated.h5ad")
  status <- system2(cli, c("simulate", "--cells", "100", "--genes", "10", "--seed", "3", "-o", shQuote(path)),
                    stdout = FALSE)
  expect(status == 0 && file.exists(path), "pvengine simulate writes an .h5ad")
  if (status == 0) {
    from_file <- pv_fit_h5ad(path, max_epochs = 100, num_samples = 5)
    expect(length(from_file$cell_time) == 100 && all(is.finite(from_file$cell_time)) && length(from_file$alpha) == 10,
           "pv_fit_h5ad: one finite cell time per cell of the file")
    expect_error_mentions(error_of(pv_fit_h5ad(path, spliced_layer = "no_such_layer", unspliced_layer = "unspliced")),
                          "no_such_layer", "an absent layer")
  }
}

if (length(failures)) {
  cat(length(failures), "failure(s)\n")
  quit(status = 1)
}
cat("R binding test passed\n")
