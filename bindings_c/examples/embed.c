/* Embedding pvengine from C: the calls an R, Julia or other binding makes.
 *
 *   cc embed.c -I bindings_c/include -L build/bindings_c -lpvengine -o embed && ./embed [DIR]
 *
 * Builds a dataset from the caller's count arrays, fits the model with a progress callback
 * (return non-zero from it to cancel, e.g. on Ctrl-C), draws posterior samples, copies one site
 * out, and saves the model to DIR (default: the current directory). Every call returns a status;
 * pv_last_error() says which function and argument failed. */
#include <stdio.h>
#include <stdlib.h>

#include "pvengine.h"

enum { kCells = 60, kGenes = 8, kSamples = 4 };

/* Stops the program with the library's message when a call fails. */
static void check(pv_status status, const char* call) {
  if (status == PV_OK) return;
  fprintf(stderr, "%s failed: %s (%s)\n", call, pv_status_string(status), pv_last_error());
  exit(1);
}

static int32_t on_epoch(void* user_data, int64_t epoch, int64_t max_epochs, double loss, double validation_loss) {
  (void)user_data, (void)validation_loss;
  if ((epoch + 1) % 10 == 0) printf("epoch %d/%d  loss %.5f\n", (int)epoch + 1, (int)max_epochs, loss);
  return 0; /* non-zero cancels: pv_model_train then returns PV_ERR_CANCELLED */
}

int main(int argc, char** argv) {
  static double spliced[kCells * kGenes], unspliced[kCells * kGenes];
  static float cell_time[kSamples * kCells];
  pv_dataset* data = NULL;
  pv_options *model_options = NULL, *train_options = NULL;
  pv_model* model = NULL;
  pv_posterior* posterior = NULL;
  int64_t shape[3], c, g, epochs = 0;
  double mean_time = 0.0;
  char path[512];

  if (pv_version_number() != PV_VERSION_NUMBER) return 1; /* header and library must agree */
  printf("%s\n", pv_build_info());

  /* Counts (cells x genes, row-major, whole numbers) along a fake time c; the library copies them. */
  for (c = 0; c < kCells; ++c)
    for (g = 0; g < kGenes; ++g) {
      unspliced[c * kGenes + g] = (double)((c * (kCells - c) * (g + 2)) / 450 + (c + g) % 3);
      spliced[c * kGenes + g] = (double)((c * c * (g + 3)) / 600 + (2 * c + g) % 4);
    }
  check(pv_dataset_from_dense(kCells, kGenes, spliced, unspliced, &data), "pv_dataset_from_dense");

  /* Options are text, as PyroVelocity takes them in Python. */
  check(pv_options_create(&model_options), "pv_options_create");
  check(pv_options_set(model_options, "likelihood", "Poisson"), "pv_options_set");
  check(pv_options_set(model_options, "seed", "1"), "pv_options_set");
  check(pv_model_create(data, model_options, &model), "pv_model_create");
  pv_dataset_free(data); /* the model keeps its data alive */

  check(pv_options_create(&train_options), "pv_options_create");
  check(pv_options_set(train_options, "method", "train_faster"), "pv_options_set");
  check(pv_options_set(train_options, "max_epochs", "30"), "pv_options_set");
  check(pv_model_train(model, train_options, on_epoch, NULL), "pv_model_train");
  check(pv_model_loss_history(model, 0, NULL, 0, &epochs), "pv_model_loss_history");

  /* Posterior samples: ask for a key's shape, then copy it into the caller's buffer. */
  check(pv_model_sample(model, kSamples, 7, NULL, 0, 0, &posterior), "pv_model_sample");
  check(pv_posterior_shape(posterior, "cell_time", shape), "pv_posterior_shape");
  check(pv_posterior_copy(posterior, "cell_time", cell_time, kSamples * kCells), "pv_posterior_copy");
  for (c = 0; c < shape[0] * shape[1]; ++c) mean_time += cell_time[c] / (double)(shape[0] * shape[1]);
  printf("%d epochs; %d posterior keys; cell_time (%d, %d, %d), mean %.3f\n", (int)epochs,
         (int)pv_posterior_key_count(posterior), (int)shape[0], (int)shape[1], (int)shape[2], mean_time);

  snprintf(path, sizeof path, "%s/embed-example-model.h5", argc > 1 ? argv[1] : ".");
  if (pv_model_save(model, path) == PV_OK) printf("saved %s\n", path);
  else printf("not saved: %s\n", pv_last_error()); /* e.g. a build without HDF5 */

  pv_posterior_free(posterior);
  pv_model_free(model);
  pv_options_free(train_options);
  pv_options_free(model_options);
  return 0;
}
