// The model against the independent numpy/scipy oracle (tests/oracle/model_oracle.py), and the
// whole ELBO gradient against finite differences.
#include <doctest/doctest.h>

#include "tests/oracle_file.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/guide.h"
#include "engine/model.h"
#include "engine/ops.h"
#include "engine/simulator.h"
#include "kernels/math.h"
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace {

const pv_test::Golden& oracle() {
  static const pv_test::Golden golden = pv_test::read_oracle("tests/oracle/model_oracle.txt");
  return golden;
}

const std::vector<double>& at(const std::string& name) { return pv_test::oracle_at(oracle(), name); }

std::shared_ptr<pv::io::AnnData> oracle_data() {
  auto d = std::make_shared<pv::io::AnnData>();
  const int64_t C = int64_t(at("C")[0]), G = int64_t(at("G")[0]);
  for (const char* layer : {"u", "s"}) {
    pv::io::CountMatrix m;
    m.rows = C;
    m.cols = G;
    for (double v : at(layer)) m.dense.push_back(float(v));
    d->layers[layer == std::string("u") ? "unspliced" : "spliced"] = m;
  }
  for (const char* lib : {"u_lib", "s_lib"}) {
    pv::io::Column c;
    c.name = std::string(lib) + "_size_raw";
    c.numeric = at(lib);
    d->obs.columns.push_back(c);
  }
  return d;
}

pv::Var<double> constant_of(pv::Tape<double>& tape, const std::vector<double>& v) {
  pv::Var<double> x = tape.constant(int64_t(v.size()));
  for (size_t i = 0; i < v.size(); ++i) x.value[i] = v[i];
  return x;
}

}  // namespace

using pv::Var;

TEST_CASE("log joint density matches the oracle for every option combination and both state treatments") {
  const pv::ModelData data = pv::make_model_data(oracle_data());
  const int64_t C = data.cells(), G = data.genes();
  std::vector<int32_t> states;
  for (double k : at("k")) states.push_back(int32_t(k));
  int compared = 0;
  for (const char* lik : {"poisson", "nb"})
    for (int prior : {0, 1})
      for (int offset : {0, 1})
        for (int lib : {0, 1})
          for (const char* mode : {"marginal", "sampled"}) {
            pv::ModelOptions o;
            o.likelihood = lik == std::string("nb") ? pv::Likelihood::kNegativeBinomial : pv::Likelihood::kPoisson;
            o.include_prior = prior;
            o.add_offset = offset;
            o.correct_library_size = lib;
            o.state = mode == std::string("marginal") ? pv::StateMode::kMarginal : pv::StateMode::kSampled;
            o.precision = pv::Precision::kDouble;
            pv::Tape<double> tape;
            pv::LogJointInputs in;
            for (int s = 0; s < pv::kGeneSites; ++s)
              if (offset || (s != pv::kUOffset && s != pv::kSOffset)) in.gene[s] = constant_of(tape, at(pv::gene_site_name(s)));
            in.dispersion_u = constant_of(tape, at("r_u"));
            in.dispersion_s = constant_of(tape, at("r_s"));
            for (int s = 0; s < pv::kCellSites; ++s) in.cell[s] = constant_of(tape, at(pv::cell_site_name(s)));
            in.batch = C;
            in.fixed_states = states.data();
            pv::LikelihoodGradients work;
            const double value = pv::log_joint(tape, data, o, in, &work).scalar();
            const std::string key = std::string("logp.") + lik + ".prior" + std::to_string(prior) + ".offset" +
                                    std::to_string(offset) + ".lib" + std::to_string(lib) + "." + mode;
            CAPTURE(key);
            CHECK(value == doctest::Approx(at(key)[0]).epsilon(1e-9));
            ++compared;
          }
  CHECK(compared == 32);
  CHECK(G == 5);
}

TEST_CASE("guide log-density and entropy match the oracle") {
  for (int offset : {0, 1}) {
    const std::string p = "guide.offset" + std::to_string(offset) + ".";
    pv::Tape<double> tape;
    const Var<double> loc = constant_of(tape, at(p + "loc")), raw = constant_of(tape, at(p + "raw"));
    const Var<double> F = constant_of(tape, at(p + "F")), z = constant_of(tape, at(p + "z"));
    const int64_t G = int64_t(at("G")[0]), sites = loc.size / G, rank = F.size / loc.size;
    const int t0_block = offset ? 5 : 3;
    double log_jacobian = 0, loc_positive = 0;
    for (int64_t s = 0; s < sites; ++s)
      if (s != t0_block)
        for (int64_t g = 0; g < G; ++g) {
          log_jacobian += z.value[s * G + g];
          loc_positive += loc.value[s * G + g];
        }
    const double log_q = pv::lowrank_log_density(tape, z, loc, raw, F, rank).scalar() - log_jacobian;
    const double entropy = pv::lowrank_entropy(tape, raw, F, rank).scalar() + loc_positive;
    CHECK(log_q == doctest::Approx(at(p + "logq_gene")[0]).epsilon(1e-10));
    CHECK(entropy == doctest::Approx(at(p + "entropy_gene")[0]).epsilon(1e-10));
    // The reparameterised sample is loc + d (F e1 + e2).
    const Var<double> sample = pv::lowrank_sample(tape, loc, raw, F, rank, constant_of(tape, at(p + "e1")),
                                                  constant_of(tape, at(p + "e2")));
    for (int64_t i = 0; i < z.size; ++i) CHECK(sample.value[i] == doctest::Approx(z.value[i]).epsilon(1e-12));
  }
  pv::Tape<double> tape;
  const Var<double> loc = constant_of(tape, at("guide.cell_loc")), z = constant_of(tape, at("guide.cell_z"));
  const Var<double> scale = pv::ops::softplus(tape, constant_of(tape, at("guide.cell_raw")));
  double sum_z = 0, entropy = 0;
  for (int64_t i = 0; i < z.size; ++i) {
    sum_z += z.value[i];
    entropy += 0.5 * (pv::Constants<double>::log_2pi + 1.0) + std::log(scale.value[i]) + loc.value[i];
  }
  CHECK(pv::ops::normal_log_prob_sum(tape, z, loc, scale).scalar() - sum_z ==
        doctest::Approx(at("guide.cell_logq")[0]).epsilon(1e-10));
  CHECK(entropy == doctest::Approx(at("guide.cell_entropy")[0]).epsilon(1e-10));
}

TEST_CASE("the whole ELBO gradient matches finite differences for every variational parameter") {
  pv::SimulationOptions so;
  so.cells = 9;
  so.genes = 3;
  so.seed = 5;
  so.mean_spliced = 4;
  so.mean_unspliced = 3;
  auto sim = std::make_shared<pv::io::AnnData>(pv::simulate(so));
  struct Case {
    std::string name;
    pv::ModelOptions o;
    std::vector<int64_t> batch;
  };
  std::vector<Case> cases(4);
  cases[0].name = "Poisson, marginal k, analytic entropy, full batch";
  cases[1].name = "NegativeBinomial, prior + offset, sample entropy, 2 particles";
  cases[1].o.likelihood = pv::Likelihood::kNegativeBinomial;
  cases[1].o.include_prior = cases[1].o.add_offset = true;
  cases[1].o.entropy = pv::EntropyMode::kSample;
  cases[1].o.num_particles = 2;
  cases[2].name = "minibatch of 4 cells, no library correction";
  cases[2].o.correct_library_size = false;
  cases[2].batch = {7, 2, 5, 0};
  cases[3].name = "sampled k";
  cases[3].o.state = pv::StateMode::kSampled;
  for (Case& c : cases) {
    c.o.precision = pv::Precision::kDouble;
    pv::VelocityModel model(pv::make_model_data(sim), c.o, 3);
    std::vector<double>& p = model.params();
    // Move away from the symmetric initialisation so every path carries gradient.
    for (size_t i = 0; i < p.size(); ++i) p[i] += 0.05 * std::sin(double(i) * 1.7);
    std::vector<double> grads, scratch;
    model.loss(c.batch, 4, &grads);
    int bad = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      const double x = p[i], h = 1e-6 * std::max(1.0, std::fabs(x));
      p[i] = x + h;
      const double up = model.loss(c.batch, 4, &scratch);
      p[i] = x - h;
      const double down = model.loss(c.batch, 4, &scratch);
      p[i] = x;
      const double fd = (up - down) / (2 * h);
      if (std::fabs(fd - grads[i]) > 1e-5 * std::max(1.0, std::fabs(fd))) {
        if (++bad <= 5) MESSAGE(c.name << ": parameter " << i << " analytic " << grads[i] << " vs finite difference " << fd);
      }
    }
    CAPTURE(c.name);
    CHECK(bad == 0);
  }
}

TEST_CASE("the float32 fast path agrees with the double reference, value and gradient") {
  pv::ModelOptions fast;
  if (!pv::use_fast_likelihood(fast)) {
    MESSAGE("the fast path is not available on this CPU or build; nothing to compare");
    return;
  }
  // 60 genes fill one tile of the fast path's per-gene arrays (at most 2000 genes a tile); 2003
  // make two (1008 and 995 genes, neither a multiple of the vector width), whose nonzero counts
  // are placed through a map and whose sums are taken tile by tile.
  struct Data {
    int64_t cells, genes;
    uint64_t seed;
  };
  for (const Data& d : {Data{150, 60, 12}, Data{24, 2003, 4}}) {
    pv::SimulationOptions so;
    so.cells = d.cells;
    so.genes = d.genes;
    so.seed = d.seed;
    auto sim = std::make_shared<pv::io::AnnData>(pv::simulate(so));
    // late: every third cell's time near 50, past the bound below which the fast path takes
    // e^-|t - t0| as a product of per-cell and per-gene exponentials (kProductTimes, 40), so both
    // of its ways are compared.
    for (bool late : {false, true})
      for (bool offset : {false, true})
        for (bool library : {true, false}) {
          pv::ModelOptions o;
          o.add_offset = offset;
          o.correct_library_size = library;
          pv::ModelOptions reference = o;
          reference.precision = pv::Precision::kDouble;
          pv::VelocityModel a(pv::make_model_data(sim), o, 2), b(pv::make_model_data(sim), reference, 2);
          for (size_t i = 0; i < a.params().size(); ++i) a.params()[i] = b.params()[i] += 0.1 * std::sin(double(i));
          if (late)
            for (int64_t c = 0; c < so.cells; c += 3)
              a.params()[size_t(a.layout().cell_loc + pv::kCellTime * so.cells + c)] =
                  b.params()[size_t(b.layout().cell_loc + pv::kCellTime * so.cells + c)] = std::log(50.0);
          std::vector<double> ga, gb;
          const double la = a.loss({}, 1, &ga), lb = b.loss({}, 1, &gb);
          CAPTURE(d.genes);
          CAPTURE(late);
          CAPTURE(offset);
          CAPTURE(library);
          CHECK(la == doctest::Approx(lb).epsilon(1e-6));
          double largest = 0, worst = 0;
          for (double g : gb) largest = std::max(largest, std::fabs(g));
          for (size_t i = 0; i < ga.size(); ++i) worst = std::max(worst, std::fabs(ga[i] - gb[i]));
          MESSAGE(d.genes << " genes, late " << late << " offset " << offset << " library " << library
                          << ": |loss| rel diff " << std::fabs(la - lb) / std::fabs(lb)
                          << ", max gradient diff / max gradient " << worst / largest);
          CHECK(worst <= 1e-4 * largest);
          // The last gene's beta gradient (in the last tile) was computed, and agrees.
          const size_t last = size_t(a.layout().gene_loc + a.layout().site_slot[pv::kBeta] * so.genes + so.genes - 1);
          CHECK(gb[last] != 0.0);
          CHECK(ga[last] == doctest::Approx(gb[last]).epsilon(1e-3));
        }
  }
}

#if defined(__x86_64__)
TEST_CASE("the fast path leaves every thread's floating-point control word as it found it") {
  // It flushes denormals to zero while it runs; the caller's setting (R, Python, Julia) must survive.
  pv::ModelOptions o;
  if (!pv::use_fast_likelihood(o)) {
    MESSAGE("the fast path is not available on this CPU or build; nothing to check");
    return;
  }
  pv::SimulationOptions so;
  so.cells = 40;
  so.genes = 9;
  auto sim = std::make_shared<pv::io::AnnData>(pv::simulate(so));
  pv::VelocityModel model(pv::make_model_data(sim), o, 1);
  constexpr unsigned kFlushBits = 0x8040;  // flush-to-zero and denormals-are-zero
  for (bool caller_flushes : {false, true}) {
    std::vector<unsigned> before, after;
#pragma omp parallel
    {
      const unsigned csr = caller_flushes ? (_mm_getcsr() | kFlushBits) : (_mm_getcsr() & ~kFlushBits);
      _mm_setcsr(csr);
#pragma omp critical
      before.push_back(csr);
    }
    std::vector<double> grads;
    CHECK(std::isfinite(model.loss({}, 0, &grads)));
#pragma omp parallel
    {
      const unsigned csr = _mm_getcsr();
#pragma omp critical
      after.push_back(csr);
    }
    std::sort(before.begin(), before.end()), std::sort(after.begin(), after.end());
    CAPTURE(caller_flushes);
    CHECK(before == after);
    CHECK(((_mm_getcsr() & kFlushBits) != 0) == caller_flushes);
  }
  _mm_setcsr(_mm_getcsr() & ~kFlushBits);
}
#endif

TEST_CASE("the fast path gives the same loss and gradient from dense layers and from CSR with stored zeros") {
  pv::ModelOptions o;
  if (!pv::use_fast_likelihood(o)) {
    MESSAGE("the fast path is not available on this CPU or build; nothing to compare");
    return;
  }
  // 37 genes: not a multiple of the vector width; 2003: two tiles of the fast path's arrays.
  for (int64_t genes : {37, 2003}) {
  CAPTURE(genes);
  pv::SimulationOptions so;
  so.cells = genes > 100 ? 20 : 90;
  so.genes = genes;
  so.seed = 5;
  auto sparse = std::make_shared<pv::io::AnnData>(pv::simulate(so));
  auto dense = std::make_shared<pv::io::AnnData>(pv::simulate(so));  // the simulation is seeded
  auto zeros = std::make_shared<pv::io::AnnData>(pv::simulate(so));
  for (const char* name : {"spliced", "unspliced"}) {
    const pv::io::CountMatrix& m = sparse->layers.at(name);
    REQUIRE(m.sparse);
    pv::io::CountMatrix& d = dense->layers.at(name);
    d.sparse = false;
    d.dense.assign(size_t(m.rows * m.cols), 0.0f);
    d.indptr.clear(), d.indices.clear(), d.data.clear();
    pv::io::CountMatrix& z = zeros->layers.at(name);
    z.indptr.assign(1, 0), z.indices.clear(), z.data.clear();
    for (int64_t r = 0; r < m.rows; ++r) {
      for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) d.dense[size_t(r * m.cols + m.indices[p])] = m.data[p];
      for (int32_t g = 0; g < m.cols; ++g) {  // every entry stored, zeros included
        z.indices.push_back(g);
        z.data.push_back(d.dense[size_t(r * m.cols + g)]);
      }
      z.indptr.push_back(int64_t(z.indices.size()));
    }
  }
  pv::VelocityModel a(pv::make_model_data(sparse), o, 2), b(pv::make_model_data(dense), o, 2),
      c(pv::make_model_data(zeros), o, 2);
  for (size_t i = 0; i < a.params().size(); ++i) {
    a.params()[i] += 0.1 * std::cos(double(i));
    b.params()[i] = c.params()[i] = a.params()[i];
  }
  CHECK_FALSE(a.data().counts.stored_zeros);  // its CSR rows are read in place as nonzero lists
  CHECK(b.data().counts.stored_zeros);
  CHECK(c.data().counts.stored_zeros);
  std::vector<double> ga, gb, gc;
  const double la = a.loss({}, 1, &ga), lb = b.loss({}, 1, &gb), lc = c.loss({}, 1, &gc);
  CHECK(la == lb);
  CHECK(la == lc);
  CHECK(ga == gb);
  CHECK(ga == gc);
  }
}
