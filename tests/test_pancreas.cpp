// Issue 6's acceptance check on real data: after a (short) fit of pancreas.h5ad, fdri is defined
// for every cell and the posterior-mean field points along the known differentiation
// (CBDir over the pancreas transitions > 0). Runs the pvengine command as a user would.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "io/h5ad_reader.h"
#include "tests/test_h5ad_support.h"

TEST_CASE("pancreas: after a fit, fdri is defined for every cell and CBDir over the known transitions is positive") {
  const std::string data = std::string(PV_SHARED_DIR) + "/data/pancreas.h5ad";
  if (!std::filesystem::exists(data)) {
    MESSAGE("skipped: " << data << " is not there");
    return;
  }
  pv_test::TempDir dir;
  const std::string fitted = dir.file("fit.h5ad"), evaluated = dir.file("eval.h5ad");
  const std::string cli = PV_CLI;
  const std::string fit = cli + " fit " + data + " -o " + fitted + " --epochs 500 --samples 5 --quiet > " + dir.file("fit.log") + " 2>&1";
  REQUIRE_MESSAGE(std::system(fit.c_str()) == 0, "pvengine fit failed, see " << dir.file("fit.log"));
  const std::string evaluate = cli + " evaluate " + fitted + " --cluster-key clusters --transitions pancreas -o " + evaluated +
                               " > " + dir.file("eval.log") + " 2>&1";
  REQUIRE_MESSAGE(std::system(evaluate.c_str()) == 0, "pvengine evaluate failed");

  const pv::io::AnnData result = pv::io::read_h5ad(evaluated);
  const pv::io::Column* fdri = result.obs.find("fdri_pyro");
  REQUIRE(fdri != nullptr);
  REQUIRE(fdri->numeric.size() == 3696);
  for (double q : fdri->numeric) REQUIRE((q >= 0 && q <= 1));
  const auto evaluation = result.uns.dict.find("pyrovelocity_evaluation");
  REQUIRE(evaluation != result.uns.dict.end());
  const double cbdir = evaluation->second.dict.at("cbdir_total").number;
  const double iccoh = evaluation->second.dict.at("iccoh_total").number;
  MESSAGE("pancreas, 500 epochs, 5 samples: CBDir " << cbdir << ", ICCoh " << iccoh);
  CHECK(cbdir > 0);
  CHECK(iccoh > 0.5);
}
