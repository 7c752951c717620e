// Pearson and Spearman correlations (ranks with ties averaged), for recovery reports.
#pragma once

#include <vector>

namespace pv {

double pearson(const std::vector<double>& a, const std::vector<double>& b);
double spearman(const std::vector<double>& a, const std::vector<double>& b);
std::vector<double> average_ranks(const std::vector<double>& x);

}  // namespace pv
