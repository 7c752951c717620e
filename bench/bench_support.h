// What the benchmarks share: the --simulate CELLSxGENES spec and mean +- sd of timed repetitions.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/error.h"

namespace pv::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// "2000x200" -> cells 2000, genes 200; anything else is refused with a message.
inline void parse_cells_x_genes(const std::string& spec, int64_t* cells, int64_t* genes) {
  const size_t x = spec.find('x');
  try {
    size_t used_cells = 0, used_genes = 0;
    if (x != std::string::npos) {
      *cells = std::stoll(spec.substr(0, x), &used_cells);
      *genes = std::stoll(spec.substr(x + 1), &used_genes);
      if (used_cells == x && used_genes == spec.size() - x - 1 && *cells > 0 && *genes > 0) return;
    }
  } catch (const std::exception&) {
  }
  fail(PV_ERR_INVALID_ARGUMENT, "--simulate '" + spec + "' is not CELLSxGENES (e.g. 2000x200)");
}

struct Timing {
  double mean = 0, sd = 0;  // seconds; sd with ddof = 1
  double min = 0;           // the least disturbed run: on a shared host, noise only adds time
};

inline Timing summarise_times(const std::vector<double>& times) {
  Timing timing;
  timing.min = times.empty() ? 0.0 : *std::min_element(times.begin(), times.end());
  for (double t : times) timing.mean += t / double(times.size());
  for (double t : times) timing.sd += (t - timing.mean) * (t - timing.mean) / std::max(1.0, double(times.size()) - 1);
  timing.sd = std::sqrt(timing.sd);
  return timing;
}

// `warmup` untimed runs, then `reps` timed ones.
template <class F>
Timing time_it(int warmup, int reps, F&& run) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const auto t = Clock::now();
    run();
    times.push_back(seconds_since(t));
  }
  return summarise_times(times);
}

}  // namespace pv::bench
