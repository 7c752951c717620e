// bench_likelihood: the fused cell x gene likelihood alone (value and gradient over all cells, the
// operation that is ~85 % of a CPU training step), for work on that kernel: a step also samples the
// guide and runs the optimiser, and the step's timing is noisier. Gene and cell latents are drawn
// once from a fixed seed at plausible values (rates around 1, times spread over the cells); the
// kernel is branch-free, so its speed does not depend on them. Prints a markdown row with a
// checksum of the results (equal checksums: the same sums) and writes JSON with build and commit.
//
//   bench_likelihood [--input PATH | --simulate CELLSxGENES] [--reps 30] [--warmup 2] [--json PATH]
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/likelihood.h"
#include "engine/likelihood_fast.h"
#include "engine/model.h"
#include "engine/simulator.h"
#include "io/h5ad_reader.h"
#include "pv_build_config.h"

int main(int argc, char** argv) {
  std::string input = PV_SHARED_DIR "/data/pancreas.h5ad", simulate;
  std::string json = PV_SOURCE_DIR "/bench/out/likelihood.json";
  int reps = 30, warmup = 2;
  if (argc % 2 == 0) {
    std::fprintf(stderr, "bench_likelihood: %s needs a value (see the top of bench_likelihood.cpp)\n", argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--input") input = v;
    else if (a == "--simulate") simulate = v;
    else if (a == "--reps") reps = std::stoi(v);
    else if (a == "--warmup") warmup = std::stoi(v);
    else if (a == "--json") json = v;
    else {
      std::fprintf(stderr, "bench_likelihood: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    pv::require(reps > 0 && warmup >= 0, PV_ERR_INVALID_ARGUMENT, "--reps must be > 0 and --warmup >= 0");
    std::shared_ptr<pv::io::AnnData> data;
    if (!simulate.empty()) {
      pv::SimulationOptions so;
      pv::bench::parse_cells_x_genes(simulate, &so.cells, &so.genes);
      so.mean_spliced = 2, so.mean_unspliced = 1, so.pca_components = 2;
      data = std::make_shared<pv::io::AnnData>(pv::simulate(so));
      input = "simulated " + simulate;
    } else {
      data = std::make_shared<pv::io::AnnData>(pv::io::read_h5ad(input));
    }
    const pv::ModelData model_data = pv::make_model_data(data);
    const pv::ModelOptions o;  // Poisson, k summed out, library-size correction: the default model
    const bool fast = pv::use_fast_likelihood(o);
    const int64_t G = model_data.genes(), C = model_data.cells();

    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    std::vector<double> gene[pv::kGeneSites];
    for (auto& v : gene) v.resize(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      gene[pv::kAlpha][g] = std::exp(normal(rng));
      gene[pv::kBeta][g] = std::exp(0.5 * normal(rng) - 0.5);
      gene[pv::kGamma][g] = std::exp(0.5 * normal(rng) - 1.0);
      gene[pv::kT0][g] = 2 * normal(rng);
      gene[pv::kUScale][g] = std::exp(0.3 * normal(rng));
      gene[pv::kDtSwitching][g] = std::exp(normal(rng) + 1);
    }
    std::vector<double> cell_time(static_cast<size_t>(C)), depth_u(cell_time), depth_s(cell_time);
    for (int64_t c = 0; c < C; ++c) {
      cell_time[c] = 5 + 3 * normal(rng);
      depth_u[c] = std::exp(model_data.log_library_u[c]);
      depth_s[c] = std::exp(model_data.log_library_s[c]);
    }
    pv::LikelihoodInputs in;
    for (int s = 0; s < pv::kGeneSites; ++s) in.gene[s] = s == pv::kUOffset || s == pv::kSOffset ? nullptr : gene[s].data();
    in.batch = C;
    in.cell_time = cell_time.data();
    in.u_read_depth = depth_u.data();
    in.s_read_depth = depth_s.data();

    pv::LikelihoodGradients grad;
    double value = 0;
    const pv::bench::Timing timing = pv::bench::time_it(warmup, reps, [&] {
      value = fast ? pv::cell_gene_log_likelihood_fast(model_data.counts, o, in, &grad)
                   : pv::cell_gene_log_likelihood(model_data.counts, o, in, &grad);
    });
    double checksum = 0;  // sum of |gradient| over every input: moves if any sum does
    for (const auto& v : grad.gene)
      for (double x : v) checksum += std::fabs(x);
    for (const auto* v : {&grad.cell_time, &grad.u_read_depth, &grad.s_read_depth})
      for (double x : *v) checksum += std::fabs(x);

    std::printf("| dataset | cells x genes | path | s per call (mean +- sd, %d reps) | cell-gene evals/s | value | sum of abs gradients |\n",
                reps);
    std::printf("|---|---|---|---|---|---|---|\n");
    std::printf("| %s | %lld x %lld | %s | %.4f +- %.4f | %.3g | %.10g | %.10g |\n",
                std::filesystem::path(input).filename().c_str(), (long long)C, (long long)G, fast ? "float32 fast" : "double reference",
                timing.mean, timing.sd, double(C) * double(G) / timing.mean, value, checksum);
    std::printf("\nbuild: %s\n", pv::build_info().c_str());
    std::filesystem::create_directories(std::filesystem::path(json).parent_path());
    std::ofstream out(json);
    out << "{\"build\": \"" << pv::build_info() << "\", \"commit\": \"" << PV_GIT_COMMIT << "\", \"input\": \"" << input
        << "\", \"cells\": " << C << ", \"genes\": " << G << ", \"path\": \"" << (fast ? "fast" : "reference")
        << "\", \"seconds_mean\": " << timing.mean << ", \"seconds_sd\": " << timing.sd << ", \"reps\": " << reps
        << ", \"value\": " << value << ", \"gradient_abs_sum\": " << checksum << "}\n";
  } catch (const pv::Error& e) {
    std::fprintf(stderr, "bench_likelihood: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_likelihood: %s\n", e.what());
    return 1;
  }
  return 0;
}
