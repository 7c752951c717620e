// pvengine plot RESULT.h5ad -o DIR: the standard figures of a fit, as SVG files a scientist can
// read (titles, axis labels, a legend or a colour bar on every figure).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/error.h"
#include "io/h5ad_layers.h"
#include "io/h5ad_reader.h"
#include "io/svg.h"

namespace pv::cli {

int run_plot(const std::vector<std::string>& args);

namespace {

namespace svg = io::svg;

// Cells grouped for colouring: one code per cell (-1 = no group) and the group names.
struct Groups {
  std::vector<int32_t> codes;
  std::vector<std::string> names;
  std::string key;  // "" when every cell is drawn in one colour
};

Groups cell_groups(const io::AnnData& data, const std::string& key, int64_t n_cells, std::string* note) {
  Groups groups;
  const io::Column* column = data.obs.find(key);
  if (column && column->kind == io::Column::Kind::kCategorical) {
    groups.codes = column->codes;
    groups.names = column->categories;
  } else if (column && column->kind == io::Column::Kind::kString) {
    // Sorted, as pandas orders the categories of a string column.
    const std::set<std::string> unique(column->strings.begin(), column->strings.end());
    groups.names.assign(unique.begin(), unique.end());
    for (const std::string& s : column->strings) {
      groups.codes.push_back(static_cast<int32_t>(
          std::lower_bound(groups.names.begin(), groups.names.end(), s) - groups.names.begin()));
    }
  } else {
    *note = column ? "obs '" + key + "' is numeric, not categorical: cells drawn in one colour"
                   : "obs '" + key + "' missing (see --cluster-key): cells drawn in one colour";
    groups.codes.assign(static_cast<size_t>(n_cells), 0);
    groups.names = {"all cells"};
    return groups;
  }
  groups.key = key;
  if (std::count(groups.codes.begin(), groups.codes.end(), -1) > 0) {
    for (int32_t& c : groups.codes) c = c < 0 ? static_cast<int32_t>(groups.names.size()) : c;
    groups.names.push_back("(no label)");
  }
  return groups;
}

std::vector<svg::Color> group_palette(const Groups& groups) {
  std::vector<svg::Color> palette;
  for (size_t i = 0; i < groups.names.size(); ++i) {
    palette.push_back(groups.names[i] == "(no label)" ? svg::Color{0xbb, 0xbb, 0xbb} : svg::category_color(i));
  }
  return palette;
}

std::vector<svg::Color> group_colors(const Groups& groups) {
  const std::vector<svg::Color> palette = group_palette(groups);
  std::vector<svg::Color> colors;
  for (int32_t c : groups.codes) colors.push_back(palette.at(static_cast<size_t>(c)));
  return colors;
}

std::vector<svg::Color> value_colors(const std::vector<double>& values, svg::Range range, svg::Colormap map) {
  std::vector<svg::Color> colors;
  for (double v : values) colors.push_back(svg::colormap(map, (v - range.lo) / (range.hi - range.lo)));
  return colors;
}

const std::vector<double>* numeric_obs(const io::AnnData& data, const std::string& name) {
  const io::Column* column = data.obs.find(name);
  return column && column->kind == io::Column::Kind::kNumeric ? &column->numeric : nullptr;
}

// Point size shrinks with the number of cells so that dense embeddings stay legible.
double point_radius(int64_t n_cells) {
  return std::min(4.0, std::max(0.9, 3.2 * std::sqrt(500.0 / std::max<int64_t>(1, n_cells))));
}

// An embedding: its coordinates, axis names, and ranges widened to equal units per pixel.
struct Embedding {
  std::vector<double> x, y;
  std::string x_label, y_label, name;
};

struct Layout {
  double width, height;
  svg::PanelStyle style;
};

// Ranges of the embedding padded by 3% and widened so one data unit spans the same number of
// pixels on both axes (distances in an embedding are compared in every direction).
void equal_aspect(const Embedding& e, const Layout& layout, svg::Range* xr, svg::Range* yr) {
  *xr = svg::finite_range(e.x, 0.03);
  *yr = svg::finite_range(e.y, 0.03);
  const double plot_w = layout.width - layout.style.margin_left - layout.style.margin_right - layout.style.key_width;
  const double plot_h = layout.height - layout.style.margin_top - layout.style.margin_bottom;
  const double per_pixel = std::max((xr->hi - xr->lo) / plot_w, (yr->hi - yr->lo) / plot_h);
  const double cx = (xr->lo + xr->hi) / 2, cy = (yr->lo + yr->hi) / 2;
  *xr = svg::Range{cx - per_pixel * plot_w / 2, cx + per_pixel * plot_w / 2};
  *yr = svg::Range{cy - per_pixel * plot_h / 2, cy + per_pixel * plot_h / 2};
}

// At most `max_arrows` cells spread evenly over the embedding: a g x g grid with g*g <= max_arrows
// keeps the lowest-index cell with a finite velocity in each occupied square.
std::vector<size_t> arrow_cells(const Embedding& e, const std::vector<double>& vx,
                                const std::vector<double>& vy, int64_t max_arrows) {
  std::vector<size_t> usable;
  for (size_t i = 0; i < e.x.size(); ++i) {
    if (std::isfinite(e.x[i]) && std::isfinite(e.y[i]) && std::isfinite(vx[i]) && std::isfinite(vy[i])) {
      usable.push_back(i);
    }
  }
  if (max_arrows <= 0) return {};
  if (static_cast<int64_t>(usable.size()) <= max_arrows) return usable;
  const int64_t g = std::max<int64_t>(1, static_cast<int64_t>(std::floor(std::sqrt(static_cast<double>(max_arrows)))));
  const svg::Range xr = svg::finite_range(e.x), yr = svg::finite_range(e.y);
  std::map<int64_t, size_t> first_in_square;
  for (size_t i : usable) {
    const int64_t gx = std::min(g - 1, static_cast<int64_t>((e.x[i] - xr.lo) / (xr.hi - xr.lo) * g));
    const int64_t gy = std::min(g - 1, static_cast<int64_t>((e.y[i] - yr.lo) / (yr.hi - yr.lo) * g));
    first_in_square.emplace(gy * g + gx, i);
  }
  std::vector<size_t> chosen;
  for (const auto& [square, cell] : first_in_square) chosen.push_back(cell);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

double quantile(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }), values.end());
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t k = std::min(values.size() - 1, static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5));
  return values[k];
}

std::string basis_title(const std::string& basis) {
  std::string upper = basis;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper;
}

void skip(const std::string& figure, const std::string& missing) {
  std::fprintf(stderr, "pvengine plot: skipped %s: %s missing\n", figure.c_str(), missing.c_str());
}

void save(const svg::Canvas& canvas, const std::filesystem::path& dir, const std::string& name) {
  const std::string path = (dir / name).string();
  canvas.save(path);
  std::printf("wrote %s\n", path.c_str());
}

// ---- (a) velocity on the embedding ---------------------------------------------------------

void plot_velocity_embedding(const Embedding& e, const std::vector<double>& vx, const std::vector<double>& vy,
                             const Groups& groups, int64_t max_arrows, const std::filesystem::path& dir) {
  const Layout layout{820, 640, svg::PanelStyle{48, 16, 58, 48, 170}};
  svg::Range xr, yr;
  equal_aspect(e, layout, &xr, &yr);
  svg::Canvas canvas(layout.width, layout.height);
  svg::Panel panel(canvas, 0, 0, layout.width, layout.height, xr, yr, layout.style);

  const std::vector<size_t> cells = arrow_cells(e, vx, vy, max_arrows);
  std::vector<double> lengths;
  for (size_t i = 0; i < vx.size(); ++i) lengths.push_back(std::hypot(vx[i], vy[i]));
  // The 95th-percentile arrow spans 4% of the embedding's width: outliers stay visible but do not
  // set the scale.
  const svg::Range data_x = svg::finite_range(e.x), data_y = svg::finite_range(e.y);
  const double span = std::max(data_x.hi - data_x.lo, data_y.hi - data_y.lo);
  const double typical = quantile(lengths, 0.95);
  const double scale = typical > 0 ? 0.04 * span / typical : 0;
  std::vector<double> ax, ay, adx, ady;
  for (size_t i : cells) {
    ax.push_back(e.x[i]);
    ay.push_back(e.y[i]);
    adx.push_back(vx[i] * scale);
    ady.push_back(vy[i] * scale);
  }
  panel.scatter(e.x, e.y, group_colors(groups), point_radius(static_cast<int64_t>(e.x.size())), 0.55);
  panel.arrows(ax, ay, adx, ady, "#222222", 0.7);
  panel.frame("RNA velocity on " + e.name + " (posterior mean)", e.x_label, e.y_label,
              "arrows: " + std::to_string(cells.size()) + " of " + std::to_string(e.x.size()) +
                  " cells; the 95th-percentile speed spans 4% of the embedding");
  panel.legend(groups.key.empty() ? "cells" : groups.key, groups.names, group_palette(groups));
  save(canvas, dir, "velocity_embedding.svg");
}

// ---- (b), (c) continuous values on the embedding -------------------------------------------

struct ValuePanel {
  const std::vector<double>* values;
  std::string title, subtitle, bar_label;
  bool unit_range;  // a fraction: the colour bar spans [0, 1]
};

void plot_values(const Embedding& e, const std::vector<ValuePanel>& panels, const std::string& file,
                 const std::filesystem::path& dir) {
  const double panel_w = 700, panel_h = 620;
  const Layout layout{panel_w, panel_h, svg::PanelStyle{48, 16, 58, 48, 100}};
  svg::Range xr, yr;
  equal_aspect(e, layout, &xr, &yr);
  svg::Canvas canvas(panel_w * static_cast<double>(panels.size()), panel_h);
  for (size_t p = 0; p < panels.size(); ++p) {
    const ValuePanel& v = panels[p];
    svg::Panel panel(canvas, panel_w * static_cast<double>(p), 0, panel_w, panel_h, xr, yr, layout.style);
    const svg::Range range = v.unit_range ? svg::Range{0, 1} : svg::finite_range(*v.values);
    // Draw low values first so that the few high ones are not buried.
    std::vector<size_t> order(v.values->size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const double va = std::isfinite((*v.values)[a]) ? (*v.values)[a] : -INFINITY;
      const double vb = std::isfinite((*v.values)[b]) ? (*v.values)[b] : -INFINITY;
      return va < vb;
    });
    std::vector<double> xs, ys, vals;
    for (size_t i : order) {
      xs.push_back(e.x[i]);
      ys.push_back(e.y[i]);
      vals.push_back((*v.values)[i]);
    }
    panel.scatter(xs, ys, value_colors(vals, range, svg::Colormap::kViridis),
                  point_radius(static_cast<int64_t>(e.x.size())), 0.9);
    panel.frame(v.title, e.x_label, e.y_label, v.subtitle);
    panel.colorbar(v.bar_label, range, svg::Colormap::kViridis);
  }
  save(canvas, dir, file);
}

// ---- (d) training loss ---------------------------------------------------------------------

void plot_loss(const std::vector<double>& loss, const std::filesystem::path& dir) {
  std::vector<double> epochs;
  for (size_t i = 0; i < loss.size(); ++i) epochs.push_back(static_cast<double>(i + 1));
  svg::Canvas canvas(760, 520);
  svg::PanelStyle style{84, 24, 58, 48, 150};
  svg::Panel panel(canvas, 0, 0, 760, 520, svg::finite_range(epochs), svg::finite_range(loss, 0.04), style);
  panel.axes("Training loss (negative ELBO)", "epoch", "loss (-ELBO)",
             std::to_string(loss.size()) + " epochs; final loss " +
                 svg::significant(loss.empty() ? 0 : loss.back(), 6));
  panel.polyline(epochs, loss, "#1f77b4", 1.6);
  panel.legend("", {"loss per epoch"}, {svg::Color{0x1f, 0x77, 0xb4}}, 1);
  save(canvas, dir, "elbo.svg");
}

// ---- (e) phase portraits -------------------------------------------------------------------

std::vector<double> gene_counts(const io::CountMatrix& m, int64_t gene) {
  std::vector<double> out(static_cast<size_t>(m.rows), 0.0);
  for (int64_t r = 0; r < m.rows; ++r) {
    if (!m.sparse) {
      out[static_cast<size_t>(r)] = m.dense[static_cast<size_t>(r * m.cols + gene)];
      continue;
    }
    for (int64_t k = m.indptr[static_cast<size_t>(r)]; k < m.indptr[static_cast<size_t>(r) + 1]; ++k) {
      if (m.indices[static_cast<size_t>(k)] == gene) out[static_cast<size_t>(r)] = m.data[static_cast<size_t>(k)];
    }
  }
  return out;
}

std::vector<double> layer_column(const io::DenseMatrix<float>& m, int64_t gene) {
  std::vector<double> out(static_cast<size_t>(m.rows));
  for (int64_t r = 0; r < m.rows; ++r) out[static_cast<size_t>(r)] = m.values[static_cast<size_t>(r * m.cols + gene)];
  return out;
}

const io::UnsValue* uns_entry(const io::AnnData& data, const std::string& key) {
  const auto pv = data.uns.dict.find("pyrovelocity");
  if (pv == data.uns.dict.end() || pv->second.kind != io::UnsValue::Kind::kDict) return nullptr;
  const auto entry = pv->second.dict.find(key);
  return entry == pv->second.dict.end() ? nullptr : &entry->second;
}

// The fitted trajectory in the units of the observed counts. With correct_library_size the model's
// Poisson rate is ut'[c,g] / sum_g' ut'[c,g'] * read depth (ut' = relu(ut) + eps), so the fit is
// drawn as expected counts at the median library size; without it, ut and st are the rates.
struct FitScale {
  std::vector<double> u, s;  // per-cell multipliers of ut_pyro and st_pyro
  std::vector<std::string> note;  // lines under the figure's title
};

FitScale fit_scale(const io::AnnData& data, const io::DenseMatrix<float>& ut, const io::DenseMatrix<float>& st) {
  bool corrected = true;  // the model's default
  if (const io::UnsValue* options = uns_entry(data, "options")) {
    const auto flag = options->dict.find("correct_library_size");
    if (flag != options->dict.end() && flag->second.kind == io::UnsValue::Kind::kInteger) corrected = flag->second.integer != 0;
    if (flag != options->dict.end() && flag->second.kind == io::UnsValue::Kind::kNumber) corrected = flag->second.number != 0;
  }
  FitScale scale;
  scale.u.assign(static_cast<size_t>(ut.rows), 1.0);
  scale.s.assign(static_cast<size_t>(st.rows), 1.0);
  if (!corrected) {
    scale.note = {"points: observed counts; line: posterior-mean fit (st_pyro, ut_pyro)", "in order of latent time"};
    return scale;
  }
  constexpr double kEps = 1e-6;
  for (const bool unspliced : {true, false}) {
    const io::DenseMatrix<float>& fit = unspliced ? ut : st;
    std::vector<double> library = io::library_sizes(data, unspliced);
    std::vector<double> sorted = library;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.empty() ? 1.0 : sorted[sorted.size() / 2];
    std::vector<double>& factor = unspliced ? scale.u : scale.s;
    for (int64_t c = 0; c < fit.rows; ++c) {
      double total = 0;
      for (int64_t g = 0; g < fit.cols; ++g) total += std::max(0.0f, fit.values[static_cast<size_t>(c * fit.cols + g)]) + kEps;
      factor[static_cast<size_t>(c)] = total > 0 ? median / total : 0.0;
    }
  }
  scale.note = {"points: observed counts; line: posterior-mean fit in order of latent time,",
                "as expected counts at the median library size"};
  return scale;
}

void plot_phase_portraits(const io::AnnData& data, const std::vector<int64_t>& genes,
                          const io::DenseMatrix<float>& ut, const io::DenseMatrix<float>& st, const FitScale& scale,
                          const std::vector<double>& time, const Groups& groups, const std::filesystem::path& dir) {
  const int columns = genes.size() > 1 ? 2 : 1;
  const int rows = static_cast<int>((genes.size() + 1) / 2);
  const double panel_w = 460, panel_h = 400, key_w = 180, header = 62;
  svg::Canvas canvas(panel_w * columns + key_w, panel_h * rows + header);
  canvas.text(canvas.width() / 2, 22, "Phase portraits: observed counts and the fitted trajectory", 15,
              svg::Anchor::kMiddle, 0, true);
  for (size_t i = 0; i < scale.note.size(); ++i) {
    canvas.text(canvas.width() / 2, 39 + 13 * static_cast<double>(i), scale.note[i], 11, svg::Anchor::kMiddle);
  }
  // Cells in order of latent time: the fitted (s, u) trajectory is drawn along it.
  std::vector<size_t> order;
  for (size_t i = 0; i < time.size(); ++i)
    if (std::isfinite(time[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return time[a] < time[b]; });
  const io::Column* correlation = data.var.find("time_correlation_pyro");
  const std::vector<svg::Color> colors = group_colors(groups);
  const double radius = point_radius(static_cast<int64_t>(time.size())) * 0.9;
  for (size_t g = 0; g < genes.size(); ++g) {
    const int64_t gene = genes[g];
    const std::vector<double> s = gene_counts(data.layers.at("spliced"), gene);
    const std::vector<double> u = gene_counts(data.layers.at("unspliced"), gene);
    const std::vector<double> s_fit_cells = layer_column(st, gene), u_fit_cells = layer_column(ut, gene);
    std::vector<double> s_fit, u_fit;
    for (size_t i : order) {
      s_fit.push_back(s_fit_cells[i] * scale.s[i]);
      u_fit.push_back(u_fit_cells[i] * scale.u[i]);
    }
    std::vector<double> all_s = s, all_u = u;
    all_s.insert(all_s.end(), s_fit.begin(), s_fit.end());
    all_u.insert(all_u.end(), u_fit.begin(), u_fit.end());
    svg::Range xr = svg::finite_range(all_s, 0.04), yr = svg::finite_range(all_u, 0.04);
    xr.lo = std::min(xr.lo, -0.02 * (xr.hi - xr.lo));
    yr.lo = std::min(yr.lo, -0.02 * (yr.hi - yr.lo));
    const double x0 = panel_w * static_cast<double>(g % 2), y0 = header + panel_h * static_cast<double>(g / 2);
    svg::PanelStyle style{64, 16, 44, 48, 0};
    svg::Panel panel(canvas, x0, y0, panel_w, panel_h, xr, yr, style);
    const std::string name = data.var.index.at(static_cast<size_t>(gene));
    std::string subtitle;
    if (correlation && correlation->kind == io::Column::Kind::kNumeric &&
        std::isfinite(correlation->numeric.at(static_cast<size_t>(gene)))) {
      subtitle = "correlation of u with latent time: " + svg::number(correlation->numeric[static_cast<size_t>(gene)], 3);
    }
    panel.axes(name, "spliced counts", "unspliced counts", subtitle);
    panel.scatter(s, u, colors, radius, 0.6);
    panel.polyline(s_fit, u_fit, "#000000", 1.8);
  }
  // One key for every panel, at the right edge.
  svg::Panel key(canvas, panel_w * columns - 16, header, key_w + 16, panel_h * std::min(rows, 2),
                 svg::Range{0, 1}, svg::Range{0, 1}, svg::PanelStyle{0, key_w, 44, 48, 0});
  std::vector<std::string> labels = groups.names;
  std::vector<svg::Color> palette = group_palette(groups);
  labels.insert(labels.begin(), "fit (posterior mean)");
  palette.insert(palette.begin(), svg::Color{0, 0, 0});
  key.legend(groups.key.empty() ? "cells" : groups.key, labels, palette, 1);
  save(canvas, dir, "phase_portraits.svg");
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::string item;
  for (char c : text + ",") {
    if (c == ',') {
      if (!item.empty()) items.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  return items;
}

// --genes, else uns pyrovelocity/genes, else the largest time_correlation_pyro, else the first.
std::vector<int64_t> select_genes(const io::AnnData& data, const std::string& requested, const std::string& path) {
  std::map<std::string, int64_t> position;
  for (size_t i = 0; i < data.var.index.size(); ++i) position.emplace(data.var.index[i], static_cast<int64_t>(i));
  std::vector<int64_t> genes;
  if (!requested.empty()) {
    for (const std::string& name : split_list(requested)) {
      const auto it = position.find(name);
      if (it == position.end()) fail(PV_ERR_INVALID_ARGUMENT, path + ": --genes: no gene '" + name + "' in var");
      if (genes.size() < 4 && std::find(genes.begin(), genes.end(), it->second) == genes.end()) genes.push_back(it->second);
    }
    return genes;
  }
  const io::UnsValue* ranked = uns_entry(data, "genes");
  if (ranked && ranked->kind == io::UnsValue::Kind::kStringArray) {
    for (const std::string& name : ranked->strings) {
      const auto it = position.find(name);
      if (it != position.end() && genes.size() < 4 &&
          std::find(genes.begin(), genes.end(), it->second) == genes.end()) {
        genes.push_back(it->second);
      }
    }
    if (!genes.empty()) return genes;
  }
  const int64_t n = static_cast<int64_t>(data.var.index.size());
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  const io::Column* correlation = data.var.find("time_correlation_pyro");
  if (correlation && correlation->kind == io::Column::Kind::kNumeric) {
    const auto key = [&](int64_t i) {
      const double v = correlation->numeric[static_cast<size_t>(i)];
      return std::isfinite(v) ? v : -INFINITY;
    };
    std::stable_sort(all.begin(), all.end(), [&](int64_t a, int64_t b) { return key(a) > key(b); });
  }
  all.resize(static_cast<size_t>(std::min<int64_t>(4, n)));
  return all;
}

}  // namespace

int run_plot(const std::vector<std::string>& args) {
  ArgParser parser("plot", "RESULT.h5ad -o DIR [options]",
                   "Draw the figures of a fit (the .h5ad that pvengine fit writes) as SVG files in DIR:\n"
                   "velocity_embedding.svg, uncertainty.svg, latent_time.svg, elbo.svg and\n"
                   "phase_portraits.svg. A figure whose inputs are absent is skipped with a note.");
  parser.option("-o", "", "output directory (created if missing)");
  parser.option("--cluster-key", "clusters", "obs column that colours cells by group");
  parser.option("--basis", "umap", "embedding: obsm X_<basis> and velocity_pyro_<basis>");
  parser.option("--genes", "", "comma-separated genes for the phase portraits (at most 4; default: "
                               "uns pyrovelocity/genes, else the highest time_correlation_pyro)");
  parser.option("--arrows-max", "1500", "most velocity arrows drawn (cells subsampled evenly over the embedding)");
  if (!parser.parse(args)) return 0;
  if (parser.positionals().size() != 1) {
    fail(PV_ERR_INVALID_ARGUMENT, "plot takes one RESULT.h5ad (see pvengine plot --help)");
  }
  const std::string path = parser.positionals()[0];
  const std::string out = parser.get("-o");
  if (out.empty()) fail(PV_ERR_INVALID_ARGUMENT, "plot needs an output directory: -o DIR");
  const long long max_arrows = parser.get_int("--arrows-max");
  if (max_arrows < 0) fail(PV_ERR_INVALID_ARGUMENT, "--arrows-max must be >= 0");
  const std::filesystem::path dir(out);
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec)) {
    fail(PV_ERR_INVALID_ARGUMENT, out + ": exists and is not a directory");
  }

  io::ReadOptions options;
  options.allow_non_integer = true;  // the figures do not need whole counts
  const io::AnnData data = io::read_h5ad(path, options);
  const int64_t n_cells = static_cast<int64_t>(data.obs.index.size());
  const std::string basis = parser.get("--basis");
  const auto coords = data.obsm.find("X_" + basis);
  if (coords == data.obsm.end() || coords->second.cols < 2) {
    std::string available;
    for (const auto& [name, m] : data.obsm) available += (available.empty() ? "" : ", ") + name;
    fail(PV_ERR_INVALID_ARGUMENT, path + ": obsm 'X_" + basis + "' " +
                                      (coords == data.obsm.end() ? "missing" : "has fewer than 2 columns") +
                                      " (the embedding to plot, see --basis); obsm in the file: " +
                                      (available.empty() ? "(none)" : available));
  }
  const std::vector<int64_t> genes = select_genes(data, parser.get("--genes"), path);

  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    fail(PV_ERR_IO, out + ": cannot create the output directory" + (ec ? " (" + ec.message() + ")" : ""));
  }

  Embedding embedding;
  embedding.name = basis_title(basis);
  embedding.x_label = embedding.name + " 1";
  embedding.y_label = embedding.name + " 2";
  for (int64_t c = 0; c < n_cells; ++c) {
    embedding.x.push_back(coords->second.values[static_cast<size_t>(c * coords->second.cols)]);
    embedding.y.push_back(coords->second.values[static_cast<size_t>(c * coords->second.cols + 1)]);
  }
  std::string group_note;
  const Groups groups = cell_groups(data, parser.get("--cluster-key"), n_cells, &group_note);
  if (!group_note.empty()) std::fprintf(stderr, "pvengine plot: %s\n", group_note.c_str());

  // (a)
  const std::string velocity_key = "velocity_pyro_" + basis;
  const auto velocity = data.obsm.find(velocity_key);
  if (velocity == data.obsm.end() || velocity->second.cols < 2) {
    skip("velocity_embedding.svg", "obsm '" + velocity_key + "'");
  } else {
    std::vector<double> vx, vy;
    for (int64_t c = 0; c < n_cells; ++c) {
      vx.push_back(velocity->second.values[static_cast<size_t>(c * velocity->second.cols)]);
      vy.push_back(velocity->second.values[static_cast<size_t>(c * velocity->second.cols + 1)]);
    }
    plot_velocity_embedding(embedding, vx, vy, groups, max_arrows, dir);
  }

  // (b)
  if (const std::vector<double>* fdri = numeric_obs(data, "fdri_pyro")) {
    std::vector<ValuePanel> panels{{fdri, "Velocity direction: Rayleigh test, FDR",
                                    "fdri_pyro; low = samples agree on the direction", "FDR (fdri_pyro)", false}};
    if (const std::vector<double>* confidence = numeric_obs(data, "velocity_confidence_pyro")) {
      panels.push_back({confidence, "Velocity confidence",
                        "fraction of posterior samples within 45 degrees of the mean direction",
                        "confidence (velocity_confidence_pyro)", true});
    } else {
      std::fprintf(stderr, "pvengine plot: uncertainty.svg without its second panel: obs 'velocity_confidence_pyro' missing\n");
    }
    plot_values(embedding, panels, "uncertainty.svg", dir);
  } else {
    skip("uncertainty.svg", "obs 'fdri_pyro'");
  }

  // (c)
  const std::vector<double>* time = numeric_obs(data, "cell_time_pyro");
  if (time) {
    std::vector<ValuePanel> panels{{time, "Latent time (posterior mean)", "cell_time_pyro", "latent time", false}};
    if (const std::vector<double>* sd = numeric_obs(data, "cell_time_pyro_std")) {
      panels.push_back({sd, "Latent time uncertainty", "posterior standard deviation (cell_time_pyro_std)",
                        "sd of latent time", false});
    }
    plot_values(embedding, panels, "latent_time.svg", dir);
  } else {
    skip("latent_time.svg", "obs 'cell_time_pyro'");
  }

  // (d)
  const io::UnsValue* loss = uns_entry(data, "loss_history");
  if (loss && loss->kind == io::UnsValue::Kind::kNumberArray && !loss->numbers.empty()) {
    plot_loss(loss->numbers, dir);
  } else {
    skip("elbo.svg", "uns 'pyrovelocity/loss_history'");
  }

  // (e)
  std::set<std::string> layers;
  for (const io::ElementSummary& e : io::describe_h5ad(path).layers) layers.insert(e.name);
  if (!time) {
    skip("phase_portraits.svg", "obs 'cell_time_pyro'");
  } else if (!layers.count("ut_pyro") || !layers.count("st_pyro")) {
    skip("phase_portraits.svg", std::string("layers '") + (layers.count("ut_pyro") ? "st_pyro" : "ut_pyro") + "'");
  } else if (genes.empty()) {
    skip("phase_portraits.svg", "var (no genes)");
  } else {
    const io::DenseMatrix<float> ut = io::read_dense_layer(path, "ut_pyro");
    const io::DenseMatrix<float> st = io::read_dense_layer(path, "st_pyro");
    const int64_t n_genes = static_cast<int64_t>(data.var.index.size());
    for (const auto* m : {&ut, &st}) {
      if (m->rows != n_cells || m->cols != n_genes) {
        fail(PV_ERR_FORMAT, path + ": layers '" + (m == &ut ? "ut_pyro" : "st_pyro") + "' is " +
                                std::to_string(m->rows) + " x " + std::to_string(m->cols) + ", expected " +
                                std::to_string(n_cells) + " x " + std::to_string(n_genes));
      }
    }
    plot_phase_portraits(data, genes, ut, st, fit_scale(data, ut, st), *time, groups, dir);
  }
  return 0;
}

}  // namespace pv::cli
