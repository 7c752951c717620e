// pvengine inspect FILE.h5ad: what an AnnData file holds, and whether its count layers are usable.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "io/h5ad_reader.h"

namespace pv::cli {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "scalar";
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? " x " : "") + std::to_string(shape[i]);
  return text;
}

// "csr_matrix  float32  3696 x 2000  nnz 2464314" for a matrix-like element.
std::string matrix_text(const io::ElementSummary& e) {
  std::string text = e.encoding + "  " + (e.dtype.empty() ? "-" : e.dtype) + "  " + shape_text(e.shape);
  if (e.nnz >= 0) text += "  nnz " + std::to_string(e.nnz);
  return text;
}

std::string column_text(const io::ElementSummary& e) {
  if (e.n_categories >= 0) {
    return e.encoding + " (" + std::to_string(e.n_categories) + " categories" +
           (e.ordered ? ", ordered" : "") + ")";
  }
  if (e.encoding == "array") return e.dtype;
  if (e.encoding == "string-array") return "string";
  return e.encoding + (e.dtype.empty() ? "" : " " + e.dtype);
}

// uns entries: "string", "dict", "array  float64  3".
std::string uns_text(const io::ElementSummary& e) {
  if (e.shape.empty()) return e.encoding;
  return e.encoding + "  " + e.dtype + "  " + shape_text(e.shape);
}

enum class Style { kMatrix, kColumn, kUns };

void print_elements(const char* title, const std::vector<io::ElementSummary>& elements,
                    Style style) {
  if (elements.empty()) {
    std::printf("%-9s (none)\n", title);
    return;
  }
  std::printf("%s\n", title);
  size_t width = 0;
  for (const auto& e : elements) width = std::max(width, e.name.size());
  for (const auto& e : elements) {
    const std::string text = style == Style::kColumn ? column_text(e)
                             : style == Style::kUns  ? uns_text(e)
                                                     : matrix_text(e);
    std::printf("  %-*s  %s\n", static_cast<int>(width), e.name.c_str(), text.c_str());
  }
}

struct CountStats {
  double min = 0, max = 0, total = 0;
  bool whole = true;
  int64_t nonzero = 0;
};

CountStats count_stats(const io::CountMatrix& m) {
  const std::vector<float>& values = m.sparse ? m.data : m.dense;
  CountStats stats;
  bool first = true;
  for (float v : values) {
    if (first || v < stats.min) stats.min = v;
    if (first || v > stats.max) stats.max = v;
    first = false;
    stats.total += v;
    stats.whole = stats.whole && v == std::floor(v);
    stats.nonzero += (v != 0.0f);
  }
  // Entries a sparse matrix does not store are zeros.
  if (m.sparse && static_cast<int64_t>(m.data.size()) < m.rows * m.cols) {
    stats.min = first ? 0 : std::min(stats.min, 0.0);
    stats.max = first ? 0 : std::max(stats.max, 0.0);
  }
  return stats;
}

}  // namespace

int run_inspect(const std::vector<std::string>& args) {
  ArgParser parser("inspect", "FILE.h5ad [options]",
                   "Describe an AnnData file: its shape, layers, X, obs/var columns, obsm and uns, "
                   "and whether the spliced/unspliced layers hold raw integer counts. Exits 1 when "
                   "those layers cannot be used.");
  parser.option("--spliced-layer", "auto", "layer with the spliced counts (auto: raw_spliced, else spliced)");
  parser.option("--unspliced-layer", "auto", "layer with the unspliced counts (auto: raw_unspliced, else unspliced)");
  if (!parser.parse(args)) return 0;
  if (parser.positionals().size() != 1) {
    fail(PV_ERR_INVALID_ARGUMENT, "inspect takes one FILE.h5ad (see pvengine inspect --help)");
  }
  const std::string path = parser.positionals()[0];

  const io::H5adSummary summary = io::describe_h5ad(path);
  std::printf("file      %s  (%s %s)\n", path.c_str(),
              summary.encoding_type.empty() ? "no encoding-type" : summary.encoding_type.c_str(),
              summary.encoding_version.c_str());
  std::printf("shape     %lld cells x %lld genes\n", static_cast<long long>(summary.n_obs),
              static_cast<long long>(summary.n_vars));
  std::printf("X         %s\n", summary.has_X ? matrix_text(summary.X).c_str() : "(none)");
  print_elements("layers", summary.layers, Style::kMatrix);
  print_elements("obs", summary.obs_columns, Style::kColumn);
  print_elements("var", summary.var_columns, Style::kColumn);
  print_elements("obsm", summary.obsm, Style::kMatrix);
  print_elements("varm", summary.varm, Style::kMatrix);
  print_elements("obsp", summary.obsp, Style::kMatrix);
  print_elements("uns", summary.uns, Style::kUns);

  io::ReadOptions options;
  options.spliced_layer = parser.get("--spliced-layer");
  options.unspliced_layer = parser.get("--unspliced-layer");
  options.allow_non_integer = true;  // reported below rather than refused
  io::AnnData data;
  try {
    data = io::read_h5ad(path, options);
  } catch (const Error& e) {
    std::printf("counts    NOT USABLE: %s\n", e.what());
    return 1;
  }
  std::printf("counts    spliced <- layers/%s, unspliced <- layers/%s\n",
              data.source.spliced_layer.c_str(), data.source.unspliced_layer.c_str());
  bool all_whole = true;
  for (const char* name : {"spliced", "unspliced"}) {
    const io::CountMatrix& m = data.layers.at(name);
    const CountStats s = count_stats(m);
    all_whole = all_whole && s.whole;
    std::printf("  %-9s  %s  raw integer counts: %s  min %g  max %g  total %.0f  nonzero %lld (%.1f%%)\n",
                name, m.sparse ? "CSR  " : "dense", s.whole ? "yes" : "NO", s.min, s.max, s.total,
                static_cast<long long>(s.nonzero),
                100.0 * static_cast<double>(s.nonzero) / static_cast<double>(m.rows * m.cols));
  }
  if (!all_whole) {
    std::printf("  note: non-integer values; the model expects raw counts (reading them needs "
                "allow_non_integer)\n");
  }
  const bool u_lib = data.obs.find("u_lib_size_raw") != nullptr;
  const bool s_lib = data.obs.find("s_lib_size_raw") != nullptr;
  std::printf("library   unspliced: %s, spliced: %s\n",
              u_lib ? "obs u_lib_size_raw" : "row sums of the layer",
              s_lib ? "obs s_lib_size_raw" : "row sums of the layer");
  for (const std::string& skipped : data.source.skipped) std::printf("skipped   %s\n", skipped.c_str());
  return 0;
}

}  // namespace pv::cli
