#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "engine/correlation.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/posterior.h"
#include "engine/simulator.h"
#include "engine/svi.h"
#include "kernels/dynamics.h"
#include "kernels/math.h"
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

std::shared_ptr<pv::io::AnnData> simulated(int64_t cells, int64_t genes, uint64_t seed) {
  pv::SimulationOptions o;
  o.cells = cells;
  o.genes = genes;
  o.seed = seed;
  o.pca_components = 2;
  return std::make_shared<pv::io::AnnData>(pv::simulate(o));
}

// A model with offsets on a small simulation, after 10 epochs: the posterior tests' subject.
std::unique_ptr<pv::VelocityModel> small_trained_model() {
  pv::ModelOptions o;
  o.add_offset = true;
  auto model = std::make_unique<pv::VelocityModel>(pv::make_model_data(simulated(60, 7, 4)), o, 1);
  pv::TrainOptions t;
  t.max_epochs = 10;
  pv::Trainer(*model, t).run();
  return model;
}

std::vector<double> column(const pv::io::DataFrame& frame, const std::string& name) {
  for (const auto& c : frame.columns)
    if (c.name == name) return c.numeric;
  FAIL("no column " << name);
  return {};
}

}  // namespace

TEST_CASE("recovery: a 2000 x 200 simulation gives back cell time, kinetics and switching") {
  auto data = simulated(2000, 200, 1);
  pv::VelocityModel model(pv::make_model_data(data), pv::ModelOptions{}, 0);
  pv::TrainOptions t;
  t.max_epochs = 600;
  t.improvement = 1e-4;
  const pv::TrainResult r = pv::Trainer(model, t).run();
  CHECK(r.loss.back() < r.loss.front());
  pv::PosteriorOptions p;
  p.num_samples = 30;
  pv::PosteriorSummary s = pv::summarise_posterior(model, p);
  const double time_rho = pv::spearman(s.mean["cell_time"], column(data->obs, "true_t"));
  std::vector<double> ratio, true_ratio;
  const std::vector<double> tg = column(data->var, "true_gamma"), tb = column(data->var, "true_beta");
  for (size_t g = 0; g < tg.size(); ++g) {
    ratio.push_back(s.mean["gamma"][g] / s.mean["beta"][g]);
    true_ratio.push_back(tg[g] / tb[g]);
  }
  const double ratio_rho = pv::spearman(ratio, true_ratio);
  const double switch_rho = pv::spearman(s.mean["switching"], column(data->var, "true_switching"));
  const double alpha_rho = pv::spearman(s.mean["alpha"], column(data->var, "true_alpha"));
  MESSAGE("Spearman after " << r.epochs << " epochs: cell_time " << time_rho << ", gamma/beta " << ratio_rho
                            << ", switching " << switch_rho << ", alpha " << alpha_rho);
  CHECK(time_rho >= 0.9);
  CHECK(ratio_rho >= 0.6);
  CHECK(switch_rho >= 0.5);
}

TEST_CASE("training is bit-identical for a seed whatever the number of threads") {
  auto data = simulated(150, 20, 2);
  pv::TrainOptions t;
  t.max_epochs = 15;
  t.mode = pv::TrainMode::kMiniBatch;
  t.batch_size = 40;
  std::vector<double> params[2], losses[2];
  for (int threads : {1, 2}) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    pv::VelocityModel model(pv::make_model_data(data), pv::ModelOptions{}, 9);
    losses[threads - 1] = pv::Trainer(model, t).run().loss;
    params[threads - 1] = model.params();
  }
  CHECK(params[0] == params[1]);
  CHECK(losses[0] == losses[1]);
  pv::VelocityModel other(pv::make_model_data(data), pv::ModelOptions{}, 10);
  CHECK(pv::Trainer(other, t).run().loss != losses[0]);
}

TEST_CASE("training is bit-identical on 1 and 2 threads at the sizes where the guide's loops use every thread") {
  // 4200 cells, and 700 genes x 6 sites = 4200 rows of the gene-level guide: above the 4096 rows
  // and elements from which the guide's rows, the element-wise cell terms and the noise draws
  // are split across threads, with the sums over rows taken in fixed blocks. A few epochs, so
  // that the guide's parameters differ from row to row.
  auto data = simulated(4200, 700, 3);
  pv::TrainOptions t;
  t.max_epochs = 3;
  for (pv::EntropyMode entropy : {pv::EntropyMode::kAnalytic, pv::EntropyMode::kSample}) {
    CAPTURE(int(entropy));
    pv::ModelOptions o;
    o.entropy = entropy;
    std::vector<double> params[2], losses[2];
    for (int threads : {1, 2}) {
#if defined(_OPENMP)
      omp_set_num_threads(threads);
#endif
      pv::VelocityModel model(pv::make_model_data(data), o, 5);
      REQUIRE(model.layout().gene_dim >= 4096);
      losses[threads - 1] = pv::Trainer(model, t).run().loss;
      params[threads - 1] = model.params();
    }
    CHECK(std::isfinite(losses[0].back()));
    CHECK(losses[0] == losses[1]);
    CHECK(params[0] == params[1]);
  }
}

TEST_CASE("the sampled-k estimator agrees in expectation with the exact sum over states") {
  auto data = std::make_shared<pv::io::AnnData>();
  for (const char* layer : {"unspliced", "spliced"}) {
    pv::io::CountMatrix m;
    m.rows = 2;
    m.cols = 1;
    m.dense = {layer[0] == 'u' ? 3.0f : 5.0f, layer[0] == 'u' ? 3.0f : 5.0f};
    data->layers[layer] = m;
  }
  const pv::ModelData md = pv::make_model_data(data);
  pv::ModelOptions o;
  o.correct_library_size = false;
  o.precision = pv::Precision::kDouble;
  const double gene[pv::kGeneSites] = {2.0, 0.6, 0.9, 0, 0, 0.1, 1.0, 1.2};
  pv::LikelihoodInputs in;
  for (int s = 0; s < pv::kGeneSites; ++s) in.gene[s] = &gene[s];
  const double t[2] = {1.4, 1.4}, depth[2] = {1, 1};
  in.batch = 2;
  in.cell_time = t;
  in.u_read_depth = in.s_read_depth = depth;
  auto value = [&](pv::StateMode mode, const int32_t* fixed, uint64_t seed) {
    o.state = mode;
    in.fixed_states = fixed;
    in.state_seed = seed;
    return pv::cell_gene_log_likelihood(md.counts, o, in, nullptr);
  };
  const int32_t zeros[2] = {0, 0}, ones[2] = {1, 1};
  const double term0 = value(pv::StateMode::kSampled, zeros, 0), term1 = value(pv::StateMode::kSampled, ones, 0);
  const double p1 = pv::sigmoid(t[0] - (gene[pv::kT0] + gene[pv::kDtSwitching]));
  const double expected = (1 - p1) * term0 + p1 * term1;
  const int draws = 4000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < draws; ++i) {
    const double v = value(pv::StateMode::kSampled, nullptr, uint64_t(i));
    sum += v;
    sum2 += v * v;
  }
  const double mean = sum / draws, se = std::sqrt((sum2 / draws - mean * mean) / draws);
  MESSAGE("sampled-k mean " << mean << " +- " << se << ", exact expectation " << expected);
  CHECK(std::fabs(mean - expected) < 4 * se + 1e-12);
  // The marginal is log E_k p(x, k) >= E_k log p(x, k) (Jensen), and equals the log-sum.
  const double marginal = value(pv::StateMode::kMarginal, nullptr, 0);
  CHECK(marginal >= expected);
  CHECK(marginal == doctest::Approx(2 * pv::logsumexp2(term0 / 2, term1 / 2).value).epsilon(1e-12));
}

TEST_CASE("posterior cell x gene draws: states at rate sigmoid(x1), ut and st the dynamics of the drawn state") {
  // The draws run in float over genes; here each is checked against the double formulas at the
  // same (float) sample values: the state frequency against the summed probabilities, ut and st
  // against kernels/dynamics.h given the drawn state.
  const auto model_owner = small_trained_model();
  const pv::VelocityModel& model = *model_owner;
  pv::PosteriorOptions p;
  p.num_samples = 200;
  p.seed = 5;
  p.predictive_counts = false;
  const auto draws = pv::generate_posterior_samples(model, p);
  const int64_t S = 200, C = 60, G = 7;
  const auto gene = [&](const char* key, int64_t s, int64_t g) { return double(draws.at(key).values[s * G + g]); };
  double repressed = 0, expected = 0, variance = 0, worst = 0;
  for (int64_t s = 0; s < S; ++s)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t i = (s * C + c) * G + g;
        const double time = draws.at("cell_time").values[s * C + c];
        const double x1 = time - gene("switching", s, g), prob = 1.0 / (1.0 + std::exp(-x1));
        const bool repression = draws.at("cell_gene_state").values[i] == 1.0f;
        repressed += repression, expected += prob, variance += prob * (1 - prob);
        const pv::Dynamics<double> d =
            repression ? pv::mrna_dynamics(pv::softplus(x1), gene("u_inf", s, g), gene("s_inf", s, g), 0.0,
                                           gene("beta", s, g), gene("gamma", s, g))
                       : pv::mrna_dynamics(pv::softplus(time - gene("t0", s, g)), gene("u_offset", s, g),
                                           gene("s_offset", s, g), gene("alpha", s, g), gene("beta", s, g),
                                           gene("gamma", s, g));
        const double ut = d.u * gene("u_scale", s, g), st = d.s;
        worst = std::max(worst, std::fabs(draws.at("ut").values[i] - ut) / (std::fabs(ut) + 1e-3));
        worst = std::max(worst, std::fabs(draws.at("st").values[i] - st) / (std::fabs(st) + 1e-3));
      }
  MESSAGE("repression draws " << repressed << ", expected " << expected << " +- " << std::sqrt(variance)
                              << "; worst relative error of ut, st " << worst);
  CHECK(std::fabs(repressed - expected) < 5 * std::sqrt(variance));
  CHECK(repressed > 0);
  CHECK(repressed < double(S * C * G));
  CHECK(worst < 2e-5);
}

TEST_CASE("posterior samples: keys, shapes, chunking invariance, summaries") {
  const auto model_owner = small_trained_model();
  const pv::VelocityModel& model = *model_owner;
  pv::PosteriorOptions p;
  p.num_samples = 5;
  p.seed = 3;
  const auto all = pv::generate_posterior_samples(model, p);
  const char* gene_keys[] = {"alpha", "gamma", "beta", "u_offset", "s_offset", "t0", "u_scale", "dt_switching", "u_inf", "s_inf", "switching"};
  for (const char* k : gene_keys) CHECK(all.at(k).shape == std::vector<int64_t>{5, 1, 7});
  for (const char* k : {"cell_time", "u_read_depth", "s_read_depth"}) CHECK(all.at(k).shape == std::vector<int64_t>{5, 60, 1});
  for (const char* k : {"cell_gene_state", "ut", "st", "u", "s"}) CHECK(all.at(k).shape == std::vector<int64_t>{5, 60, 7});
  CHECK(all.size() == 11 + 3 + 5);
  for (float k : all.at("cell_gene_state").values) REQUIRE((k == 0.0f || k == 1.0f));
  for (float u : all.at("u").values) REQUIRE((u >= 0 && u == std::floor(u)));

  p.batch_size = 13;
  const auto chunked = pv::generate_posterior_samples(model, p);
  for (const auto& [key, array] : all) CHECK_MESSAGE(chunked.at(key).values == array.values, key);

  // A subset of cells gets the same draws those cells get in the full set.
  p.cells = {5, 17};
  const auto subset = pv::generate_posterior_samples(model, p);
  CHECK(subset.at("cell_time").values[1] == all.at("cell_time").values[17]);
  CHECK(subset.at("alpha").values == all.at("alpha").values);

  p.cells.clear();
  const pv::PosteriorSummary s = pv::summarise_posterior(model, p);
  double mean = 0;
  for (int k = 0; k < 5; ++k) mean += all.at("alpha").values[k * 7 + 2] / 5.0;
  CHECK(s.mean.at("alpha")[2] == doctest::Approx(mean).epsilon(1e-6));
  double v_mean = 0;
  for (int k = 0; k < 5; ++k) {
    const int64_t i = (k * 60 + 9) * 7 + 3;
    v_mean += (all.at("beta").values[k * 7 + 3] * all.at("ut").values[i] / all.at("u_scale").values[k * 7 + 3] -
               all.at("gamma").values[k * 7 + 3] * all.at("st").values[i]) / 5.0;
  }
  CHECK(s.mean.at("velocity")[9 * 7 + 3] == doctest::Approx(v_mean).epsilon(1e-4));
  p.num_samples = 0;
  CHECK_THROWS_AS(pv::generate_posterior_samples(model, p), pv::Error);
}

TEST_CASE("stopping rules, validation split, cancellation and bad options") {
  auto data = simulated(40, 6, 5);
  pv::ModelOptions o;
  SUBCASE("the patience rule stops a run that no longer improves enough") {
    pv::VelocityModel model(pv::make_model_data(data), o, 0);
    pv::TrainOptions t;
    t.max_epochs = 500;
    t.log_every = 1;
    t.patience = 3;
    t.improvement = 10.0;  // no step can improve by 1000 %
    const pv::TrainResult r = pv::Trainer(model, t).run();
    CHECK(r.stop_reason == "patience");
    CHECK(r.epochs == 4);
  }
  SUBCASE("train(): a disjoint split, a validation loss per epoch, and early stopping that stops") {
    pv::VelocityModel model(pv::make_model_data(data), o, 0);
    pv::TrainOptions t;
    t.mode = pv::TrainMode::kValidated;
    t.train_size = 0.8;
    t.valid_size = 0.2;
    t.max_epochs = 3000;
    t.lr = 0.05;
    t.lr_decay = 1.0;
    t.early_stopping_patience = 5;
    const pv::TrainResult r = pv::Trainer(model, t).run();
    CHECK(r.train_cells.size() == 32);
    CHECK(r.validation_cells.size() == 8);
    for (int64_t v : r.validation_cells)
      CHECK(std::find(r.train_cells.begin(), r.train_cells.end(), v) == r.train_cells.end());
    CHECK(r.validation_loss.size() == size_t(r.epochs));
    CHECK(r.stop_reason == "early_stopping");
    CHECK(r.epochs < 3000);
    CHECK(r.validation_loss.back() < r.validation_loss.front());
  }
  SUBCASE("a progress callback can cancel") {
    pv::VelocityModel model(pv::make_model_data(data), o, 0);
    pv::TrainOptions t;
    t.max_epochs = 100;
    int calls = 0;
    try {
      pv::Trainer(model, t).run([&](const pv::TrainProgress&) { return ++calls < 3; });
      FAIL("not cancelled");
    } catch (const pv::Error& e) {
      CHECK(e.status() == PV_ERR_CANCELLED);
    }
    CHECK(calls == 3);
  }
  SUBCASE("a NaN loss stops training with a message naming it") {
    pv::VelocityModel model(pv::make_model_data(data), o, 0);
    model.params()[0] = NAN;
    pv::TrainOptions t;
    t.max_epochs = 5;
    try {
      pv::Trainer(model, t).run();
      FAIL("NaN not detected");
    } catch (const pv::Error& e) {
      CHECK(e.status() == PV_ERR_NUMERIC);
      CHECK(std::string(e.what()).find("NaN") != std::string::npos);
    }
  }
  SUBCASE("impossible options") {
    pv::VelocityModel model(pv::make_model_data(data), o, 0);
    pv::TrainOptions t;
    t.max_epochs = 0;
    CHECK_THROWS_AS(pv::Trainer(model, t), pv::Error);
    t.max_epochs = 5;
    t.batch_size = -1;
    CHECK_THROWS_AS(pv::Trainer(model, t), pv::Error);
    t.batch_size = 41;  // more than the 40 cells: one batch of them all, as in the reference's loader
    CHECK_NOTHROW(pv::Trainer(model, t));
    CHECK_THROWS_AS(pv::parse_likelihood("Gaussian"), pv::Error);
  }
}
