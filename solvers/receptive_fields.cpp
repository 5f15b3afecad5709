#include "solvers/receptive_fields.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string_view>
#include <tuple>

#include "solvers/dense.hpp"
#include "solvers/distributed_svd.hpp"
#include "src/errors.hpp"
#include "src/log.hpp"
#include "src/progress.hpp"

namespace popcode {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Test-set accumulators of one predictor, summed over neurons and test images.
struct TestSums {
  double cross = 0;      // sum r1 r2
  double res_cross = 0;  // sum (r1 - p)(r2 - p)
  double sq_err = 0;     // sum over neurons of mean_s (p - y)^2
  double sq_y = 0;       // sum over neurons of mean_s y^2
};

// One log line per finished phase of the fit, with rank 0's wall time for it: the fit is a handful of large
// BLAS calls and decompositions with no natural progress count, so a long run (minutes at 10^5-10^6 neurons)
// shows where it is, and the benchmark's phase split comes from the log.
class PhaseLog {
 public:
  PhaseLog() : last_(std::chrono::steady_clock::now()) {}
  void done(std::string_view what) {
    const auto now = std::chrono::steady_clock::now();
    log::info("rf: {} ({})", what, format_duration(std::chrono::duration<double>(now - last_).count()));
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

std::int64_t normalise_images(Matrix& images) {
  const std::int64_t p = images.rows(), s = images.cols();
  double total = 0;
  for (std::int64_t j = 0; j < s; ++j)
    for (const double v : images.col(j)) total += v;
  const double gray = p * s > 0 ? total / static_cast<double>(p * s) : 0.0;
  std::int64_t zero = 0;
  for (std::int64_t j = 0; j < s; ++j) {
    auto c = images.col(j);
    double ss = 0;
    for (double& v : c) {
      v -= gray;
      ss += v * v;
    }
    if (ss > 0) {
      const double inv = 1.0 / std::sqrt(ss);
      for (double& v : c) v *= inv;
    } else {
      ++zero;
    }
  }
  return zero;
}

double pearson(std::span<const double> a, std::span<const double> b) {
  const auto n = static_cast<double>(a.size());
  if (a.empty()) return kNaN;
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : kNaN;
}

std::pair<double, double> rf_centre(std::span<const double> rf, std::int64_t height, std::int64_t width, double smooth) {
  // Separable Gaussian smoothing of the energy, truncated at 3 s.d., renormalised at the borders.
  const auto radius = static_cast<std::int64_t>(std::ceil(3 * smooth));
  std::vector<double> kernel(static_cast<std::size_t>(2 * radius + 1));
  for (std::int64_t d = -radius; d <= radius; ++d)
    kernel[static_cast<std::size_t>(d + radius)] = smooth > 0 ? std::exp(-0.5 * d * d / (smooth * smooth)) : (d == 0);
  auto at = [width](std::int64_t y, std::int64_t x) { return static_cast<std::size_t>(y * width + x); };
  std::vector<double> energy(rf.size()), rows(rf.size()), out(rf.size());
  for (std::size_t i = 0; i < rf.size(); ++i) energy[i] = rf[i] * rf[i];
  for (std::int64_t y = 0; y < height; ++y)
    for (std::int64_t x = 0; x < width; ++x) {
      double s = 0, w = 0;
      for (std::int64_t d = std::max(-radius, -x); d <= std::min(radius, width - 1 - x); ++d) {
        s += kernel[static_cast<std::size_t>(d + radius)] * energy[at(y, x + d)];
        w += kernel[static_cast<std::size_t>(d + radius)];
      }
      rows[at(y, x)] = s / w;
    }
  for (std::int64_t y = 0; y < height; ++y)
    for (std::int64_t x = 0; x < width; ++x) {
      double s = 0, w = 0;
      for (std::int64_t d = std::max(-radius, -y); d <= std::min(radius, height - 1 - y); ++d) {
        s += kernel[static_cast<std::size_t>(d + radius)] * rows[at(y + d, x)];
        w += kernel[static_cast<std::size_t>(d + radius)];
      }
      out[at(y, x)] = s / w;
    }
  const auto best = static_cast<std::int64_t>(std::max_element(out.begin(), out.end()) - out.begin());
  if (out.empty() || out[static_cast<std::size_t>(best)] <= 0) return {kNaN, kNaN};
  const std::int64_t by = best / width, bx = best % width;
  const double reach = 2 * std::max(smooth, 1.0);
  double sx = 0, sy = 0, sw = 0;
  for (std::int64_t y = 0; y < height; ++y)
    for (std::int64_t x = 0; x < width; ++x) {
      const double dy = static_cast<double>(y - by), dx = static_cast<double>(x - bx);
      if (dx * dx + dy * dy > reach * reach) continue;
      const double w = out[at(y, x)];
      sx += w * static_cast<double>(x);
      sy += w * static_cast<double>(y);
      sw += w;
    }
  return {sx / sw, sy / sw};
}

RfFit fit_receptive_fields(const Context& ctx, const Matrix& repeats, const Matrix& images, std::int64_t height,
                           std::int64_t width, const RfOptions& options) {
  const std::int64_t n = repeats.rows(), s = images.cols(), p = images.rows();
  const std::int64_t neurons = ctx.sum(n);
  if (repeats.cols() != 2 * s)
    throw InternalError(fmt::format("rf: {} response columns for {} images", repeats.cols(), s));
  if (p != height * width) throw InternalError(fmt::format("rf: {} pixels for {} x {} images", p, height, width));
  RfFit fit;
  fit.pixels = p;
  fit.train = options.train_images > 0 ? options.train_images : (s + 1) / 2;
  fit.test = s - fit.train;
  if (fit.train < 3 || fit.test < 1)
    throw InputError(fmt::format("rf: {} images give {} train and {} test images; at least 3 train and 1 test are needed", s,
                                 fit.train, fit.test),
                     true);
  const std::int64_t ntr = fit.train, nte = fit.test;
  const double dof = static_cast<double>(ntr - 1);
  PhaseLog phase;

  // Y: repeat mean minus each neuron's mean over all images (b0).
  Matrix y(n, s);
  std::vector<double> b0(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      y(i, j) = 0.5 * (repeats(i, j) + repeats(i, s + j));
      b0[static_cast<std::size_t>(i)] += y(i, j);
    }
  for (double& v : b0) v /= static_cast<double>(s);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) y(i, j) -= b0[static_cast<std::size_t>(i)];

  // Two replicated decompositions: the k leading eigenpairs of the responses' S x S Gram (response PCs:
  // replicated S x k scores V = A B, local loadings C) and the thin SVD of the centred train images,
  // X_c = W diag(sigma) U^T (P x ntr). Each runs on one rank (the first and the last) and is broadcast, so
  // at two or more ranks they overlap instead of being repeated on every rank. Same LAPACK calls on the
  // same input as a replicated run, so the numbers do not depend on the rank count.
  const std::int64_t k = std::min({options.response_pcs, neurons, s});
  fit.response_pcs = k;
  if (k < options.response_pcs)
    log::warn_once("rf: response_pcs = {} but {} neurons and {} images allow {}: using {}", options.response_pcs, neurons, s,
                   k, k);
  Matrix gram_y = allreduced_gram(ctx, y);
  phase.done(fmt::format("response Gram, {} x {} over {} neurons", s, s, neurons));
  std::vector<double> xbar(static_cast<std::size_t>(p), 0.0);
  for (std::int64_t j = 0; j < ntr; ++j)
    for (std::int64_t q = 0; q < p; ++q) xbar[static_cast<std::size_t>(q)] += images(q, j);
  for (double& v : xbar) v /= static_cast<double>(ntr);
  const std::int64_t r = std::min(p, ntr);
  const int pc_rank = 0, image_rank = ctx.size() - 1;
  std::vector<double> lambda(static_cast<std::size_t>(k)), sigma(static_cast<std::size_t>(r));
  Matrix pc_w(s, k), wpix(p, r), ut(r, ntr);
  on_every_rank(ctx, [&] {
    if (ctx.rank() == pc_rank) lambda = symmetric_eigen(gram_y, k, &pc_w);
    if (ctx.rank() == image_rank) {
      Matrix xc(p, ntr);
      for (std::int64_t j = 0; j < ntr; ++j)
        for (std::int64_t q = 0; q < p; ++q) xc(q, j) = images(q, j) - xbar[static_cast<std::size_t>(q)];
      sigma = thin_svd(xc, wpix, ut);
    }
  });
  gram_y = Matrix();
  ctx.broadcast(lambda, pc_rank);
  ctx.broadcast(pc_w.values(), pc_rank);
  ctx.broadcast(sigma, image_rank);
  ctx.broadcast(wpix.values(), image_rank);
  ctx.broadcast(ut.values(), image_rank);
  const TruncatedSvd pcs = triplets_from_gram(y, std::move(lambda), std::move(pc_w));
  phase.done(fmt::format("{} response PCs and the SVD of the {} x {} train images", k, p, ntr));
  double total_var = 0;
  for (const double v : sigma) total_var += v * v / dof;
  if (!(total_var > 0)) throw InputError("rf: the train images are all the same: no receptive field can be fitted", true);
  fit.mu = options.lambda * total_var / static_cast<double>(p);
  fit.ridge_mu = options.ridge_lambda * total_var / static_cast<double>(p);
  std::vector<double> d(static_cast<std::size_t>(r));
  for (std::int64_t j = 0; j < r; ++j)
    d[static_cast<std::size_t>(j)] = 1.0 / std::sqrt(sigma[static_cast<std::size_t>(j)] * sigma[static_cast<std::size_t>(j)] / dof + fit.mu);

  // CanonCor2 on the train PC scores: K = V_c^T U diag(sigma d) / (n - 1) = D s E^T.
  Matrix vc(ntr, k);
  double pc_var = 0;
  for (std::int64_t c = 0; c < k; ++c) {
    const double sv = pcs.singular_values[static_cast<std::size_t>(c)];
    double mean = 0;
    for (std::int64_t j = 0; j < ntr; ++j) mean += pcs.w(j, c) * sv;
    mean /= static_cast<double>(ntr);
    for (std::int64_t j = 0; j < ntr; ++j) {
      vc(j, c) = pcs.w(j, c) * sv - mean;
      pc_var += vc(j, c) * vc(j, c) / dof;
    }
  }
  Matrix kmat(k, r);
  gemm(Trans::yes, Trans::yes, 1.0, vc, ut, 0.0, kmat);
  for (std::int64_t j = 0; j < r; ++j)
    for (double& v : kmat.col(j)) v *= sigma[static_cast<std::size_t>(j)] * d[static_cast<std::size_t>(j)] / dof;
  Matrix dvec, et;
  const std::vector<double> sv = thin_svd(kmat, dvec, et);
  const auto kk = static_cast<std::int64_t>(sv.size());
  fit.rank = std::min(options.rank, kk);
  if (fit.rank < options.rank)
    log::warn_once("rf: rank = {} but there are {} canonical components ({} response PCs, {} train images): using rank {}",
                   options.rank, kk, k, ntr, fit.rank);
  const std::int64_t rank = fit.rank;
  for (std::int64_t j = 0; j < kk; ++j)
    fit.component_r2.push_back(pc_var > 0 ? sv[static_cast<std::size_t>(j)] * sv[static_cast<std::size_t>(j)] / pc_var : kNaN);
  // a = D s (k x rank); b = W diag(d) E (P x rank), with diag(d) applied to the small E^T (rows: components).
  Matrix a(k, rank), b(p, rank);
  for (std::int64_t c = 0; c < rank; ++c)
    for (std::int64_t i = 0; i < k; ++i) a(i, c) = dvec(i, c) * sv[static_cast<std::size_t>(c)];
  for (std::int64_t j = 0; j < r; ++j)
    for (double& v : et.col(j)) v *= d[static_cast<std::size_t>(j)];
  gemm_raw(Trans::no, Trans::yes, p, rank, r, 1.0, wpix.data(), p, et.data(), et.rows(), 0.0, b.data(), p);

  // Test images, read in place (columns ntr.. of the images; uncentred, as the anchor's prediction X' rfN C').
  // Here and below, the products read the replicated images in place rather than centred or test copies: a
  // copy would be a fresh allocation on every rank, and on virtual machines the first touch of new pages by
  // several ranks at once is slow.
  const double* xte = images.col(ntr).data();
  Matrix z(nte, rank), loads(n, rank);
  gemm_raw(Trans::yes, Trans::no, nte, rank, p, 1.0, xte, p, b.data(), p, 0.0, z.data(), nte);
  gemm(Trans::no, Trans::no, 1.0, pcs.u_local, a, 0.0, loads);
  fit.rrr_rf = Matrix(p, n);
  gemm(Trans::no, Trans::yes, 1.0, b, loads, 0.0, fit.rrr_rf);

  // Rank sweep: res_c = sum (r1 - P_c)(r2 - P_c) over local neurons and test images, for the rank-c prediction
  // P_c = L[:, :c] Z[:, :c]^T (L = loads, Z = z), without forming P_c per rank:
  //   res_c = sum r1 r2 - sum_{c' < c} L_c'^T ((r1 + r2) Z)_c' + sum_{a, b < c} (L^T L)_ab (Z^T Z)_ab,
  // two GEMMs and two rank x rank products in place of `rank` passes over the n x nte block.
  auto r1 = [&](std::int64_t i, std::int64_t j) { return repeats(i, ntr + j) - b0[static_cast<std::size_t>(i)]; };
  auto r2 = [&](std::int64_t i, std::int64_t j) { return repeats(i, s + ntr + j) - b0[static_cast<std::size_t>(i)]; };
  Matrix pred(n, nte);
  std::vector<double> sweep(static_cast<std::size_t>(rank + 1), 0.0);
  for (std::int64_t j = 0; j < nte; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      const double u = r1(i, j), v = r2(i, j);
      sweep[0] += u * v;
      pred(i, j) = u + v;
    }
  Matrix sum_z(n, rank), ll(rank, rank), zz(rank, rank);
  gemm(Trans::no, Trans::no, 1.0, pred, z, 0.0, sum_z);
  gemm(Trans::yes, Trans::no, 1.0, loads, loads, 0.0, ll);
  gemm(Trans::yes, Trans::no, 1.0, z, z, 0.0, zz);
  double linear = 0, quadratic = 0;
  for (std::int64_t c = 0; c < rank; ++c) {
    for (std::int64_t i = 0; i < n; ++i) linear += loads(i, c) * sum_z(i, c);
    for (std::int64_t a2 = 0; a2 < c; ++a2) quadratic += 2 * ll(a2, c) * zz(a2, c);
    quadratic += ll(c, c) * zz(c, c);
    sweep[static_cast<std::size_t>(1 + c)] = sweep[0] - linear + quadratic;
  }
  gemm(Trans::no, Trans::yes, 1.0, loads, z, 0.0, pred);  // the full-rank test prediction
  ctx.allreduce_sum(std::span<double>(sweep.data(), static_cast<std::size_t>(1 + rank)));
  for (std::int64_t c = 0; c < rank; ++c) fit.rank_sweep.push_back(1.0 - sweep[static_cast<std::size_t>(1 + c)] / sweep[0]);

  // Per-neuron and population variance explained of a test prediction (n x nte, centred like y).
  auto score = [&](const Matrix& pr, std::vector<double>& per_neuron) {
    TestSums t;
    per_neuron.assign(static_cast<std::size_t>(n), kNaN);
    for (std::int64_t i = 0; i < n; ++i) {
      double e = 0, v = 0;
      for (std::int64_t j = 0; j < nte; ++j) {
        const double yv = y(i, ntr + j), diff = pr(i, j) - yv;
        e += diff * diff;
        v += yv * yv;
        t.cross += r1(i, j) * r2(i, j);
        t.res_cross += (r1(i, j) - pr(i, j)) * (r2(i, j) - pr(i, j));
      }
      e /= static_cast<double>(nte);
      v /= static_cast<double>(nte);
      if (v > 0) per_neuron[static_cast<std::size_t>(i)] = 1.0 - e / v;
      t.sq_err += e;
      t.sq_y += v;
    }
    std::vector<double> sums = {t.cross, t.res_cross, t.sq_err, t.sq_y};
    ctx.allreduce_sum(sums);
    return std::pair<double, double>{1.0 - sums[1] / sums[0], 1.0 - sums[2] / sums[3]};
  };
  fit.rrr_variance_explained = score(pred, fit.rrr_neuron_ve).second;
  phase.done(fmt::format("reduced-rank regression at rank {}, its maps, rank sweep and test scores", rank));
  // Each large temporary (n x nte, n x ntr, r x n: 112 MB each on the bench input) is released as soon as it is
  // used up, so that the next one takes its place in the heap: fewer first-touch page faults (costly on
  // virtual machines) and a lower peak.
  pred = Matrix();

  // Ridge, full rank in pixels: beta = W diag(sigma / (n - 1) / (sigma^2 / (n - 1) + mu_r)) U^T Y_train,c^T.
  std::vector<double> ybar(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t j = 0; j < ntr; ++j)
    for (std::int64_t i = 0; i < n; ++i) ybar[static_cast<std::size_t>(i)] += y(i, j);
  for (double& v : ybar) v /= static_cast<double>(ntr);
  // U^T (Y_train - ybar 1^T)^T = U^T Y_train^T - (U^T 1) ybar^T: the train columns of y in place, and the
  // centring as a rank-one correction (U^T 1 vanishes up to rounding, as the images were centred).
  Matrix t(r, n);
  gemm_raw(Trans::no, Trans::yes, r, n, ntr, 1.0, ut.data(), r, y.data(), n, 0.0, t.data(), r);
  std::vector<double> ut_sum(static_cast<std::size_t>(r), 0.0);
  for (std::int64_t c = 0; c < ntr; ++c)
    for (std::int64_t j = 0; j < r; ++j) ut_sum[static_cast<std::size_t>(j)] += ut(j, c);
  for (std::int64_t i = 0; i < n; ++i) {
    auto c = t.col(i);
    const double yb = ybar[static_cast<std::size_t>(i)];
    for (std::int64_t j = 0; j < r; ++j) {
      const double sj = sigma[static_cast<std::size_t>(j)];
      c[static_cast<std::size_t>(j)] = (c[static_cast<std::size_t>(j)] - ut_sum[static_cast<std::size_t>(j)] * yb) * sj / dof /
                                       (sj * sj / dof + fit.ridge_mu);
    }
  }
  fit.ridge_rf = Matrix(p, n);
  gemm(Trans::no, Trans::no, 1.0, wpix, t, 0.0, fit.ridge_rf);
  t = Matrix();
  // beta^T (X_test - xbar 1^T) + ybar = beta^T X_test + (ybar - beta^T xbar): uncentred test images in place.
  Matrix ridge_pred(n, nte);
  gemm_raw(Trans::yes, Trans::no, n, nte, p, 1.0, fit.ridge_rf.data(), p, xte, p, 0.0, ridge_pred.data(), n);
  std::vector<double> offset(ybar);
  for (std::int64_t i = 0; i < n; ++i) {
    double bx = 0;
    for (std::int64_t q = 0; q < p; ++q) bx += fit.ridge_rf(q, i) * xbar[static_cast<std::size_t>(q)];
    offset[static_cast<std::size_t>(i)] -= bx;
  }
  for (std::int64_t j = 0; j < nte; ++j)
    for (std::int64_t i = 0; i < n; ++i) ridge_pred(i, j) += offset[static_cast<std::size_t>(i)];
  std::tie(fit.ridge_normalized_ve, fit.ridge_variance_explained) = score(ridge_pred, fit.ridge_neuron_ve);
  ridge_pred = Matrix();
  phase.done("pixel ridge maps and test scores");

  // STA over all images: X_centred (y_i - min y_i) / sum (y_i - min y_i). With m the mean image,
  // X_centred (y_i - lo_i 1) = X y_i - m (1^T y_i): the constant lo_i drops out against the centred images,
  // which are not formed: the product reads the images in place and the centring is a rank-one correction
  // per neuron (at rounding level here, as y is centred per neuron, but it keeps the formula exact).
  std::vector<double> mean_image(static_cast<std::size_t>(p), 0.0);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t q = 0; q < p; ++q) mean_image[static_cast<std::size_t>(q)] += images(q, j);
  for (double& v : mean_image) v /= static_cast<double>(s);
  fit.sta_rf = Matrix(p, n);
  gemm(Trans::no, Trans::yes, 1.0, images, y, 0.0, fit.sta_rf);
  for (std::int64_t i = 0; i < n; ++i) {
    double lo = std::numeric_limits<double>::infinity(), sum = 0, total = 0;
    for (std::int64_t j = 0; j < s; ++j) lo = std::min(lo, y(i, j));
    for (std::int64_t j = 0; j < s; ++j) {
      sum += y(i, j) - lo;
      total += y(i, j);
    }
    const double scale = sum > 0 ? 1.0 / sum : 0.0;
    auto c = fit.sta_rf.col(i);
    for (std::int64_t q = 0; q < p; ++q)
      c[static_cast<std::size_t>(q)] = (c[static_cast<std::size_t>(q)] - mean_image[static_cast<std::size_t>(q)] * total) * scale;
  }
  phase.done(fmt::format("response-weighted averages over {} images", s));

  const Matrix& centre_of = options.centre_map == "rrr" ? fit.rrr_rf : options.centre_map == "sta" ? fit.sta_rf : fit.ridge_rf;
  fit.centre_x.resize(static_cast<std::size_t>(n));
  fit.centre_y.resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    std::tie(fit.centre_x[static_cast<std::size_t>(i)], fit.centre_y[static_cast<std::size_t>(i)]) =
        rf_centre(centre_of.col(i), height, width, options.centre_smooth);
  phase.done(fmt::format("RF centres from the {} maps", options.centre_map));
  return fit;
}

Retinotopy fit_retinotopy(const Context& ctx, std::span<const double> centre_x, std::span<const double> centre_y,
                          std::span<const double> pos_x, std::span<const double> pos_y, std::span<const std::uint8_t> use) {
  // Normal equations of both maps and the sums for their R^2: [G (9) | G^T cx (3) | G^T cy (3) | n, sx, sxx, sy, syy].
  std::vector<double> acc(20, 0.0);
  for (std::size_t i = 0; i < centre_x.size(); ++i) {
    if (!use[i] || !std::isfinite(centre_x[i]) || !std::isfinite(centre_y[i])) continue;
    const double g[3] = {1.0, pos_x[i], pos_y[i]};
    for (int u = 0; u < 3; ++u) {
      for (int v = 0; v < 3; ++v) acc[static_cast<std::size_t>(3 * u + v)] += g[u] * g[v];
      acc[static_cast<std::size_t>(9 + u)] += g[u] * centre_x[i];
      acc[static_cast<std::size_t>(12 + u)] += g[u] * centre_y[i];
    }
    acc[15] += 1;
    acc[16] += centre_x[i];
    acc[17] += centre_x[i] * centre_x[i];
    acc[18] += centre_y[i];
    acc[19] += centre_y[i] * centre_y[i];
  }
  ctx.allreduce_sum(acc);
  Retinotopy rt;
  rt.neurons = static_cast<std::int64_t>(acc[15]);
  if (rt.neurons < 4) {
    rt.coef_x.assign(3, kNaN);
    rt.coef_y.assign(3, kNaN);
    rt.r2_x = rt.r2_y = kNaN;
    return rt;
  }
  Matrix g(3, 3);
  for (int u = 0; u < 3; ++u)
    for (int v = 0; v < 3; ++v) g(u, v) = acc[static_cast<std::size_t>(3 * u + v)];
  // The 3 x 3 system by least squares (dgels): exact for the full-rank normal matrix, refuses a singular one.
  auto solve = [&](std::size_t at) {
    try {
      return least_squares(g, {acc[at], acc[at + 1], acc[at + 2]});
    } catch (const std::exception&) {
      return std::vector<double>(3, kNaN);
    }
  };
  rt.coef_x = solve(9);
  rt.coef_y = solve(12);
  // Explained sum of squares b^T G^T c - n mean^2 over the total n var.
  auto r2 = [&](const std::vector<double>& coef, std::size_t at, double sum, double sumsq) {
    const double nn = acc[15], ss_tot = sumsq - sum * sum / nn;
    double fitted = 0;
    for (std::size_t u = 0; u < 3; ++u) fitted += coef[u] * acc[at + u];
    return ss_tot > 0 ? (fitted - sum * sum / nn) / ss_tot : kNaN;
  };
  rt.r2_x = r2(rt.coef_x, 9, acc[16], acc[17]);
  rt.r2_y = r2(rt.coef_y, 12, acc[18], acc[19]);
  return rt;
}

}  // namespace popcode
