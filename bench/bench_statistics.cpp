// bench_statistics: compute_statistics_from_posterior_samples on a real dataset (pancreas by
// default), the way Pyro-Velocity's API calls it: S posterior samples already in memory (drawn
// first, untimed), then the statistics (kNN, one velocity graph and embedding projection per
// sample and for the mean, direct PCA projection, Rayleigh + BH, gene ranking). Also times the
// streaming form (`pvengine fit`, `pv_model_statistics`), which draws the samples itself, and the
// part a GPU takes over alone: S velocity graphs and their embedding projection (FieldProjector,
// on --device).
// Warm-up, --reps timed repetitions (mean +- sd); markdown on stdout, JSON stamped with the build.
//
//   bench_statistics [--input PATH | --simulate CELLSxGENES] [--samples 30] [--reps 3] [--warmup 1]
//                    [--streaming 1] [--device cpu|cuda|auto] [--json PATH]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/posterior.h"
#include "engine/simulator.h"
#include "engine/statistics.h"
#include "io/h5ad_reader.h"
#include "pv_build_config.h"

using pv::bench::time_it;
using pv::bench::Timing;

int main(int argc, char** argv) {
  std::string input = PV_SHARED_DIR "/data/pancreas.h5ad", simulate;
  std::string json = PV_SOURCE_DIR "/bench/out/statistics.json", device = "cpu";
  int samples = 30, reps = 3, warmup = 1, streaming = 1;
  if (argc % 2 == 0) {  // options come in pairs; a lone one (e.g. --help) must not start a long run
    std::fprintf(stderr, "bench_statistics: %s needs a value (options are --name value pairs, see the top of bench_statistics.cpp)\n",
                 argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--input") input = v;
    else if (a == "--simulate") simulate = v;
    else if (a == "--samples") samples = std::stoi(v);
    else if (a == "--reps") reps = std::stoi(v);
    else if (a == "--warmup") warmup = std::stoi(v);
    else if (a == "--streaming") streaming = std::stoi(v);
    else if (a == "--json") json = v;
    else if (a == "--device") device = v;
    else {
      std::fprintf(stderr, "bench_statistics: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    std::shared_ptr<pv::io::AnnData> data;
    if (!simulate.empty()) {
      pv::SimulationOptions so;
      pv::bench::parse_cells_x_genes(simulate, &so.cells, &so.genes);
      so.pca_components = 30;
      data = std::make_shared<pv::io::AnnData>(pv::simulate(so));
      input = "simulated " + simulate;
    } else {
      data = std::make_shared<pv::io::AnnData>(pv::io::read_h5ad(input));
    }
    const pv::VelocityModel model(pv::make_model_data(data), pv::ModelOptions{}, 0);
    pv::StatisticsOptions options;
    pv::prepare_statistics(*data, &options, 0);
    options.device = pv::resolve_device(device);
    pv::PosteriorOptions posterior;
    posterior.num_samples = samples;
    const auto draw_start = pv::bench::Clock::now();
    const std::map<std::string, pv::Array> held = pv::generate_posterior_samples(model, posterior);
    const double draw_seconds = pv::bench::seconds_since(draw_start);
    const Timing from_held = time_it(warmup, reps, [&] { pv::compute_statistics(*data, held, options); });
    Timing streamed;
    if (streaming) streamed = time_it(0, 1, [&] { pv::compute_statistics(model, posterior, options); });
    // The graphs and projection alone: S fields (the samples' ut: the cost does not depend on the
    // values) against one sample's st, in compute_statistics' batches of 16, plan included.
    const int64_t cells = model.layout().cells, genes = model.layout().genes;
    const auto pca = data->obsm.find("X_pca");
    const pv::io::DenseMatrix<double>& space = pca != data->obsm.end() ? pca->second : options.knn_space;
    const pv::Knn knn = pv::knn_graph(space.values.data(), cells, space.cols, std::min<int64_t>(options.neighbours, cells));
    const pv::io::DenseMatrix<double>& basis = data->obsm.at("X_" + options.basis);
    std::vector<double> embedding;
    for (int64_t c = 0; c < cells; ++c) embedding.push_back(basis.values[c * basis.cols]), embedding.push_back(basis.values[c * basis.cols + 1]);
    const float* ut = held.at("ut").values.data();
    const Timing projection = time_it(warmup, reps, [&] {
      pv::FieldProjector projector(held.at("st").values.data(), cells, genes, knn, embedding.data(), options.device);
      for (int64_t first = 0; first < samples; first += 16) {
        std::vector<const float*> fields;
        for (int64_t k = first; k < std::min<int64_t>(samples, first + 16); ++k) fields.push_back(ut + k * cells * genes);
        projector.project(fields.data(), int64_t(fields.size()));
      }
    });

    const double C = double(model.layout().cells), G = double(model.layout().genes);
    const std::string name = simulate.empty() ? std::filesystem::path(input).filename().string() : input;
    std::printf("| dataset | cells x genes | samples | device | drawing the samples s | statistics from held samples s (mean +- sd, %d reps) | streaming (draws included) s | S graphs + projection s |\n", reps);
    std::printf("|---|---|---|---|---|---|---|---|\n");
    std::printf("| %s | %.0f x %.0f | %d | %s | %.2f | %.3f +- %.3f | %s | %.3f +- %.3f |\n", name.c_str(), C, G, samples,
                options.device == pv::Device::kCuda ? "cuda" : "cpu", draw_seconds, from_held.mean, from_held.sd,
                streaming ? std::to_string(streamed.mean).c_str() : "-", projection.mean, projection.sd);
    std::printf("\nbuild: %s, commit %s\n", pv::build_info().c_str(), PV_GIT_COMMIT);
    std::filesystem::create_directories(std::filesystem::path(json).parent_path());
    std::ofstream out(json);
    out << "{\"build\": \"" << pv::build_info() << "\", \"commit\": \"" << PV_GIT_COMMIT << "\", \"input\": \"" << name
        << "\", \"cells\": " << C << ", \"genes\": " << G << ", \"samples\": " << samples
        << ", \"draw_seconds\": " << draw_seconds << ", \"held_seconds_mean\": " << from_held.mean
        << ", \"held_seconds_sd\": " << from_held.sd << ", \"reps\": " << reps
        << ", \"streaming_seconds\": " << (streaming ? streamed.mean : -1.0)
        << ", \"device\": \"" << (options.device == pv::Device::kCuda ? "cuda" : "cpu")
        << "\", \"projection_seconds_mean\": " << projection.mean << ", \"projection_seconds_sd\": " << projection.sd << "}\n";
  } catch (const pv::Error& e) {
    std::fprintf(stderr, "bench_statistics: %s\n", e.what());
    return 1;
  }
  return 0;
}
