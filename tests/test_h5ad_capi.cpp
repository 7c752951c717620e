// The C ABI's pv_dataset_*: shapes, the same validation as the reader, and the handle rules.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "bindings_c/include/pvengine.h"
#include "bindings_c/src/dataset_handle.h"
#include "io/h5ad_writer.h"
#include "test_h5ad_support.h"

namespace {

pv_dataset* const kSentinel = reinterpret_cast<pv_dataset*>(0x1);

void expect_status(pv_status got, pv_status expected, const std::string& fragment) {
  const std::string message = pv_last_error();
  CHECK_MESSAGE(got == expected, "status " << got << ": " << message);
  CHECK_MESSAGE(message.find(fragment) != std::string::npos,
                "message '" << message << "' lacks '" << fragment << "'");
}

}  // namespace

TEST_CASE("h5ad C ABI: pv_dataset_from_dense copies the counts and reports the shape") {
  const double spliced[6] = {1, 0, 2, 3, 0, 4};
  const double unspliced[6] = {0, 1, 0, 0, 5, 0};
  pv_dataset* dataset = nullptr;
  REQUIRE(pv_dataset_from_dense(2, 3, spliced, unspliced, &dataset) == PV_OK);
  int64_t cells = 0, genes = 0;
  CHECK(pv_dataset_shape(dataset, &cells, &genes) == PV_OK);
  CHECK(cells == 2);
  CHECK(genes == 3);
  CHECK(pv_dataset_shape(dataset, nullptr, &genes) == PV_OK);
  CHECK(dataset->data->layers.at("spliced").dense == std::vector<float>{1, 0, 2, 3, 0, 4});
  CHECK(dataset->data->layers.at("unspliced").row_sum(1) == 5);
  pv_dataset_free(dataset);
  pv_dataset_free(nullptr);  // does nothing
}

TEST_CASE("h5ad C ABI: pv_dataset_from_dense refuses what the reader refuses") {
  const double good[4] = {1, 0, 2, 3};
  double bad[4] = {1, 0, 2, 3};
  pv_dataset* dataset = kSentinel;

  bad[3] = -1;
  expect_status(pv_dataset_from_dense(2, 2, good, bad, &dataset), PV_ERR_INVALID_ARGUMENT,
                "pv_dataset_from_dense: unspliced[3] = -1 (cell 1, gene 1): counts must be >= 0");
  CHECK(dataset == nullptr);  // cleared on failure
  bad[3] = std::nan("");
  expect_status(pv_dataset_from_dense(2, 2, bad, good, &dataset), PV_ERR_INVALID_ARGUMENT,
                "spliced[3] = nan (cell 1, gene 1): must be finite");
  bad[3] = 1.5;
  expect_status(pv_dataset_from_dense(2, 2, bad, good, &dataset), PV_ERR_INVALID_ARGUMENT,
                "spliced[3] = 1.5 (cell 1, gene 1): not a whole number");
  expect_status(pv_dataset_from_dense(0, 2, good, good, &dataset), PV_ERR_INVALID_ARGUMENT,
                "needs at least one cell and one gene");
  expect_status(pv_dataset_from_dense(2, -1, good, good, &dataset), PV_ERR_INVALID_ARGUMENT,
                "needs at least one cell and one gene");
  expect_status(pv_dataset_from_dense(2, 2, nullptr, good, &dataset), PV_ERR_INVALID_ARGUMENT,
                "spliced is NULL");
  expect_status(pv_dataset_from_dense(2, 2, good, good, nullptr), PV_ERR_INVALID_ARGUMENT, "out is NULL");
  expect_status(pv_dataset_shape(nullptr, nullptr, nullptr), PV_ERR_INVALID_ARGUMENT,
                "pv_dataset_shape: dataset is NULL");
}

TEST_CASE("h5ad C ABI: pv_dataset_from_csr validates the CSR structure and the counts") {
  // 3 cells x 4 genes
  const int64_t indptr[4] = {0, 2, 2, 3};
  const int32_t indices[3] = {0, 3, 1};
  const double data[3] = {1, 2, 5};
  pv_dataset* dataset = nullptr;
  REQUIRE(pv_dataset_from_csr(3, 4, indptr, indices, data, indptr, indices, data, &dataset) == PV_OK);
  int64_t cells = 0, genes = 0;
  pv_dataset_shape(dataset, &cells, &genes);
  CHECK(cells == 3);
  CHECK(genes == 4);
  CHECK(dataset->data->layers.at("spliced").sparse);
  CHECK(dataset->data->layers.at("spliced").indices == std::vector<int32_t>{0, 3, 1});
  pv_dataset_free(dataset);

  const int64_t decreasing[4] = {0, 2, 1, 3};
  expect_status(pv_dataset_from_csr(3, 4, decreasing, indices, data, indptr, indices, data, &dataset),
                PV_ERR_INVALID_ARGUMENT, "pv_dataset_from_csr: s_indptr[2] = 1 is less than s_indptr[1] = 2");
  CHECK(dataset == nullptr);
  const int64_t offset[4] = {1, 2, 2, 3};
  expect_status(pv_dataset_from_csr(3, 4, indptr, indices, data, offset, indices, data, &dataset),
                PV_ERR_INVALID_ARGUMENT, "u_indptr[0] is 1 (indptr must start at 0)");
  const int32_t out_of_range[3] = {0, 4, 1};
  expect_status(pv_dataset_from_csr(3, 4, indptr, indices, data, indptr, out_of_range, data, &dataset),
                PV_ERR_INVALID_ARGUMENT, "u_indices[1] = 4 (in row 0) is out of range for 4 columns");
  const double negative[3] = {1, -2, 5};
  expect_status(pv_dataset_from_csr(3, 4, indptr, indices, negative, indptr, indices, data, &dataset),
                PV_ERR_INVALID_ARGUMENT, "s_data[1] = -2 (cell 0, gene 3): counts must be >= 0");
  const double fraction[3] = {1, 2, 0.25};
  expect_status(pv_dataset_from_csr(3, 4, indptr, indices, data, indptr, indices, fraction, &dataset),
                PV_ERR_INVALID_ARGUMENT, "u_data[2] = 0.25 (cell 2, gene 1): not a whole number");
  expect_status(pv_dataset_from_csr(3, 4, indptr, nullptr, data, indptr, indices, data, &dataset),
                PV_ERR_INVALID_ARGUMENT, "s_indices is NULL");
  const int64_t empty[4] = {0, 0, 0, 0};
  REQUIRE(pv_dataset_from_csr(3, 4, empty, nullptr, nullptr, empty, nullptr, nullptr, &dataset) == PV_OK);
  pv_dataset_free(dataset);
}

#if PV_HDF5
TEST_CASE("h5ad C ABI: pv_dataset_open_h5ad reads a file and NULL layer names mean auto") {
  pv_test::TempDir dir;
  const std::string path = dir.file("small.h5ad");
  pv::io::AnnData data;
  data.layers["spliced"].rows = 2;
  data.layers["spliced"].cols = 2;
  data.layers["spliced"].dense = {1, 2, 3, 4};
  data.layers["unspliced"] = data.layers["spliced"];
  data.layers["Ms"] = data.layers["spliced"];
  pv::io::write_h5ad(path, data);

  pv_dataset* dataset = nullptr;
  REQUIRE(pv_dataset_open_h5ad(path.c_str(), nullptr, nullptr, &dataset) == PV_OK);
  int64_t cells = 0, genes = 0;
  pv_dataset_shape(dataset, &cells, &genes);
  CHECK(cells == 2);
  CHECK(genes == 2);
  CHECK(dataset->data->source.spliced_layer == "spliced");
  pv_dataset_free(dataset);

  REQUIRE(pv_dataset_open_h5ad(path.c_str(), "Ms", "auto", &dataset) == PV_OK);
  CHECK(dataset->data->source.spliced_layer == "Ms");
  pv_dataset_free(dataset);

  dataset = kSentinel;
  expect_status(pv_dataset_open_h5ad(path.c_str(), "Mu", nullptr, &dataset), PV_ERR_INVALID_ARGUMENT,
                "layers/Mu: no such layer");
  CHECK(dataset == nullptr);
  expect_status(pv_dataset_open_h5ad(dir.file("absent.h5ad").c_str(), nullptr, nullptr, &dataset),
                PV_ERR_IO, "pv_dataset_open_h5ad: " + dir.file("absent.h5ad") + ": no such file");
  expect_status(pv_dataset_open_h5ad(nullptr, nullptr, nullptr, &dataset), PV_ERR_INVALID_ARGUMENT,
                "path is NULL");
}
#else
TEST_CASE("h5ad C ABI: pv_dataset_open_h5ad without HDF5 reports PV_ERR_UNSUPPORTED") {
  pv_dataset* dataset = kSentinel;
  expect_status(pv_dataset_open_h5ad("x.h5ad", nullptr, nullptr, &dataset), PV_ERR_UNSUPPORTED,
                "no HDF5 support");
  CHECK(dataset == nullptr);
}
#endif
