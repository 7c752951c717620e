// A self-check of the foundations: the dynamics' golden value, Philox's known answers, and a
// small least-squares fit through the tape and ClippedAdam that must recover known kinetics.
#include <cmath>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "kernels/dynamics.h"
#include "kernels/philox.h"

namespace pv::cli {
namespace {

bool report(const char* what, bool ok) {
  std::printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
  return ok;
}

// Fits log(alpha, beta, gamma) to a noiseless trajectory from (0, 0); returns the estimates.
void fit_kinetics(const double truth[3], int steps, double estimate[3], double* final_loss) {
  const int n = 40;
  double tau[n], u_obs[n], s_obs[n];
  for (int i = 0; i < n; ++i) {
    tau[i] = 0.25 * (i + 1);
    const Dynamics<double> d = mrna_dynamics(tau[i], 0.0, 0.0, truth[0], truth[1], truth[2]);
    u_obs[i] = d.u;
    s_obs[i] = d.s;
  }
  double params[3] = {0.0, 0.0, 0.0};  // log rates, started at rate 1
  double grads[3];
  ClippedAdamOptions options;
  options.lr = 0.05;
  ClippedAdam adam(3, options);
  Tape<double> tape;
  for (int step = 0; step < steps; ++step) {
    tape.rewind();
    grads[0] = grads[1] = grads[2] = 0.0;
    const Var<double> theta = Tape<double>::external(params, grads, 3);
    const Var<double> rates = ops::exp(tape, theta);
    Var<double> t = tape.constant(n), zero = tape.constant(1, 0.0);
    Var<double> uo = tape.constant(n), so = tape.constant(n);
    for (int i = 0; i < n; ++i) t.value[i] = tau[i], uo.value[i] = u_obs[i], so.value[i] = s_obs[i];
    const ops::DynamicsVars<double> d =
        ops::mrna_dynamics(tape, t, zero, zero, rates.slice(0, 1), rates.slice(1, 1), rates.slice(2, 1));
    const Var<double> loss = ops::add(tape, ops::sum(tape, ops::square(tape, ops::sub(tape, d.u, uo))),
                                      ops::sum(tape, ops::square(tape, ops::sub(tape, d.s, so))));
    tape.backward(loss);
    *final_loss = loss.scalar();
    adam.step(params, grads);
  }
  for (int k = 0; k < 3; ++k) estimate[k] = std::exp(params[k]);
}

}  // namespace

int run_selfcheck(const std::vector<std::string>& args) {
  ArgParser parser("selfcheck", "[--steps N]",
                   "Check the engine's foundations on known answers and print what was found.");
  parser.option("--steps", "3000", "optimiser steps for the kinetics fit");
  if (!parser.parse(args)) return 0;
  const long long steps = parser.get_int("--steps");
  if (steps <= 0) fail(PV_ERR_INVALID_ARGUMENT, "--steps must be > 0");

  std::printf("pvengine selfcheck (%s)\n", build_info().c_str());
  bool ok = true;

  const Dynamics<double> golden = mrna_dynamics(2.0, 1.0, 0.5, 0.5, 0.4, 0.3);
  std::printf("  mrna_dynamics(2, 1, 0.5, 0.5, 0.4, 0.3) = (%.4f, %.4f)\n", golden.u, golden.s);
  ok &= report("golden value (1.1377, 0.9269)",
               std::fabs(golden.u - 1.1377) < 5e-5 && std::fabs(golden.s - 0.9269) < 5e-5);

  const uint32_t ctr[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
  const uint32_t key[2] = {0xa4093822u, 0x299f31d0u};
  const Philox4 p = philox4x32_10(ctr, key);
  ok &= report("Philox4x32-10 known answer (Random123 pi vector)",
               p.v[0] == 0xd16cfe09u && p.v[1] == 0x94fdccebu && p.v[2] == 0x5001e420u &&
                   p.v[3] == 0x24126ea1u);

  const double truth[3] = {2.0, 0.5, 0.3};
  double estimate[3], loss = 0.0;
  fit_kinetics(truth, int(steps), estimate, &loss);
  std::printf("  kinetics fit by tape + ClippedAdam, %lld steps: loss %.3g\n", steps, loss);
  const char* names[3] = {"alpha", "beta", "gamma"};
  double worst = 0.0;
  for (int k = 0; k < 3; ++k) {
    const double rel = std::fabs(estimate[k] - truth[k]) / truth[k];
    worst = rel > worst ? rel : worst;
    std::printf("    %-5s true %.4f  fitted %.4f  (relative error %.2e)\n", names[k], truth[k], estimate[k], rel);
  }
  ok &= report("kinetics recovered within 1%", worst < 0.01);

  std::printf("%s\n", ok ? "selfcheck passed" : "selfcheck FAILED");
  return ok ? 0 : 1;
}

}  // namespace pv::cli
