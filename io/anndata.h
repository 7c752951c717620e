// In-memory AnnData: what the h5ad reader returns and the writer takes (../shared/spec/H5AD.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pv::io {

// A cells x genes count matrix, kept sparse (CSR) when it came sparse. Values are float:
// integer counts are exact up to 2^24.
struct CountMatrix {
  int64_t rows = 0, cols = 0;
  bool sparse = false;
  std::vector<float> dense;     // row-major rows * cols, when !sparse
  std::vector<int64_t> indptr;  // rows + 1, when sparse
  std::vector<int32_t> indices;
  std::vector<float> data;

  int64_t nnz() const;
  double row_sum(int64_t row) const;
};

template <class T>
struct DenseMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<T> values;  // row-major
};

// One dataframe column: numeric (float64 on disk unless is_integer), string, or categorical.
struct Column {
  enum class Kind { kNumeric, kString, kCategorical };
  std::string name;
  Kind kind = Kind::kNumeric;
  bool is_integer = false;               // numeric column stored as int64
  std::vector<double> numeric;
  std::vector<std::string> strings;
  std::vector<int32_t> codes;            // categorical: -1 = missing
  std::vector<std::string> categories;
  bool ordered = false;
};

struct DataFrame {
  std::vector<std::string> index;
  std::vector<Column> columns;
  const Column* find(const std::string& name) const;
};

// uns: a tree of dicts whose leaves are scalars, strings or 1-D arrays.
struct UnsValue {
  enum class Kind { kNumber, kInteger, kString, kNumberArray, kStringArray, kDict };
  Kind kind = Kind::kDict;
  double number = 0;
  int64_t integer = 0;
  std::string string;
  std::vector<double> numbers;
  std::vector<std::string> strings;
  std::map<std::string, UnsValue> dict;
};

// Where read_h5ad() found what it returned; empty for data built in memory.
struct Provenance {
  std::string file;
  std::string spliced_layer, unspliced_layer;  // source names, e.g. "raw_spliced"
  std::vector<std::string> skipped;            // elements left out, each "path (reason)"
};

struct AnnData {
  DataFrame obs, var;
  std::unique_ptr<CountMatrix> X;             // optional
  std::map<std::string, CountMatrix> layers;
  std::map<std::string, DenseMatrix<double>> obsm;  // cells x k (X_pca, X_umap)
  std::map<std::string, DenseMatrix<double>> varm;  // genes x k (PCs: the loadings of X_pca)
  UnsValue uns;                               // kind kDict
  Provenance source;
};

// Per-cell library sizes for the model's size correction: obs "u_lib_size_raw" (unspliced) or
// "s_lib_size_raw" (spliced) when present (whole-transcriptome totals from before gene
// selection), else the row sums of layers["unspliced"] / layers["spliced"].
std::vector<double> library_sizes(const AnnData& data, bool unspliced);

}  // namespace pv::io
