// bench_io: how long read_h5ad takes and how much memory it peaks at, on the pancreas dataset
// and on a generated 100k-cell file. One warm-up read, then --reps timed reads (mean +- sd);
// peak RSS is the process's VmHWM, reset before the timed reads. Prints a markdown table and
// writes JSON stamped with the build and the git commit.
//
//   bench_io [--reps 5] [--cells 100000] [--genes 2000] [--density 0.05] [--seed 42]
//            [--pancreas PATH] [--work DIR] [--json PATH] [--keep]
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "io/h5ad_reader.h"
#include "io/h5ad_writer.h"
#include "pv_build_config.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  int reps = 5;
  int64_t cells = 100000, genes = 2000;
  double density = 0.05;
  uint64_t seed = 42;
  std::string pancreas = PV_SHARED_DIR "/data/pancreas.h5ad";
  std::string work;  // default: a fresh directory under the system temp dir
  std::string json = PV_SOURCE_DIR "/bench/out/io.json";
  bool keep = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_io: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--reps") o.reps = std::stoi(value());
    else if (a == "--cells") o.cells = std::stoll(value());
    else if (a == "--genes") o.genes = std::stoll(value());
    else if (a == "--density") o.density = std::stod(value());
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--pancreas") o.pancreas = value();
    else if (a == "--work") o.work = value();
    else if (a == "--json") o.json = value();
    else if (a == "--keep") o.keep = true;
    else {
      std::fprintf(stderr, "bench_io: unknown option %s (see the comment at the top of bench_io.cpp)\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.reps < 1) o.reps = 1;
  return o;
}

// A line of /proc/self/status ("VmHWM:  123456 kB") in MiB; -1 if unavailable.
double status_mib(const char* key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) {
      std::istringstream fields(line.substr(std::string(key).size() + 1));
      double kib = -1;
      fields >> kib;
      return kib / 1024.0;
    }
  }
  return -1;
}

// Linux resets the peak-RSS mark (VmHWM) when "5" is written to clear_refs.
bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  return bool(clear.flush());
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

struct Result {
  std::string dataset;
  int64_t cells = 0, genes = 0, nnz_spliced = 0, nnz_unspliced = 0;
  double file_mib = 0, write_s = -1;
  std::vector<double> read_s;
  double baseline_rss_mib = 0, peak_rss_mib = 0;
  double mean() const {
    double sum = 0;
    for (double t : read_s) sum += t;
    return sum / read_s.size();
  }
  double sd() const {
    if (read_s.size() < 2) return 0;
    const double m = mean();
    double sum = 0;
    for (double t : read_s) sum += (t - m) * (t - m);
    return std::sqrt(sum / (read_s.size() - 1));
  }
};

Result measure_reads(const std::string& name, const std::string& path, int reps) {
  Result r;
  r.dataset = name;
  r.file_mib = fs::file_size(path) / (1024.0 * 1024.0);
  {
    const pv::io::AnnData warm = pv::io::read_h5ad(path);
    r.cells = warm.layers.at("spliced").rows;
    r.genes = warm.layers.at("spliced").cols;
    r.nnz_spliced = warm.layers.at("spliced").nnz();
    r.nnz_unspliced = warm.layers.at("unspliced").nnz();
  }
  r.baseline_rss_mib = status_mib("VmRSS");
  reset_peak_rss();
  for (int i = 0; i < reps; ++i) {
    const auto start = Clock::now();
    const pv::io::AnnData data = pv::io::read_h5ad(path);
    r.read_s.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  r.peak_rss_mib = status_mib("VmHWM");
  return r;
}

// Seeded sparse counts: each gene is present in a cell with probability `density` (geometric
// gaps between present genes), with counts 1 + Geometric(0.5); a few obs columns and an obsm.
pv::io::AnnData generate(const Options& o) {
  std::mt19937_64 rng(o.seed);
  std::geometric_distribution<int64_t> gap(o.density), extra(0.5);
  std::uniform_int_distribution<int32_t> cluster(0, 7);
  std::normal_distribution<double> normal;
  pv::io::AnnData data;
  for (const char* layer : {"spliced", "unspliced"}) {
    pv::io::CountMatrix m;
    m.rows = o.cells;
    m.cols = o.genes;
    m.sparse = true;
    m.indptr.reserve(o.cells + 1);
    const size_t expected = static_cast<size_t>(o.cells * o.genes * o.density * 1.05);
    m.indices.reserve(expected);
    m.data.reserve(expected);
    m.indptr.push_back(0);
    for (int64_t i = 0; i < o.cells; ++i) {
      for (int64_t j = gap(rng); j < o.genes; j += 1 + gap(rng)) {
        m.indices.push_back(static_cast<int32_t>(j));
        m.data.push_back(static_cast<float>(1 + extra(rng)));
      }
      m.indptr.push_back(static_cast<int64_t>(m.indices.size()));
    }
    data.layers[layer] = std::move(m);
  }
  pv::io::Column clusters;
  clusters.name = "clusters";
  clusters.kind = pv::io::Column::Kind::kCategorical;
  for (int k = 0; k < 8; ++k) clusters.categories.push_back("type" + std::to_string(k));
  pv::io::Column u_lib, s_lib;
  u_lib.name = "u_lib_size_raw";
  s_lib.name = "s_lib_size_raw";
  pv::io::DenseMatrix<double> umap{o.cells, 2, {}};
  for (int64_t i = 0; i < o.cells; ++i) {
    data.obs.index.push_back("cell" + std::to_string(i));
    clusters.codes.push_back(cluster(rng));
    u_lib.numeric.push_back(data.layers["unspliced"].row_sum(i));
    s_lib.numeric.push_back(data.layers["spliced"].row_sum(i));
    umap.values.push_back(normal(rng));
    umap.values.push_back(normal(rng));
  }
  data.obs.columns = {clusters, u_lib, s_lib};
  for (int64_t j = 0; j < o.genes; ++j) data.var.index.push_back("gene" + std::to_string(j));
  data.obsm["X_umap"] = std::move(umap);
  return data;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    std::vector<Result> results;
    if (fs::exists(o.pancreas)) {
      results.push_back(measure_reads("pancreas.h5ad", o.pancreas, o.reps));
    } else {
      std::fprintf(stderr, "bench_io: %s is absent; skipping it\n", o.pancreas.c_str());
    }

    const fs::path work = o.work.empty()
                              ? fs::temp_directory_path() / ("pvengine-bench-io-" + std::to_string(::getpid()))
                              : fs::path(o.work);
    fs::create_directories(work);
    const std::string generated = (work / "generated.h5ad").string();
    double write_s = 0;
    {
      const pv::io::AnnData data = generate(o);
      const auto start = Clock::now();
      pv::io::write_h5ad(generated, data);
      write_s = std::chrono::duration<double>(Clock::now() - start).count();
    }
    std::ostringstream name;
    name << "generated " << o.cells << "x" << o.genes << " CSR, density " << o.density;
    Result big = measure_reads(name.str(), generated, o.reps);
    big.write_s = write_s;
    results.push_back(big);
    if (!o.keep) fs::remove_all(work);

    const std::string build = pv::build_info();
    const std::string machine = cpu_model() + ", " + std::to_string(std::thread::hardware_concurrency()) + " CPUs";
    std::printf("build: %s\nmachine: %s\nreads: 1 warm-up + %d timed\n\n", build.c_str(), machine.c_str(), o.reps);
    std::printf("| dataset | cells x genes | nnz spliced + unspliced | file MiB | read s (mean +- sd) | "
                "peak RSS MiB (before read) | write s |\n|---|---|---|---|---|---|---|\n");
    for (const Result& r : results) {
      std::printf("| %s | %lld x %lld | %lld + %lld | %.1f | %.3f +- %.3f | %.0f (%.0f) | %s |\n",
                  r.dataset.c_str(), static_cast<long long>(r.cells), static_cast<long long>(r.genes),
                  static_cast<long long>(r.nnz_spliced), static_cast<long long>(r.nnz_unspliced),
                  r.file_mib, r.mean(), r.sd(), r.peak_rss_mib, r.baseline_rss_mib,
                  r.write_s < 0 ? "-" : std::to_string(r.write_s).substr(0, 5).c_str());
    }

    if (!o.json.empty()) {
      fs::create_directories(fs::path(o.json).parent_path());
      std::ofstream json(o.json);
      json << "{\n  \"benchmark\": \"io\",\n  \"commit\": \"" << PV_GIT_COMMIT << "\",\n  \"build\": \""
           << json_escape(build) << "\",\n  \"machine\": \"" << json_escape(machine)
           << "\",\n  \"reps\": " << o.reps << ",\n  \"results\": [\n";
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        json << "    {\"dataset\": \"" << json_escape(r.dataset) << "\", \"cells\": " << r.cells
             << ", \"genes\": " << r.genes << ", \"nnz_spliced\": " << r.nnz_spliced
             << ", \"nnz_unspliced\": " << r.nnz_unspliced << ", \"file_mib\": " << r.file_mib
             << ", \"read_s_mean\": " << r.mean() << ", \"read_s_sd\": " << r.sd()
             << ", \"read_s\": [";
        for (size_t k = 0; k < r.read_s.size(); ++k) json << (k ? ", " : "") << r.read_s[k];
        json << "], \"peak_rss_mib\": " << r.peak_rss_mib << ", \"rss_before_read_mib\": "
             << r.baseline_rss_mib << ", \"write_s\": " << r.write_s << "}"
             << (i + 1 < results.size() ? "," : "") << "\n";
      }
      json << "  ]\n}\n";
      std::printf("\nJSON: %s\n", o.json.c_str());
    }
  } catch (const pv::Error& e) {
    std::fprintf(stderr, "bench_io: %s\n", e.what());
    return 1;
  }
  return 0;
}
