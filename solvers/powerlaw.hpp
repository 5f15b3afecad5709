#pragma once
// Power-law fit of an eigenspectrum.
//
// Method: weighted least squares of log|ss_n| = -alpha log(n) + b over the 1-based component indices
// n = first..last with weights 1/n, solved from the 2x2 normal equations; the goodness of fit is the
// squared correlation of log(n) and log|ss_n| at 100 log-spaced indices of the range.
// Anchor: MouseLand stringer-pachitariu-et-al-2018b, powerlaws/get_powerlaw.m (and python/utils.py,
// whose 0-based np.arange(10, 500) selects the same components 11..500). Reproduces the alphaEphys known
// answers of ephys_eigsControls.mat to 1e-10 with the range 10..min(500, neurons - 2) (tests/unit).
// Default range (Stringer et al. 2019, statsShuffledPCA.m / incNeurEphysComparison.m): 11..min(500, K - 2)
// for a spectrum of K meaningful components.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace popcode {

struct PowerLawFit {
  double alpha = 0;
  double intercept = 0;
  double loglog_r2 = 0;
  std::int64_t first = 0;  // 1-based, inclusive
  std::int64_t last = 0;
};

// The default fit range for `components` meaningful components: {11, min(500, components - 2)}.
// Throws InputError when that leaves fewer than 2 points.
std::pair<std::int64_t, std::int64_t> default_fit_range(std::int64_t components);

// Fits components first..last (1-based, inclusive) of `spectrum`. Throws InputError when the range is
// outside the spectrum, has fewer than 2 points, or covers a zero or non-finite value.
PowerLawFit fit_power_law(std::span<const double> spectrum, std::int64_t first, std::int64_t last);

// exp(b) n^-alpha for n = 1..count (the anchor's ypred).
std::vector<double> power_law_prediction(const PowerLawFit& fit, std::int64_t count);

// Parses "A:B" (1-based, inclusive). Throws UsageError on anything else.
std::pair<std::int64_t, std::int64_t> parse_range(const std::string& text);

}  // namespace popcode
