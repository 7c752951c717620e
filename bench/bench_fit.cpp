// bench_fit: SVI speed of the CPU backend on a real dataset (pancreas by default): full-batch
// epochs per second, cell-gene evaluations per second, posterior-sampling time, and the projected
// time of the reference pipeline's fit (3000 epochs + 30 samples). Warm-up steps, then --steps
// timed steps (mean +- sd). Prints markdown and writes JSON stamped with the build and commit.
//
//   bench_fit [--input PATH | --simulate CELLSxGENES [--mean-spliced 2 --mean-unspliced 1]]
//             [--device cpu|cuda|auto] [--batch-size 0] [--steps 20] [--warmup 2] [--samples 30]
//             [--model model1|model2] [--state marginal|sampled] [--train-first 0] [--json PATH]
// With --batch-size B > 0 a "step" is one epoch of shuffled minibatches of B cells. With
// --train-first N the steps are timed after N epochs of a 3000-epoch fit (its learning-rate decay):
// a fitted model's step differs from the first one (denormal floats appear late in a fit, for one).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "engine/backend.h"
#include "engine/simulator.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/posterior.h"
#include "engine/svi.h"
#include "io/h5ad_reader.h"
#include "pv_build_config.h"

using pv::bench::Clock;
using pv::bench::seconds_since;

int main(int argc, char** argv) {
  std::string input = PV_SHARED_DIR "/data/pancreas.h5ad", model_name = "model1", state = "marginal";
  std::string json = PV_SOURCE_DIR "/bench/out/fit.json";
  int steps = 20, warmup = 2, samples = 30, train_first = 0;
  std::string simulate, device = "cpu";
  double mean_spliced = 2.0, mean_unspliced = 1.0;
  int64_t batch_size = 0;
  if (argc % 2 == 0) {  // options come in pairs; a lone one (e.g. --help) must not start a long run
    std::fprintf(stderr, "bench_fit: %s needs a value (options are --name value pairs, see the top of bench_fit.cpp)\n",
                 argv[argc - 1]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--input") input = v;
    else if (a == "--steps") steps = std::stoi(v);
    else if (a == "--warmup") warmup = std::stoi(v);
    else if (a == "--samples") samples = std::stoi(v);
    else if (a == "--train-first") train_first = std::stoi(v);
    else if (a == "--model") model_name = v;
    else if (a == "--state") state = v;
    else if (a == "--json") json = v;
    else if (a == "--simulate") simulate = v;
    else if (a == "--mean-spliced") mean_spliced = std::stod(v);
    else if (a == "--mean-unspliced") mean_unspliced = std::stod(v);
    else if (a == "--device") device = v;
    else if (a == "--batch-size") batch_size = std::stoll(v);
    else {
      std::fprintf(stderr, "bench_fit: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    std::shared_ptr<pv::io::AnnData> data;
    if (!simulate.empty()) {
      pv::SimulationOptions so;
      pv::bench::parse_cells_x_genes(simulate, &so.cells, &so.genes);
      so.mean_spliced = mean_spliced;
      so.mean_unspliced = mean_unspliced;
      so.pca_components = 2;
      const auto t = Clock::now();
      data = std::make_shared<pv::io::AnnData>(pv::simulate(so));
      std::fprintf(stderr, "simulated %s in %.1f s\n", simulate.c_str(), seconds_since(t));
      input = "simulated " + simulate;
    } else {
      data = std::make_shared<pv::io::AnnData>(pv::io::read_h5ad(input));
    }
    pv::ModelOptions o;
    o.include_prior = o.add_offset = model_name == "model2";
    o.state = state == "sampled" ? pv::StateMode::kSampled : pv::StateMode::kMarginal;
    pv::VelocityModel model(pv::make_model_data(data), o, 0);
    if (pv::resolve_device(device) == pv::Device::kCuda) model.use_device(pv::DeviceLikelihood::create(model.data().counts));
    const double C = double(model.layout().cells), G = double(model.layout().genes);
    if (train_first > 0) {
      pv::TrainOptions t;
      t.mode = batch_size > 0 ? pv::TrainMode::kMiniBatch : pv::TrainMode::kFullBatch;
      t.batch_size = batch_size;
      t.max_epochs = train_first;
      t.improvement = 0;                          // no stop by the patience rule
      t.lr_decay = std::pow(0.1, 1.0 / 3000.0);  // a 3000-epoch fit's schedule
      const auto start = Clock::now();
      pv::Trainer(model, t).run();
      std::fprintf(stderr, "trained %d epochs first in %.1f s\n", train_first, seconds_since(start));
    }
    std::vector<double> grads;
    // One epoch: the full batch, or every cell once in minibatches.
    std::vector<std::vector<int64_t>> batches(1);
    if (batch_size > 0)
      for (int64_t first = 0; first < int64_t(C); first += batch_size) {
        std::vector<int64_t> b;
        for (int64_t c = first; c < std::min<int64_t>(int64_t(C), first + batch_size); ++c) b.push_back(c);
        batches.push_back(b);
      }
    if (batch_size > 0) batches.erase(batches.begin());
    uint64_t draw = 0;
    auto epoch = [&] {
      for (const auto& b : batches) model.loss(b, draw++, &grads);
    };
    const pv::bench::Timing timing = pv::bench::time_it(warmup, steps, epoch);
    const double mean = timing.mean, sd = timing.sd;
    pv::PosteriorOptions p;
    p.num_samples = samples;
    const auto t = Clock::now();
    pv::summarise_posterior(model, p);
    const double sampling = seconds_since(t);
    const double projected = 3000.0 * mean + sampling;

    std::printf("| dataset | cells x genes | device | batch | model | k | epoch s (mean +- sd) | epoch s min | epochs/s | cell-gene evals/s | %d samples s | 3000 epochs + %d samples s |\n",
                samples, samples);
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::printf("| %s | %.0f x %.0f | %s | %lld | %s | %s | %.4f +- %.4f | %.4f | %.2f | %.3g | %.2f | %.0f |\n",
                std::filesystem::path(input).filename().c_str(), C, G, model.on_device() ? "cuda" : "cpu",
                (long long)batch_size, model_name.c_str(), state.c_str(), mean, sd, timing.min,
                1.0 / mean, C * G / mean, sampling, projected);
    if (train_first > 0) std::printf("\ntimed after %d training epochs\n", train_first);
    std::printf("\nbuild: %s\n", pv::build_info().c_str());
    std::filesystem::create_directories(std::filesystem::path(json).parent_path());
    std::ofstream out(json);
    out << "{\"build\": \"" << pv::build_info() << "\", \"commit\": \"" << PV_GIT_COMMIT << "\", \"input\": \"" << input
        << "\", \"cells\": " << C << ", \"genes\": " << G << ", \"model\": \"" << model_name << "\", \"state\": \"" << state
        << "\", \"device\": \"" << (model.on_device() ? "cuda" : "cpu") << "\", \"batch_size\": " << batch_size
        << ", \"epoch_seconds_mean\": " << mean << ", \"epoch_seconds_sd\": " << sd
        << ", \"epoch_seconds_min\": " << timing.min << ", \"steps\": " << steps << ", \"trained_first\": " << train_first
        << ", \"cell_gene_evals_per_second\": " << C * G / mean << ", \"sampling_seconds\": " << sampling
        << ", \"samples\": " << samples << ", \"projected_pipeline_seconds\": " << projected << "}\n";
  } catch (const pv::Error& e) {
    std::fprintf(stderr, "bench_fit: %s\n", e.what());
    return 1;
  }
  return 0;
}
