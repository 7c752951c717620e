// `pvengine plot` as a user runs it: the built binary (PV_CLI) on a result file shaped like what
// `pvengine fit` writes, the SVG files it writes (parsed back), and its exit codes and messages.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "io/anndata.h"
#include "io/h5ad_writer.h"
#include "pv_build_config.h"
#include "svg_check.h"
#include "cli_runner.h"
#include "test_h5ad_support.h"

namespace {

using pv_test::Outcome;

Outcome pvengine(std::vector<std::string> args) {
  args.insert(args.begin(), "plot");
  return pv_test::run_program(PV_CLI, args);
}

bool contains(const std::string& text, const std::string& fragment) { return text.find(fragment) != std::string::npos; }
int64_t line_count(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

const char* const kFigures[] = {"velocity_embedding.svg", "uncertainty.svg", "latent_time.svg", "elbo.svg",
                                "phase_portraits.svg"};

bool has_text(const pv_test::SvgCheck& check, const std::string& text) {
  return std::find(check.texts.begin(), check.texts.end(), text) != check.texts.end();
}

}  // namespace

TEST_CASE("cli plot: --help prints usage and exits 0") {
  const Outcome help = pvengine({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "usage: pvengine plot"));
  CHECK(contains(help.out, "--arrows-max"));
  CHECK(help.err.empty());
}

#if PV_HDF5

namespace {

pv::io::Column numeric(const std::string& name, std::vector<double> values) {
  pv::io::Column c;
  c.name = name;
  c.numeric = std::move(values);
  return c;
}

pv::io::UnsValue numbers(std::vector<double> values) {
  pv::io::UnsValue v;
  v.kind = pv::io::UnsValue::Kind::kNumberArray;
  v.numbers = std::move(values);
  return v;
}

pv::io::CountMatrix dense(int64_t rows, int64_t cols, std::vector<float> values) {
  pv::io::CountMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.dense = std::move(values);
  return m;
}

struct FixtureOptions {
  bool fdri = true, confidence = true, loss = true, fitted_layers = true, uns_genes = true, clusters = true;
};

// C cells on two arcs in a 2-D embedding, three clusters (one name needing XML escapes), G genes
// following an induction/repression curve in latent time.
std::string result_file(const pv_test::TempDir& dir, const std::string& name, const FixtureOptions& o = {}) {
  const int64_t C = 90, G = 6;
  pv::io::AnnData data;
  for (int64_t c = 0; c < C; ++c) data.obs.index.push_back("cell" + std::to_string(c));
  for (int64_t g = 0; g < G; ++g) data.var.index.push_back("gene" + std::to_string(g));
  std::vector<double> time(C), time_sd(C), fdri(C), magnitude(C), confidence(C);
  pv::io::DenseMatrix<double> umap{C, 2, std::vector<double>(C * 2)}, velocity{C, 2, std::vector<double>(C * 2)};
  pv::io::Column clusters;
  clusters.name = "clusters";
  clusters.kind = pv::io::Column::Kind::kCategorical;
  clusters.categories = {"Ductal", "Ngn3 high EP", "Alpha & Beta <mature>"};
  std::vector<float> s(C * G), u(C * G), st(C * G), ut(C * G), vel(C * G);
  for (int64_t c = 0; c < C; ++c) {
    const double t = static_cast<double>(c) / (C - 1);
    time[c] = t;
    time_sd[c] = 0.05 + 0.1 * t;
    fdri[c] = std::fmod(0.37 * static_cast<double>(c), 1.0) * 0.2;
    confidence[c] = 1.0 - 0.5 * t;
    const double angle = 3.0 * t;
    umap.values[2 * c] = 10 * std::cos(angle);
    umap.values[2 * c + 1] = 10 * std::sin(angle);
    velocity.values[2 * c] = -std::sin(angle);
    velocity.values[2 * c + 1] = std::cos(angle);
    magnitude[c] = 1.0;
    clusters.codes.push_back(static_cast<int32_t>(std::min<int64_t>(2, c / 30)));
    for (int64_t g = 0; g < G; ++g) {
      const double alpha = 5.0 + g, beta = 1.0, gamma = 0.5;
      const double u_fit = t < 0.5 ? alpha / beta * (1 - std::exp(-4 * t)) : alpha / beta * (1 - std::exp(-2.0)) * std::exp(-4 * (t - 0.5));
      const double s_fit = u_fit * beta / gamma * (t < 0.5 ? 0.8 : 1.2);
      ut[c * G + g] = static_cast<float>(u_fit);
      st[c * G + g] = static_cast<float>(s_fit);
      u[c * G + g] = static_cast<float>(std::round(u_fit + ((c + g) % 3) - 1 > 0 ? u_fit + ((c + g) % 3) - 1 : 0));
      s[c * G + g] = static_cast<float>(std::round(s_fit + ((c * 7 + g) % 5) - 2 > 0 ? s_fit + ((c * 7 + g) % 5) - 2 : 0));
      vel[c * G + g] = static_cast<float>(beta * u_fit - gamma * s_fit);
    }
  }
  data.obs.columns.push_back(numeric("cell_time_pyro", time));
  data.obs.columns.push_back(numeric("cell_time_pyro_std", time_sd));
  if (o.fdri) data.obs.columns.push_back(numeric("fdri_pyro", fdri));
  data.obs.columns.push_back(numeric("embeds_magnitude_pyro", magnitude));
  if (o.confidence) data.obs.columns.push_back(numeric("velocity_confidence_pyro", confidence));
  if (o.clusters) data.obs.columns.push_back(clusters);
  for (const char* site : {"alpha_pyro", "beta_pyro", "gamma_pyro", "t0_pyro", "switching_pyro", "mean_mae_pyro"}) {
    data.var.columns.push_back(numeric(site, std::vector<double>(G, 1.0)));
  }
  // gene4 and gene1 correlate best with time.
  data.var.columns.push_back(numeric("time_correlation_pyro", {0.1, 0.8, -0.2, 0.3, 0.9, 0.5}));
  data.layers["spliced"] = dense(C, G, s);
  data.layers["unspliced"] = dense(C, G, u);
  if (o.fitted_layers) {
    data.layers["st_pyro"] = dense(C, G, st);
    data.layers["ut_pyro"] = dense(C, G, ut);
  }
  data.layers["velocity_pyro"] = dense(C, G, vel);
  data.obsm["X_umap"] = umap;
  data.obsm["velocity_pyro_umap"] = velocity;
  pv::io::UnsValue pyrovelocity;
  pyrovelocity.kind = pv::io::UnsValue::Kind::kDict;
  if (o.loss) {
    std::vector<double> loss;
    for (int e = 0; e < 200; ++e) loss.push_back(2.0e6 * std::exp(-e / 30.0) + 3.5e5);
    pyrovelocity.dict["loss_history"] = numbers(loss);
  }
  if (o.uns_genes) {
    pv::io::UnsValue genes;
    genes.kind = pv::io::UnsValue::Kind::kStringArray;
    genes.strings = {"gene2", "gene5", "no_such_gene", "gene0"};
    pyrovelocity.dict["genes"] = genes;
  }
  data.uns.dict["pyrovelocity"] = pyrovelocity;
  const std::string path = dir.file(name);
  pv::io::write_h5ad(path, data);
  return path;
}

pv_test::SvgCheck checked(const std::string& path) {
  INFO("file: " << path);
  REQUIRE(std::filesystem::is_regular_file(path));
  const pv_test::SvgCheck check = pv_test::check_svg(pv_test::file_bytes(path));
  REQUIRE_MESSAGE(check.error.empty(), check.error);
  return check;
}

int count_of(const pv_test::SvgCheck& check, const std::string& name) {
  const auto it = check.elements.find(name);
  return it == check.elements.end() ? 0 : it->second;
}

}  // namespace

TEST_CASE("cli plot: a result file gives five readable, well-formed figures") {
  pv_test::TempDir dir;
  const std::string input = result_file(dir, "result.h5ad");
  const std::string out = dir.file("figures/nested");
  const Outcome o = pvengine({input, "-o", out});
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  CHECK_MESSAGE(o.err.empty(), o.err);
  CHECK(line_count(o.out) == 5);
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(out)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"elbo.svg", "latent_time.svg", "phase_portraits.svg", "uncertainty.svg",
                                          "velocity_embedding.svg"});

  const pv_test::SvgCheck velocity = checked(out + "/velocity_embedding.svg");
  CHECK(has_text(velocity, "RNA velocity on UMAP (posterior mean)"));
  CHECK(has_text(velocity, "UMAP 1"));
  CHECK(has_text(velocity, "UMAP 2"));
  CHECK(has_text(velocity, "clusters"));
  CHECK(has_text(velocity, "Ngn3 high EP"));
  CHECK(has_text(velocity, "Alpha & Beta <mature>"));  // escaped in the file, read back intact
  CHECK(count_of(velocity, "path") == 90);              // one arrow per cell (fewer than --arrows-max)
  CHECK(count_of(velocity, "circle") == 90 + 3);        // cells + legend markers

  const pv_test::SvgCheck uncertainty = checked(out + "/uncertainty.svg");
  CHECK(has_text(uncertainty, "Velocity direction: Rayleigh test, FDR"));
  CHECK(has_text(uncertainty, "Velocity confidence"));
  CHECK(has_text(uncertainty, "FDR (fdri_pyro)"));
  CHECK(has_text(uncertainty, "UMAP 1"));
  CHECK(count_of(uncertainty, "linearGradient") == 2);  // two colour bars
  CHECK(count_of(uncertainty, "circle") == 2 * 90);

  const pv_test::SvgCheck time = checked(out + "/latent_time.svg");
  CHECK(has_text(time, "Latent time (posterior mean)"));
  CHECK(has_text(time, "latent time"));
  CHECK(count_of(time, "linearGradient") >= 1);

  const pv_test::SvgCheck elbo = checked(out + "/elbo.svg");
  CHECK(has_text(elbo, "Training loss (negative ELBO)"));
  CHECK(has_text(elbo, "epoch"));
  CHECK(has_text(elbo, "loss (-ELBO)"));
  CHECK(has_text(elbo, "loss per epoch"));
  CHECK(count_of(elbo, "polyline") == 1);

  // uns pyrovelocity/genes, in its order, names absent from var ignored.
  const pv_test::SvgCheck phase = checked(out + "/phase_portraits.svg");
  CHECK(has_text(phase, "gene2"));
  CHECK(has_text(phase, "gene5"));
  CHECK(has_text(phase, "gene0"));
  CHECK_FALSE(has_text(phase, "gene1"));
  CHECK(has_text(phase, "spliced counts"));
  CHECK(has_text(phase, "unspliced counts"));
  CHECK(has_text(phase, "fit (posterior mean)"));
  CHECK(has_text(phase, "Ngn3 high EP"));
  CHECK(count_of(phase, "polyline") == 3);  // one fitted trajectory per gene

  // The same input gives the same bytes.
  const std::string again = dir.file("again");
  REQUIRE(pvengine({input, "-o", again}).exit_code == 0);
  for (const char* figure : kFigures) {
    CHECK_MESSAGE(pv_test::file_bytes(out + "/" + figure) == pv_test::file_bytes(again + "/" + figure), figure);
  }
}

TEST_CASE("cli plot: --genes, the time-correlation fallback and --arrows-max") {
  pv_test::TempDir dir;
  FixtureOptions options;
  options.uns_genes = false;
  const std::string input = result_file(dir, "result.h5ad", options);

  REQUIRE(pvengine({input, "-o", dir.file("auto")}).exit_code == 0);
  const pv_test::SvgCheck fallback = checked(dir.file("auto/phase_portraits.svg"));
  for (const char* gene : {"gene4", "gene1", "gene5", "gene3"}) CHECK_MESSAGE(has_text(fallback, gene), gene);
  CHECK_FALSE(has_text(fallback, "gene0"));

  const Outcome chosen = pvengine({input, "-o", dir.file("chosen"), "--genes", "gene3,gene0", "--arrows-max", "10"});
  REQUIRE_MESSAGE(chosen.exit_code == 0, chosen.err);
  const pv_test::SvgCheck phase = checked(dir.file("chosen/phase_portraits.svg"));
  CHECK(has_text(phase, "gene3"));
  CHECK(has_text(phase, "gene0"));
  CHECK_FALSE(has_text(phase, "gene4"));
  CHECK(count_of(phase, "polyline") == 2);
  const pv_test::SvgCheck velocity = checked(dir.file("chosen/velocity_embedding.svg"));
  CHECK(count_of(velocity, "path") >= 1);
  CHECK(count_of(velocity, "path") <= 10);
  CHECK(has_text(velocity, "arrows: " + std::to_string(count_of(velocity, "path")) +
                               " of 90 cells; the 95th-percentile speed spans 4% of the embedding"));

  const Outcome unknown = pvengine({input, "-o", dir.file("bad"), "--genes", "gene1,Nope"});
  CHECK(unknown.exit_code != 0);
  CHECK(line_count(unknown.err) == 1);
  CHECK(contains(unknown.err, "'Nope'"));
}

TEST_CASE("cli plot: figures whose inputs are missing are skipped with one line naming the key") {
  pv_test::TempDir dir;
  FixtureOptions options;
  options.fdri = false;
  options.loss = false;
  options.fitted_layers = false;
  options.clusters = false;
  const std::string input = result_file(dir, "partial.h5ad", options);
  const Outcome o = pvengine({input, "-o", dir.file("out")});
  REQUIRE_MESSAGE(o.exit_code == 0, o.err);
  CHECK(contains(o.err, "skipped uncertainty.svg: obs 'fdri_pyro' missing"));
  CHECK(contains(o.err, "skipped elbo.svg: uns 'pyrovelocity/loss_history' missing"));
  CHECK(contains(o.err, "skipped phase_portraits.svg: layers 'ut_pyro' missing"));
  CHECK(contains(o.err, "obs 'clusters' missing"));
  CHECK(line_count(o.err) == 4);
  CHECK(std::filesystem::exists(dir.file("out/velocity_embedding.svg")));
  CHECK(std::filesystem::exists(dir.file("out/latent_time.svg")));
  CHECK_FALSE(std::filesystem::exists(dir.file("out/uncertainty.svg")));
  CHECK_FALSE(std::filesystem::exists(dir.file("out/elbo.svg")));
  CHECK_FALSE(std::filesystem::exists(dir.file("out/phase_portraits.svg")));
  const pv_test::SvgCheck velocity = checked(dir.file("out/velocity_embedding.svg"));
  CHECK(has_text(velocity, "all cells"));
}

TEST_CASE("cli plot: a missing file, embedding or output directory is one line and a non-zero exit") {
  pv_test::TempDir dir;
  const std::string input = result_file(dir, "result.h5ad");

  const Outcome missing = pvengine({dir.file("nope.h5ad"), "-o", dir.file("out")});
  CHECK(missing.exit_code != 0);
  CHECK(line_count(missing.err) == 1);
  CHECK(contains(missing.err, "nope.h5ad"));

  const Outcome basis = pvengine({input, "-o", dir.file("out"), "--basis", "tsne"});
  CHECK(basis.exit_code != 0);
  CHECK(line_count(basis.err) == 1);
  CHECK(contains(basis.err, "X_tsne"));
  CHECK_FALSE(std::filesystem::exists(dir.file("out")));

  pv_test::write_bytes(dir.file("a_file"), "x");
  const Outcome file = pvengine({input, "-o", dir.file("a_file")});
  CHECK(file.exit_code != 0);
  CHECK(line_count(file.err) == 1);
  CHECK(contains(file.err, "not a directory"));

  const Outcome no_out = pvengine({input});
  CHECK(no_out.exit_code != 0);
  CHECK(contains(no_out.err, "-o DIR"));
}

TEST_CASE("cli plot: a figure renders to PNG (rsvg-convert, when installed)") {
  if (std::system("command -v rsvg-convert >/dev/null 2>&1") != 0) {
    MESSAGE("rsvg-convert not on PATH: rendering skipped (Debian: apt-get install librsvg2-bin)");
    return;
  }
  pv_test::TempDir dir;
  const std::string input = result_file(dir, "result.h5ad");
  REQUIRE(pvengine({input, "-o", dir.file("out")}).exit_code == 0);
  for (const char* figure : kFigures) {
    INFO("figure: " << figure);
    const std::string png = dir.file(std::string(figure) + ".png");
    const Outcome render = pv_test::run_program("rsvg-convert", {"-o", png, dir.file(std::string("out/") + figure)});
    REQUIRE_MESSAGE(render.exit_code == 0, render.err);
    const std::string bytes = pv_test::file_bytes(png);
    CHECK(bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0);
    CHECK(bytes.size() > 5000);
  }
}

#endif  // PV_HDF5
