// Posterior samples (MODEL.md section 6): draws from the guide, the deterministic sites, the
// discrete state and the predictive counts. The gene-level draw of a sample is shared by every
// chunk of cells, so chunking changes memory use, never the numbers. S x C x G outputs are
// streamed chunk by chunk; the in-memory form and the summaries are both built on the stream.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/model.h"

namespace pv {

struct PosteriorOptions {
  int64_t num_samples = 30;
  uint64_t seed = 0;
  std::vector<int64_t> cells;  // data rows to sample (empty: all)
  int64_t batch_size = 0;      // cells per chunk (0: all at once)
  bool predictive_counts = true;  // draw u, s (the summaries do not need them)
};

// The gene-level draw of one sample: every site (constrained) and the derived quantities.
struct GeneDraw {
  int64_t sample = 0;
  std::vector<double> site[kGeneSites];  // offsets empty without add_offset
  std::vector<double> u_inf, s_inf, switching;
};

// One sample's draws for a chunk of cells; cell x gene arrays are row-major count x genes.
struct CellChunkDraw {
  int64_t sample = 0;
  int64_t first = 0, count = 0;  // position of the chunk within the requested cells
  std::vector<double> cell[kCellSites];
  std::vector<float> state, ut, st, u, s;
};

using PosteriorConsumer = std::function<void(const GeneDraw&, const CellChunkDraw&)>;
void stream_posterior(const VelocityModel& model, const PosteriorOptions& options, const PosteriorConsumer& consume);

// A float32 array with its shape.
struct Array {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Every key of MODEL.md section 6 with its shape: (S, 1, G), (S, C, 1), (S, C, G).
std::map<std::string, Array> generate_posterior_samples(const VelocityModel& model, const PosteriorOptions& options);

// Means and standard deviations over samples, computed while streaming: gene sites (G),
// cell sites (C), and the cell x gene ut, st and velocity V = beta ut / u_scale - gamma st (C x G).
struct PosteriorSummary {
  int64_t samples = 0, cells = 0, genes = 0;
  std::map<std::string, std::vector<double>> mean, sd;
};
PosteriorSummary summarise_posterior(const VelocityModel& model, const PosteriorOptions& options);

// The accumulators behind summarise_posterior, for a caller that streams the samples for another
// purpose too (the statistics) and wants the summary from the same draws: add() every chunk of a
// stream_posterior over `options`, then finish() once.
class PosteriorSummariser {
 public:
  PosteriorSummariser(const VelocityModel& model, const PosteriorOptions& options);
  void add(const GeneDraw& genes, const CellChunkDraw& cells);
  PosteriorSummary finish();

 private:
  int64_t samples_, cells_, genes_;
  // Welford accumulators; cell x gene ones in float to keep them at the size of the outputs.
  std::map<std::string, std::vector<double>> mean_, m2_;
  std::map<std::string, std::vector<float>> big_mean_, big_m2_;
};

// The gene-level sites present under the model's options, in the guide's order, then the
// derived ones: the key list of the (S, 1, G) group.
std::vector<std::string> gene_level_keys(const ModelOptions& options);

}  // namespace pv
