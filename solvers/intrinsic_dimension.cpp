#include "solvers/intrinsic_dimension.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "solvers/dense.hpp"

namespace popcode {

namespace {

constexpr double kPi = 3.141592653589793;

// np.polyfit(x, y, 2): least squares on the column-scaled Vandermonde matrix [x^2, x, 1]; returns
// {a, b, c} of a x^2 + b x + c.
std::array<double, 3> polyfit2(const std::vector<double>& x, const std::vector<double>& y) {
  const auto m = static_cast<std::int64_t>(x.size());
  Matrix v(m, 3);
  for (std::int64_t i = 0; i < m; ++i) {
    v(i, 0) = x[static_cast<std::size_t>(i)] * x[static_cast<std::size_t>(i)];
    v(i, 1) = x[static_cast<std::size_t>(i)];
    v(i, 2) = 1.0;
  }
  double scale[3];
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (double e : v.col(c)) s += e * e;
    scale[c] = std::sqrt(s);
    for (double& e : v.col(c)) e /= scale[c];
  }
  const std::vector<double> sol = least_squares(v, y);
  return {sol[0] / scale[0], sol[1] / scale[1], sol[2] / scale[2]};
}

struct Window {
  std::vector<double> x, y;  // bin centres and log counts
};

// Bins with counts > 1e-6 (i.e. nonempty) whose centre passes `inside`.
template <typename Pred>
Window select(const std::vector<double>& centre, const std::vector<std::int64_t>& counts, Pred inside) {
  Window w;
  for (std::size_t i = 0; i < centre.size(); ++i)
    if (inside(centre[i]) && static_cast<double>(counts[i]) > 0.000001) {
      w.x.push_back(centre[i]);
      w.y.push_back(std::log(static_cast<double>(counts[i])));
    }
  return w;
}

[[noreturn]] void too_few(std::size_t got) {
  throw InputError(fmt::format("Granata-Carnevale fit: only {} nonempty histogram bins in the fit window (at least 4 "
                               "needed); the histogram is not smooth enough (change bins) or the distance distribution "
                               "has no clear peak",
                               got),
                   true);
}

}  // namespace

GcFit granata_carnevale_fit(const std::vector<std::int64_t>& counts, const std::vector<double>& edges, double mean,
                            double sd, double r_nn_max, int dmin_max) {
  const auto bins = static_cast<int>(counts.size());
  if (bins < 4 || edges.size() != counts.size() + 1)
    throw InternalError(fmt::format("GC fit needs at least 4 bins and bins + 1 edges, got {} and {}", bins, edges.size()));
  GcFit f;
  f.r_nn_max = r_nn_max;
  const double dx = edges[1] - edges[0];
  std::vector<double> centre(static_cast<std::size_t>(bins));
  for (int i = 0; i < bins; ++i) centre[static_cast<std::size_t>(i)] = edges[static_cast<std::size_t>(i)] + dx / 2;
  const auto peak = static_cast<std::size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  double r_max = edges[peak] + dx / 2;
  double sigma = sd;

  // Consistency checks on the first r_max (ID_fit.py stops on either).
  if (std::fabs(r_max - mean) > sigma + 2 * dx)
    throw InputError(fmt::format("Granata-Carnevale fit: the histogram peak r_max = {:.6g} is far from the mean distance "
                                 "{:.6g} (more than sigma {:.6g} + 2 bins); the histogram is not smooth enough (change "
                                 "bins) or k is unsuitable",
                                 r_max, mean, sigma),
                     true);
  if (r_max <= std::min(r_nn_max + dx, 1000000.0))
    throw InputError(fmt::format("Granata-Carnevale fit: the histogram peak r_max = {:.6g} is not beyond the largest kNN "
                                 "distance {:.6g} (+ one bin); decrease k",
                                 r_max, r_nn_max),
                     true);

  // First quadratic fit around the peak.
  Window w = select(centre, counts, [&](double x) { return x > r_max - sigma && x < r_max + sigma / 2.0; });
  if (w.x.size() < 4) too_few(w.x.size());
  const auto c0 = polyfit2(w.x, w.y);
  double r_max_old = r_max, sigma_old = sigma;
  r_max = -c0[1] / c0[0] / 2.0;
  if (c0[0] < 0 && std::fabs(r_max - r_max_old) < sigma_old / 2 + dx) {
    sigma = std::sqrt(-1 / c0[0] / 2.0);
  } else {
    r_max = mean;
    sigma = sigma_old;
  }
  // Second fit, on the refined window.
  w = select(centre, counts, [&](double x) { return x > r_max - sigma && x < r_max + sigma / 2.0 + dx; });
  if (w.x.size() < 4) too_few(w.x.size());
  auto c = polyfit2(w.x, w.y);
  r_max_old = r_max;
  sigma_old = sigma;
  if (c[0] < 0.) {
    r_max = -c[1] / c[0] / 2.;
    sigma = std::sqrt(-1 / c[0] / 2.);
  }
  double r_min = std::max(r_max - 2 * sigma - dx / 2, 0.);
  if (r_min < r_nn_max) {
    r_min = r_nn_max;
    f.warnings.push_back("r_min raised to the largest distance in the neighbour graph (r_NN_max)");
  }
  double r_end = r_max + dx / 4;
  if (std::fabs(r_max - r_max_old) > sigma_old / 4 + dx) {
    f.warnings.push_back("the histogram is probably not smooth enough: r_max kept from the first fit");
    r_max = r_max_old;
    c = c0;
    if (r_min < r_nn_max) r_min = r_nn_max;
    r_end = r_max + dx / 4;
  }
  f.r_max = r_max;
  f.sigma = sigma;
  f.r_min = r_min;
  f.r_fit_end = r_end;

  // The fit window, scaled: x = r / r_max, y = log count minus the log peak of the quadratic.
  w = select(centre, counts, [&](double x) { return x > r_min && x <= r_end; });
  if (w.x.size() < 4) too_few(w.x.size());
  const double log_peak = (4 * c[0] * c[2] - c[1] * c[1]) / 4. / c[0];
  for (double& x : w.x) x /= r_max;
  for (double& y : w.y) y -= log_peak;
  f.x = w.x;
  f.y = w.y;
  const std::size_t m = w.x.size();
  // Gaussian y = -a/2 (x-1)^2, R = sqrt(a); hypersphere y = a log sin(pi x / 2), D = a + 1.
  double yq = 0, qq = 0, yl = 0, ll = 0;
  std::vector<double> L(m);
  for (std::size_t i = 0; i < m; ++i) {
    const double q = (w.x[i] - 1) * (w.x[i] - 1);
    L[i] = std::log(std::sin(w.x[i] * kPi / 2.));
    yq += w.y[i] * q;
    qq += q * q;
    yl += w.y[i] * L[i];
    ll += L[i] * L[i];
  }
  const double a_gauss = -2 * yq / qq;
  f.ratio = a_gauss >= 0 ? std::sqrt(a_gauss) : std::numeric_limits<double>::quiet_NaN();
  const double a_sphere = yl / ll;
  f.d_fit = a_sphere + 1;
  f.rmsd.resize(static_cast<std::size_t>(dmin_max));
  for (int d = 1; d <= dmin_max; ++d) {
    double r2 = 0;
    for (std::size_t i = 0; i < m; ++i) r2 += std::pow((d - 1) * L[i] - w.y[i], 2);
    f.rmsd[static_cast<std::size_t>(d - 1)] = std::sqrt(r2) / std::sqrt(static_cast<double>(m));
  }
  f.d_min = 1 + (std::min_element(f.rmsd.begin(), f.rmsd.end()) - f.rmsd.begin());
  for (std::size_t i = 0; i < m; ++i) {
    f.gaussian.push_back(-a_gauss / 2. * (w.x[i] - 1) * (w.x[i] - 1));
    f.hypersphere_fit.push_back(a_sphere * L[i]);
    f.hypersphere_dmin.push_back(static_cast<double>(f.d_min - 1) * L[i]);
  }
  if (f.d_min == 1) f.warnings.push_back("Dmin = 1: the parameters may be unsuitable, or a 2-D manifold is underestimated");
  if (f.d_fit > dmin_max) f.warnings.push_back(fmt::format("Dfit > {}: beyond the Dmin scan", dmin_max));
  return f;
}

TwoNnEstimate two_nn(const KnnGraph& g) {
  if (g.k < 2) throw InternalError("TwoNN needs the two nearest neighbours");
  std::vector<double> mu;
  TwoNnEstimate e;
  for (std::int64_t i = 0; i < g.points; ++i) {
    const double r1 = g.dist(i, 0), r2 = g.dist(i, 1);
    if (!(r1 > 0)) {
      ++e.points_dropped;
      continue;
    }
    mu.push_back(r2 / r1);
  }
  const auto n = static_cast<std::int64_t>(mu.size());
  e.points_used = n;
  if (n < 2) throw InputError(fmt::format("TwoNN: only {} points with a nonzero nearest-neighbour distance", n), true);
  double sum_log = 0;
  for (double x : mu) sum_log += std::log(x);
  e.d_mle = static_cast<double>(n - 1) / sum_log;
  // Empirical cumulative F_i = i / n over the sorted mu; fit on the first 90%.
  std::sort(mu.begin(), mu.end());
  const auto keep = static_cast<std::int64_t>(std::floor(0.9 * static_cast<double>(n)));
  double xy = 0, xx = 0;
  for (std::int64_t i = 0; i < keep; ++i) {
    const double x = std::log(mu[static_cast<std::size_t>(i)]);
    const double y = -std::log(1.0 - static_cast<double>(i) / static_cast<double>(n));
    xy += x * y;
    xx += x * x;
  }
  e.d_fit = xy / xx;
  return e;
}

MleEstimate levina_bickel(const KnnGraph& g, std::int64_t k) {
  if (k < 2 || k > g.k) throw InternalError(fmt::format("Levina-Bickel with k = {} from {} neighbours", k, g.k));
  MleEstimate e;
  e.k = k;
  double sum_inv = 0;
  for (std::int64_t i = 0; i < g.points; ++i) {
    const double rk = g.dist(i, k - 1);
    double s = 0;
    bool ok = g.dist(i, 0) > 0;
    for (std::int64_t j = 0; j < k - 1 && ok; ++j) s += std::log(rk / g.dist(i, j));
    if (!ok || !(s > 0)) {
      ++e.points_dropped;
      continue;
    }
    sum_inv += s / static_cast<double>(k - 1);  // 1 / d_i
    ++e.points_used;
  }
  if (e.points_used == 0) throw InputError("Levina-Bickel MLE: no point has distinct nonzero neighbour distances", true);
  e.d = static_cast<double>(e.points_used) / sum_inv;
  return e;
}

GramBlockVisitor ParticipationRatio::visitor() {
  // The sums run element by element in column order, in local variables: through the members, every
  // addition waited on the store of the one before (the row sums might alias them), about 0.05 s over the
  // dimension benchmark's 15.7 million products. Off the diagonal the rows and columns are different points.
  return [this](std::int64_t row_first, std::int64_t rows, std::int64_t col_first, std::int64_t cols, const double* gram) {
    double* rs = row_sum_.data();
    double frob = frobenius2_, trace = trace_;
    if (row_first == col_first) {
      for (std::int64_t jj = 0; jj < cols; ++jj)
        for (std::int64_t ii = 0; ii < rows; ++ii) {
          const double v = gram[ii + jj * rows];
          rs[row_first + ii] += v;
          frob += v * v;
          if (ii == jj) trace += v;
        }
    } else {
      for (std::int64_t jj = 0; jj < cols; ++jj) {
        double col = rs[col_first + jj];  // the mirrored entries' sum
        for (std::int64_t ii = 0; ii < rows; ++ii) {
          const double v = gram[ii + jj * rows];
          rs[row_first + ii] += v;
          frob += 2 * v * v;
          col += v;
        }
        rs[col_first + jj] = col;
      }
    }
    frobenius2_ = frob;
    trace_ = trace;
  };
}

double ParticipationRatio::finish(const Context& ctx) {
  ctx.allreduce_sum(row_sum_);
  double v[2] = {trace_, frobenius2_};
  ctx.allreduce_sum(std::span<double>(v, 2));
  const auto s = static_cast<double>(row_sum_.size());
  double sum_r = 0, sum_r2 = 0;
  for (double x : row_sum_) {
    sum_r += x / s;
    sum_r2 += (x / s) * (x / s);
  }
  const double m = sum_r / s;
  const double trace = v[0] - s * m;
  const double frob2 = v[1] - 2 * s * sum_r2 + s * s * m * m;
  return trace * trace / frob2;
}

}  // namespace popcode
