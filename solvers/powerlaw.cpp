#include "solvers/powerlaw.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "src/errors.hpp"

namespace popcode {

std::pair<std::int64_t, std::int64_t> default_fit_range(std::int64_t components) {
  const std::int64_t last = std::min<std::int64_t>(500, components - 2);
  if (last < 12) {
    throw InputError(fmt::format("the default power-law range 11..min(500, K-2) needs K >= 14 components, found K = {}; "
                                 "give a range explicitly", components));
  }
  return {11, last};
}

PowerLawFit fit_power_law(std::span<const double> spectrum, std::int64_t first, std::int64_t last) {
  const auto n = static_cast<std::int64_t>(spectrum.size());
  if (first < 1 || last > n || last - first < 1) {
    throw InputError(fmt::format("power-law range {}:{} is not inside 1:{} with at least 2 points", first, last, n));
  }
  // Normal equations of the weighted problem, X = [-log n, 1], W = diag(1/n):
  //   [sum w x^2  sum w x] [alpha]   [sum w x y]
  //   [sum w x    sum w  ] [  b  ] = [sum w y  ]
  double sxx = 0, sx = 0, sw = 0, sxy = 0, sy = 0;
  for (std::int64_t k = first; k <= last; ++k) {
    const double v = std::abs(spectrum[static_cast<std::size_t>(k - 1)]);
    if (!(v > 0) || !std::isfinite(v)) {
      throw InputError(fmt::format("power-law fit: component {} is {} (log undefined)", k, spectrum[static_cast<std::size_t>(k - 1)]));
    }
    const double w = 1.0 / static_cast<double>(k);
    const double x = -std::log(static_cast<double>(k));
    const double y = std::log(v);
    sxx += w * x * x;
    sx += w * x;
    sw += w;
    sxy += w * x * y;
    sy += w * y;
  }
  const double det = sxx * sw - sx * sx;
  PowerLawFit fit;
  fit.first = first;
  fit.last = last;
  fit.alpha = (sxy * sw - sx * sy) / det;
  fit.intercept = (sxx * sy - sx * sxy) / det;

  // Goodness of fit as the anchor: 100 log-spaced indices (rounded, repeats kept), correlation squared.
  std::vector<double> lx, ly;
  const double l0 = std::log(static_cast<double>(first)), l1 = std::log(static_cast<double>(last));
  for (int i = 0; i < 100; ++i) {
    const double t = i == 99 ? l1 : l0 + (l1 - l0) * i / 99.0;
    const auto idx = static_cast<std::int64_t>(std::round(std::exp(t)));
    lx.push_back(std::log(static_cast<double>(idx)));
    ly.push_back(std::log(std::abs(spectrum[static_cast<std::size_t>(idx - 1)])));
  }
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < lx.size(); ++i) {
    mx += lx[i];
    my += ly[i];
  }
  mx /= static_cast<double>(lx.size());
  my /= static_cast<double>(ly.size());
  double cxy = 0, cxx = 0, cyy = 0;
  for (std::size_t i = 0; i < lx.size(); ++i) {
    cxy += (lx[i] - mx) * (ly[i] - my);
    cxx += (lx[i] - mx) * (lx[i] - mx);
    cyy += (ly[i] - my) * (ly[i] - my);
  }
  fit.loglog_r2 = cxx > 0 && cyy > 0 ? cxy * cxy / (cxx * cyy) : 0.0;
  return fit;
}

std::vector<double> power_law_prediction(const PowerLawFit& fit, std::int64_t count) {
  std::vector<double> out(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)));
  for (std::int64_t k = 1; k <= count; ++k) {
    out[static_cast<std::size_t>(k - 1)] = std::exp(fit.intercept - fit.alpha * std::log(static_cast<double>(k)));
  }
  return out;
}

std::pair<std::int64_t, std::int64_t> parse_range(const std::string& text) {
  const auto colon = text.find(':');
  std::int64_t a = 0, b = 0;
  const auto parse = [](const std::string& s, std::int64_t& v) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
  };
  if (colon == std::string::npos || !parse(text.substr(0, colon), a) || !parse(text.substr(colon + 1), b) || a < 1 || b <= a) {
    throw UsageError(fmt::format("range '{}': expected A:B with 1 <= A < B (1-based, inclusive)", text));
  }
  return {a, b};
}

}  // namespace popcode
