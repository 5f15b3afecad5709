#include "solvers/gabor_fit.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "partition/block_layout.hpp"
#include "solvers/cross_repeat.hpp"
#include "solvers/dense.hpp"
#include "src/errors.hpp"
#include "src/progress.hpp"

namespace popcode {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct BaseFilter {
  double frequency, size, ratio, orientation;
};

BaseFilter base_filter(const GaborGrid& g, std::int64_t b) {
  const auto nf = static_cast<std::int64_t>(g.frequencies.size()), ns = static_cast<std::int64_t>(g.sizes.size()),
             nr = static_cast<std::int64_t>(g.ratios.size());
  BaseFilter f{};
  f.frequency = g.frequencies[static_cast<std::size_t>(b % nf)];
  b /= nf;
  f.size = g.sizes[static_cast<std::size_t>(b % ns)];
  b /= ns;
  f.ratio = g.ratios[static_cast<std::size_t>(b % nr)];
  b /= nr;
  f.orientation = static_cast<double>(b) * M_PI / static_cast<double>(g.orientations);
  return f;
}

// gaborReduced for one filter: x, y are the two pixel coordinates (1-based), (x0, y0) the centre.
double gabor_value(double f, double s1, double s2, double theta, double psi, double x0, double y0, double x, double y) {
  const double dx = x - x0, dy = y - y0;
  const double xp = dx * std::cos(theta) + dy * std::sin(theta);
  const double yp = -dx * std::sin(theta) + dy * std::cos(theta);
  return std::exp(-0.5 * (xp * xp / (s1 * s1) + yp * yp / (s2 * s2))) * std::cos(2 * M_PI * f * xp + psi);
}

double matlab_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

void centre_rows(Matrix& a) {  // subtract each row's mean (a: items x samples, here filters x images)
  for (std::int64_t i = 0; i < a.rows(); ++i) {
    double mean = 0;
    for (std::int64_t j = 0; j < a.cols(); ++j) mean += a(i, j);
    mean /= static_cast<double>(a.cols());
    for (std::int64_t j = 0; j < a.cols(); ++j) a(i, j) -= mean;
  }
}

}  // namespace

GaborParameters gabor_parameters(const GaborGrid& grid, std::int64_t index) {
  const std::int64_t nb = grid.bases();
  const BaseFilter b = base_filter(grid, index % nb);
  return {b.frequency, b.size, b.ratio, b.orientation,
          static_cast<double>(index / nb) * 2 * M_PI / static_cast<double>(grid.phases)};
}

GaborFitResult fit_gabors(const Context& ctx, const Matrix& repeats, const Matrix& images, std::int64_t height,
                          std::int64_t width, const GaborGrid& grid) {
  const std::int64_t n = repeats.rows(), s = images.cols(), pixels = images.rows();
  if (pixels != height * width || repeats.cols() != 2 * s)
    throw InternalError(fmt::format("fit_gabors: images {} x {} for {} x {} px and a {} x {} block", pixels, s, height, width,
                                    n, repeats.cols()));
  const std::int64_t ntrain = s / 2;
  if (ntrain < 2)
    throw InputError(fmt::format("Gabor fits need at least 2 train and 2 test images; the recording gives {} images", s), true);
  if (grid.count() == 0 || grid.row_offsets.empty() || grid.col_offsets.empty())
    throw InputError("Gabor fits: the parameter grid or the centre offsets are empty", true);
  GaborFitResult out;
  out.train = out.test = ntrain;

  // Images minus the grand mean; train and test blocks (P x ntrain each, contiguous for the products).
  double grand = 0;
  for (const double v : images.values()) grand += v;
  grand /= static_cast<double>(images.size());
  Matrix x(pixels, 2 * ntrain);
  for (std::int64_t j = 0; j < 2 * ntrain; ++j)
    for (std::int64_t q = 0; q < pixels; ++q) x(q, j) = images(q, j) - grand;

  // Responses: repeat means minus the train mean; single repeats minus the same for the test metric.
  Matrix rtrain(ntrain, n), rtest(ntrain, n);  // samples x neurons, the anchor's orientation
  std::vector<double> b0(static_cast<std::size_t>(n), 0.0), vtrain(static_cast<std::size_t>(n), 0.0),
      vtest(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < ntrain; ++j) b0[static_cast<std::size_t>(i)] += 0.5 * (repeats(i, j) + repeats(i, s + j));
    b0[static_cast<std::size_t>(i)] /= static_cast<double>(ntrain);
    for (std::int64_t j = 0; j < ntrain; ++j) {
      rtrain(j, i) = 0.5 * (repeats(i, j) + repeats(i, s + j)) - b0[static_cast<std::size_t>(i)];
      rtest(j, i) = 0.5 * (repeats(i, ntrain + j) + repeats(i, s + ntrain + j)) - b0[static_cast<std::size_t>(i)];
      vtrain[static_cast<std::size_t>(i)] += rtrain(j, i) * rtrain(j, i) / static_cast<double>(ntrain);
      vtest[static_cast<std::size_t>(i)] += rtest(j, i) * rtest(j, i) / static_cast<double>(ntrain);
    }
  }

  // 1. The centre scan (estimateRFs): blob filters on every pixel, candidates in MATLAB's column-major
  // pixel order (row fastest), the first maximum of |corr| kept.
  out.scan_row.assign(static_cast<std::size_t>(n), 0.0);
  out.scan_col.assign(static_cast<std::size_t>(n), 0.0);
  {
    std::vector<double> best(static_cast<std::size_t>(n), -1.0), rnorm(static_cast<std::size_t>(n), 0.0);
    Matrix rc = rtrain;
    for (std::int64_t i = 0; i < n; ++i) {
      double mean = 0, ss = 0;
      for (std::int64_t j = 0; j < ntrain; ++j) mean += rc(j, i);
      mean /= static_cast<double>(ntrain);
      for (std::int64_t j = 0; j < ntrain; ++j) ss += (rc(j, i) -= mean) * rc(j, i);
      rnorm[static_cast<std::size_t>(i)] = std::sqrt(ss);
    }
    const std::int64_t chunk = 256;
    for (std::int64_t c0 = 0; c0 < pixels; c0 += chunk) {
      const std::int64_t cn = std::min(chunk, pixels - c0);
      Matrix filters(pixels, cn);
      for (std::int64_t c = 0; c < cn; ++c) {
        const std::int64_t m = c0 + c;  // MATLAB linear index: row = m % height, column = m / height
        const double crow = static_cast<double>(m % height + 1), ccol = static_cast<double>(m / height + 1);
        for (std::int64_t r = 0; r < height; ++r)
          for (std::int64_t q = 0; q < width; ++q)
            filters(r * width + q, c) = gabor_value(0.01, 10, 10, 0, 0, ccol, crow, static_cast<double>(q + 1), static_cast<double>(r + 1));
      }
      Matrix resp(cn, ntrain);
      gemm_raw(Trans::yes, Trans::no, cn, ntrain, pixels, 1.0, filters.data(), pixels, x.data(), pixels, 0.0, resp.data(), cn);
      centre_rows(resp);
      std::vector<double> fnorm(static_cast<std::size_t>(cn), 0.0);
      for (std::int64_t c = 0; c < cn; ++c)
        for (std::int64_t j = 0; j < ntrain; ++j) fnorm[static_cast<std::size_t>(c)] += resp(c, j) * resp(c, j);
      Matrix cc(cn, n);
      gemm(Trans::no, Trans::no, 1.0, resp, rc, 0.0, cc);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t c = 0; c < cn; ++c) {
          const double v = std::abs(cc(c, i) / std::sqrt(fnorm[static_cast<std::size_t>(c)]) / rnorm[static_cast<std::size_t>(i)]);
          if (std::isfinite(v) && v > best[static_cast<std::size_t>(i)]) {
            best[static_cast<std::size_t>(i)] = v;
            out.scan_row[static_cast<std::size_t>(i)] = static_cast<double>((c0 + c) % height);
            out.scan_col[static_cast<std::size_t>(i)] = static_cast<double>((c0 + c) / height);
          }
        }
    }
  }
  const double median_row = matlab_median(allgather_blocks(ctx, out.scan_row, MPI_DOUBLE)) + 1;  // 1-based
  const double median_col = matlab_median(allgather_blocks(ctx, out.scan_col, MPI_DOUBLE)) + 1;
  for (const double o : grid.row_offsets) out.grid_rows.push_back(median_row + o - 1);
  for (const double o : grid.col_offsets) out.grid_cols.push_back(median_col + o - 1);

  // 2. The grid of centres.
  const std::int64_t nb = grid.bases(), np = grid.phases;
  const Range mine = BlockLayout(nb, ctx.size()).range(ctx.rank());
  out.centre_row.assign(static_cast<std::size_t>(n), kNaN);
  out.centre_col.assign(static_cast<std::size_t>(n), kNaN);
  out.index.assign(static_cast<std::size_t>(n), -1);
  out.c_simple.assign(static_cast<std::size_t>(n), kNaN);
  out.c_complex.assign(static_cast<std::size_t>(n), kNaN);
  out.b_simple.assign(static_cast<std::size_t>(n), kNaN);
  out.b_complex.assign(static_cast<std::size_t>(n), kNaN);
  out.ve_train.assign(static_cast<std::size_t>(n), kNaN);
  out.ve_test.assign(static_cast<std::size_t>(n), kNaN);
  std::vector<double> vmax(static_cast<std::size_t>(n), -100.0);
  Matrix test_pred(ntrain, n, 0.0);
  Progress progress("rf: Gabor fits, candidate centres", static_cast<std::size_t>(out.grid_rows.size() * out.grid_cols.size()));
  for (const double row0 : out.grid_rows) {
    for (const double col0 : out.grid_cols) {
      // This rank's base filters at phase 0 and pi/2, their image products, then all of them gathered.
      const std::int64_t mb = mine.size();
      Matrix filters(pixels, 2 * mb);
      for (std::int64_t b = 0; b < mb; ++b) {
        const BaseFilter bf = base_filter(grid, mine.begin + b);
        for (std::int64_t r = 0; r < height; ++r)
          for (std::int64_t q = 0; q < width; ++q) {
            const double xr = static_cast<double>(r + 1), yc = static_cast<double>(q + 1);
            filters(r * width + q, b) = gabor_value(bf.frequency, bf.size, bf.size * bf.ratio, bf.orientation, 0.0, row0 + 1,
                                                    col0 + 1, xr, yc);
            filters(r * width + q, mb + b) = gabor_value(bf.frequency, bf.size, bf.size * bf.ratio, bf.orientation, M_PI / 2,
                                                         row0 + 1, col0 + 1, xr, yc);
          }
      }
      // Local products, laid out image-major per filter: [R0 of base b | R90 of base b], 4 ntrain values each.
      Matrix local(2 * ntrain, 2 * mb);
      gemm(Trans::yes, Trans::no, 1.0, x, filters, 0.0, local);  // (2 ntrain) x (2 mb): column = filter
      std::vector<double> mine_values(static_cast<std::size_t>(4 * ntrain * mb));
      for (std::int64_t b = 0; b < mb; ++b)
        for (std::int64_t j = 0; j < 2 * ntrain; ++j) {
          mine_values[static_cast<std::size_t>(b * 4 * ntrain + j)] = local(j, b);
          mine_values[static_cast<std::size_t>(b * 4 * ntrain + 2 * ntrain + j)] = local(j, mb + b);
        }
      const std::vector<double> all = allgather_blocks(ctx, mine_values, MPI_DOUBLE);
      auto r0 = [&](std::int64_t b, std::int64_t j) { return all[static_cast<std::size_t>(b * 4 * ntrain + j)]; };
      auto r90 = [&](std::int64_t b, std::int64_t j) { return all[static_cast<std::size_t>(b * 4 * ntrain + 2 * ntrain + j)]; };

      // Complex responses (the same for every phase) on the train images, centred; their products y2.
      Matrix g2(nb, ntrain);
      std::vector<double> g2_mean(static_cast<std::size_t>(nb), 0.0), g22(static_cast<std::size_t>(nb), 0.0);
      for (std::int64_t j = 0; j < ntrain; ++j)
        for (std::int64_t b = 0; b < nb; ++b) g2(b, j) = std::sqrt(r0(b, j) * r0(b, j) + r90(b, j) * r90(b, j));
      for (std::int64_t b = 0; b < nb; ++b) {
        for (std::int64_t j = 0; j < ntrain; ++j) g2_mean[static_cast<std::size_t>(b)] += g2(b, j);
        g2_mean[static_cast<std::size_t>(b)] /= static_cast<double>(ntrain);
        for (std::int64_t j = 0; j < ntrain; ++j) {
          g2(b, j) -= g2_mean[static_cast<std::size_t>(b)];
          g22[static_cast<std::size_t>(b)] += g2(b, j) * g2(b, j);
        }
      }
      Matrix y2(nb, n), y1(nb, n), g1(nb, ntrain);
      gemm(Trans::no, Trans::no, 1.0, g2, rtrain, 0.0, y2);

      // Each phase: simple responses, the 2 x 2 fits, the running first maximum of vexp per neuron.
      std::vector<double> best_v(static_cast<std::size_t>(n), -std::numeric_limits<double>::infinity()),
          best_c1(static_cast<std::size_t>(n), 0.0), best_c2(static_cast<std::size_t>(n), 0.0);
      std::vector<std::int64_t> best_g(static_cast<std::size_t>(n), -1);
      std::vector<double> g1_mean(static_cast<std::size_t>(nb)), g11(static_cast<std::size_t>(nb)), g12(static_cast<std::size_t>(nb));
      for (std::int64_t ph = 0; ph < np; ++ph) {
        const double psi = static_cast<double>(ph) * 2 * M_PI / static_cast<double>(np);
        const double cp = std::cos(psi), sp = std::sin(psi);
        for (std::int64_t j = 0; j < ntrain; ++j)
          for (std::int64_t b = 0; b < nb; ++b) g1(b, j) = std::max(0.0, cp * r0(b, j) + sp * r90(b, j));
        for (std::int64_t b = 0; b < nb; ++b) {
          double mean = 0, s11 = 0, s12 = 0;
          for (std::int64_t j = 0; j < ntrain; ++j) mean += g1(b, j);
          mean /= static_cast<double>(ntrain);
          for (std::int64_t j = 0; j < ntrain; ++j) {
            g1(b, j) -= mean;
            s11 += g1(b, j) * g1(b, j);
            s12 += g1(b, j) * g2(b, j);
          }
          g1_mean[static_cast<std::size_t>(b)] = mean;
          g11[static_cast<std::size_t>(b)] = s11;
          g12[static_cast<std::size_t>(b)] = s12;
        }
        gemm(Trans::no, Trans::no, 1.0, g1, rtrain, 0.0, y1);
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t b = 0; b < nb; ++b) {
            const auto bs = static_cast<std::size_t>(b);
            const double idet = 1.0 / (g11[bs] * g22[bs] - g12[bs] * g12[bs]);
            const double a1 = y1(b, i), a2 = y2(b, i);
            const double c1 = std::max(0.0, (g22[bs] * a1 - g12[bs] * a2) * idet);
            const double c2 = std::max(0.0, (-g12[bs] * a1 + g11[bs] * a2) * idet);
            const double v = c1 * a1 + c2 * a2;
            if (std::isfinite(v) && v > best_v[static_cast<std::size_t>(i)]) {
              best_v[static_cast<std::size_t>(i)] = v;
              best_g[static_cast<std::size_t>(i)] = b + nb * ph;
              best_c1[static_cast<std::size_t>(i)] = c1;
              best_c2[static_cast<std::size_t>(i)] = c2;
            }
          }
      }

      // Train variance explained of each neuron's best Gabor here; a better one replaces the kept model.
      for (std::int64_t i = 0; i < n; ++i) {
        const auto is = static_cast<std::size_t>(i);
        if (best_g[is] < 0) continue;
        const std::int64_t b = best_g[is] % nb, ph = best_g[is] / nb;
        const double psi = static_cast<double>(ph) * 2 * M_PI / static_cast<double>(np);
        const double cp = std::cos(psi), sp = std::sin(psi);
        auto simple = [&](std::int64_t j) { return std::max(0.0, cp * r0(b, j) + sp * r90(b, j)); };
        auto complex = [&](std::int64_t j) { return std::sqrt(r0(b, j) * r0(b, j) + r90(b, j) * r90(b, j)); };
        double m1 = 0, m2 = 0;
        for (std::int64_t j = 0; j < ntrain; ++j) {
          m1 += simple(j);
          m2 += complex(j);
        }
        m1 /= static_cast<double>(ntrain);
        m2 /= static_cast<double>(ntrain);
        double se = 0;
        for (std::int64_t j = 0; j < ntrain; ++j) {
          const double pred = best_c1[is] * (simple(j) - m1) + best_c2[is] * (complex(j) - m2);
          se += (pred - rtrain(j, i)) * (pred - rtrain(j, i));
        }
        const double vv1 = 1.0 - se / static_cast<double>(ntrain) / vtrain[is];
        if (!(vv1 > vmax[is])) continue;
        vmax[is] = vv1;
        out.ve_train[is] = vv1;
        out.index[is] = best_g[is];
        out.c_simple[is] = best_c1[is];
        out.c_complex[is] = best_c2[is];
        out.b_simple[is] = m1;
        out.b_complex[is] = m2;
        out.centre_row[is] = row0;
        out.centre_col[is] = col0;
        double te = 0;
        for (std::int64_t j = 0; j < ntrain; ++j) {
          const double pred = best_c1[is] * (simple(ntrain + j) - m1) + best_c2[is] * (complex(ntrain + j) - m2);
          test_pred(j, i) = pred;
          te += (pred - rtest(j, i)) * (pred - rtest(j, i));
        }
        out.ve_test[is] = 1.0 - te / static_cast<double>(ntrain) / vtest[is];
      }
      progress.advance();
    }
  }
  progress.finish();

  // The anchor's normalised test variance explained, from the single repeats.
  double sums[2] = {0, 0};
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < ntrain; ++j) {
      const double a = repeats(i, ntrain + j) - b0[static_cast<std::size_t>(i)];
      const double c = repeats(i, s + ntrain + j) - b0[static_cast<std::size_t>(i)];
      sums[0] += (a - test_pred(j, i)) * (c - test_pred(j, i));
      sums[1] += a * c;
    }
  ctx.allreduce_sum(std::span<double>(sums, 2));
  out.normalized_ve = 1.0 - sums[0] / sums[1];
  return out;
}

}  // namespace popcode
