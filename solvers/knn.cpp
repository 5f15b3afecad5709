#include "solvers/knn.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "solvers/dense.hpp"
#include "src/progress.hpp"

namespace popcode {

namespace {

// The k nearest of every point seen so far, ordered by (distance, index): ties go to the lower index, and
// the order is total, so merging partial lists in any order gives the same result.
class TopK {
 public:
  struct Entry {
    double distance;
    std::int64_t index;
    bool operator<(const Entry& o) const { return distance < o.distance || (distance == o.distance && index < o.index); }
  };
  TopK(std::int64_t points, std::int64_t k)
      : k_(k), entries_(static_cast<std::size_t>(points * k), Entry{std::numeric_limits<double>::infinity(), kEmpty}) {}

  // A max-heap per point while offering; sorted by merge().
  void offer(std::int64_t point, double d, std::int64_t index) {
    Entry* h = list(point);
    const Entry e{d, index};
    if (!(e < h[0])) return;  // not better than the worst kept (the heap top)
    std::pop_heap(h, h + k_);
    h[k_ - 1] = e;
    std::push_heap(h, h + k_);
  }

  // The worst distance kept for `point` (infinity until k are kept); valid while offering.
  double worst(std::int64_t point) const { return entries_[static_cast<std::size_t>(point * k_)].distance; }

  // Sorts each list (ends the offering).
  void sort() {
    const auto points = static_cast<std::int64_t>(entries_.size()) / k_;
    for (std::int64_t i = 0; i < points; ++i) std::sort_heap(list(i), list(i) + k_);
  }

  // Collective: sorts each list and merges the lists of all ranks (an allreduce with a merging operator).
  void merge(const Context& ctx) {
    const auto points = static_cast<std::int64_t>(entries_.size()) / k_;
    sort();
    if (ctx.size() == 1) return;
    MPI_Datatype one_list;
    mpi_check(MPI_Type_contiguous(static_cast<int>(k_ * static_cast<std::int64_t>(sizeof(Entry))), MPI_BYTE, &one_list),
              "MPI_Type_contiguous");
    mpi_check(MPI_Type_commit(&one_list), "MPI_Type_commit");
    MPI_Op op;
    mpi_check(MPI_Op_create(&merge_lists, /*commute=*/1, &op), "MPI_Op_create");
    merging_k = k_;
    const int rc = MPI_Allreduce(MPI_IN_PLACE, entries_.data(), static_cast<int>(points), one_list, op, ctx.comm());
    MPI_Op_free(&op);
    MPI_Type_free(&one_list);
    mpi_check(rc, "MPI_Allreduce(top-k merge)");
  }

  const Entry* sorted(std::int64_t point) const { return entries_.data() + point * k_; }

 private:
  static constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::max();
  static inline std::int64_t merging_k = 0;  // the list length the MPI operator sees (one merge at a time)

  // inout[i] <- the k smallest of in[i] and inout[i], both sorted.
  static void merge_lists(void* in, void* inout, int* len, MPI_Datatype*) {
    const std::int64_t k = merging_k;
    std::vector<Entry> merged(static_cast<std::size_t>(k));
    for (int p = 0; p < *len; ++p) {
      const Entry* x = static_cast<const Entry*>(in) + p * k;
      Entry* y = static_cast<Entry*>(inout) + p * k;
      std::int64_t u = 0, v = 0;
      for (std::int64_t c = 0; c < k; ++c) merged[static_cast<std::size_t>(c)] = (y[v] < x[u]) ? y[v++] : x[u++];
      std::copy(merged.begin(), merged.end(), y);
    }
  }

  Entry* list(std::int64_t point) { return entries_.data() + point * k_; }
  std::int64_t k_;
  std::vector<Entry> entries_;
};

// Under float32 products: per point, the pairs whose distance interval starts at or below the k-th smallest
// interval end seen so far (`limit`). Pruned as the limit falls, so a list stays near k entries.
class Candidates {
 public:
  struct Entry {
    double lo;
    std::int64_t index;
  };
  Candidates(std::int64_t points, std::int64_t k)
      : lists_(static_cast<std::size_t>(points)), prune_at_(static_cast<std::size_t>(points), min_prune(k)), k_(k) {}

  void offer(std::int64_t point, double lo, std::int64_t index, double limit) {
    if (!(lo <= limit)) return;
    auto& l = lists_[static_cast<std::size_t>(point)];
    l.push_back({lo, index});
    if (l.size() >= prune_at_[static_cast<std::size_t>(point)]) {
      std::erase_if(l, [limit](const Entry& e) { return e.lo > limit; });
      prune_at_[static_cast<std::size_t>(point)] = std::max(min_prune(k_), 2 * l.size());
    }
  }
  const std::vector<Entry>& list(std::int64_t point) const { return lists_[static_cast<std::size_t>(point)]; }

 private:
  static std::size_t min_prune(std::int64_t k) { return static_cast<std::size_t>(4 * k + 64); }
  std::vector<std::vector<Entry>> lists_;
  std::vector<std::size_t> prune_at_;
  std::int64_t k_;
};

// 4-lane double vectors (GCC vector extensions; element-wise operations, so the same roundings as scalar code).
typedef double Lanes4 __attribute__((vector_size(32)));

// The metric's transformation of the points, applied as values are read instead of to a copy:
// t(r, j) = ((x(r, j) - row_offset[r]) - col_offset[j]) * col_scale[j]. Euclidean: the neuron's mean over points
// as row_offset; correlation: the point's mean over neurons as col_offset; cosine and correlation: 1 / |x_j| as
// col_scale (set once the norms are known); the others 0 and 1, which leave values bitwise unchanged.
struct PointTransform {
  std::vector<double> row_offset, col_offset, col_scale;
  double operator()(double v, std::size_t r, std::size_t j) const { return ((v - row_offset[r]) - col_offset[j]) * col_scale[j]; }
};

// v = lanes of one point's transformed values: its values at p, the neuron offsets at ro (euclidean), the
// point's offset c and scale sc (the others). Written to `v` (an AVX-sized return value would change the
// ABI). Each metric skips the operations its transform leaves out (subtracting 0, multiplying by 1: exact,
// so the values are still bitwise the general formula's, lane by lane).
template <KnnMetric M, typename V, typename S>
inline __attribute__((always_inline)) void transformed_lanes(V& v, const double* p, const double* ro, const S& c, const S& sc) {
  std::memcpy(&v, p, sizeof v);
  if constexpr (M == KnnMetric::euclidean) {
    V o;
    std::memcpy(&o, ro, sizeof o);
    v = v - o;
  } else if constexpr (M == KnnMetric::cosine) {
    v = v * sc;
  } else {
    v = (v - c) * sc;
  }
}

// t_i . t_j over the n local neurons, the transformation applied lane by lane (the same roundings as the
// scalar transform), summed in a fixed order: 8 running sums in two 4-lane vectors, then the tail. Each
// metric skips the operations its transform leaves out (subtracting 0, multiplying by 1: exact, so the values
// are still bitwise the general formula's).
template <KnnMetric M>
inline __attribute__((always_inline)) double transformed_dot(const Matrix& x, const PointTransform& t, std::int64_t i,
                                                             std::int64_t j) {
  const std::int64_t n = x.rows();
  const double* xi = x.data() + i * n;
  const double* xj = x.data() + j * n;
  const double* ro = t.row_offset.data();
  const auto ui = static_cast<std::size_t>(i), uj = static_cast<std::size_t>(j);
  const double ci = t.col_offset[ui], si = t.col_scale[ui], cj = t.col_offset[uj], sj = t.col_scale[uj];
  const Lanes4 vci = {ci, ci, ci, ci}, vsi = {si, si, si, si}, vcj = {cj, cj, cj, cj}, vsj = {sj, sj, sj, sj};
  // Lanes r..r+3 of a transformed column.
  const auto lanes = [&](Lanes4& v, const double* p, std::int64_t r, const Lanes4& c, const Lanes4& sc) __attribute__((always_inline)) {
    transformed_lanes<M>(v, p + r, ro + r, c, sc);
  };
  Lanes4 s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
  std::int64_t r = 0;
  for (; r + 8 <= n; r += 8) {
    Lanes4 a0, a1, b0, b1;
    lanes(a0, xi, r, vci, vsi);
    lanes(a1, xi, r + 4, vci, vsi);
    lanes(b0, xj, r, vcj, vsj);
    lanes(b1, xj, r + 4, vcj, vsj);
    s0 += a0 * b0;
    s1 += a1 * b1;
  }
  const Lanes4 s = s0 + s1;
  double d = (s[0] + s[1]) + (s[2] + s[3]);
  for (; r < n; ++r) d += t(xi[r], static_cast<std::size_t>(r), ui) * t(xj[r], static_cast<std::size_t>(r), uj);
  return d;
}

// Now used for the squared norms (one call per point); the re-ranking's products come from chunked_dots below,
// which sums in this order, so that an exact duplicate's product equals its norm and its distance is 0.
// Compiled for AVX-512 and AVX2 machines too, picked at load time; the same results bitwise: element-wise
// IEEE operations in the same order, and no fused multiply-adds (this file is compiled with
// -ffp-contract=off; CMakeLists.txt).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) double transformed_dot(
    KnnMetric m, const Matrix& x, const PointTransform& t, std::int64_t i, std::int64_t j) {
  switch (m) {
    case KnnMetric::euclidean: return transformed_dot<KnnMetric::euclidean>(x, t, i, j);
    case KnnMetric::cosine: return transformed_dot<KnnMetric::cosine>(x, t, i, j);
    case KnnMetric::correlation: break;
  }
  return transformed_dot<KnnMetric::correlation>(x, t, i, j);
}

// The re-ranking's products in chunks of neurons. Reading the whole column of each pair's second point
// (8 n_local bytes, from memory: the columns of all points far exceed the caches) made the re-ranking
// memory-bound: 0.47-0.48 s for the 102,000 pairs of 5,600 points x 10,000 neurons, against 0.33-0.34 s
// chunked (bench/README.md, session 17). Instead the transformed values
// of one chunk of neurons, for all points, are formed once into a buffer that stays in cache, and every pair
// adds that chunk's products to its 8 running sums, which are kept between chunks. The running sums are
// transformed_dot's (lane l sums the neurons r = l mod 8 of the whole multiples of 8, in neuron order), and so
// are their final pairwise additions and the tail, so the products are its bits exactly.
typedef double Lanes8 __attribute__((vector_size(64)));

using PointPair = std::pair<std::int64_t, std::int64_t>;

// sums[8 p + r mod 8] += chunk(:, first)[r] * chunk(:, second)[r] over the chunk's neurons (len, a
// multiple of 8; each point's values contiguous). Compiled for AVX2 and AVX-512 too: element-wise IEEE
// operations, no contraction (-ffp-contract=off), so every version gives the same bits.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void add_chunk_products(
    const double* chunk, std::int64_t len, const PointPair* pairs, std::size_t count, double* sums) {
  for (std::size_t p = 0; p < count; ++p) {
    const double* a = chunk + pairs[p].first * len;
    const double* b = chunk + pairs[p].second * len;
    Lanes8 acc;  // the buffer is 8-byte aligned only: loaded and stored unaligned
    std::memcpy(&acc, sums + 8 * p, sizeof acc);
    for (std::int64_t r = 0; r < len; r += 8) {
      Lanes8 u, v;
      std::memcpy(&u, a + r, sizeof u);
      std::memcpy(&v, b + r, sizeof v);
      acc += u * v;
    }
    std::memcpy(sums + 8 * p, &acc, sizeof acc);
  }
}

// dst[r] = t(src[r]) for r < len, one point's values (neuron offsets `ro`, the point's offset c and scale sc),
// with transformed_dot's lane operations: element-wise, so the same bits as the scalar transform. kSingle:
// then times `scale` (a power of two) and rounded to float, for the float32 products' copy.
template <KnnMetric M, bool kSingle>
inline __attribute__((always_inline)) void transform_values(std::conditional_t<kSingle, float, double>* dst, const double* src,
                                                            const double* ro, double c, double sc, std::int64_t len,
                                                            double scale) {
  typedef float Floats8 __attribute__((vector_size(32)));
  std::int64_t r = 0;
  for (; r + 8 <= len; r += 8) {
    Lanes8 v;
    transformed_lanes<M>(v, src + r, ro + r, c, sc);
    if constexpr (kSingle) {
      const Floats8 f = __builtin_convertvector(v * scale, Floats8);
      std::memcpy(dst + r, &f, sizeof f);
    } else {
      std::memcpy(dst + r, &v, sizeof v);
    }
  }
  for (; r < len; ++r) {
    const double v = ((src[r] - ro[r]) - c) * sc;
    if constexpr (kSingle)
      dst[r] = static_cast<float>(v * scale);
    else
      dst[r] = v;
  }
}

// chunk(:, j) = t(x(r0 : r0 + len, j)) for every point j, len values a point. Compiled for AVX2 and AVX-512
// too; scalar, forming the chunks took 0.12 of the re-ranking's 0.3 s on the dimension benchmark, vectorised
// 0.06 s (perf, session 18).
template <KnnMetric M>
inline __attribute__((always_inline)) void build_chunk(double* chunk, const Matrix& x, const PointTransform& t,
                                                       std::int64_t r0, std::int64_t len) {
  const std::int64_t n = x.rows(), s = x.cols();
  for (std::int64_t j = 0; j < s; ++j) {
    const double* col = x.data() + j * n + r0;
    if (j + 4 < s)  // the runs are 8 n bytes a column apart: prefetched four columns ahead
      for (std::int64_t r = 0; r < len; r += 8) __builtin_prefetch(col + 4 * n + r);
    const auto uj = static_cast<std::size_t>(j);
    transform_values<M, false>(chunk + j * len, col, t.row_offset.data() + r0, t.col_offset[uj], t.col_scale[uj], len, 1.0);
  }
}

// The float32 products' copy: x32(:, j) = float(t(x(:, j)) * scale) for every point j (the same bits as the
// scalar transform, then the same multiplication and rounding). Compiled for AVX2 and AVX-512 too.
template <KnnMetric M>
inline __attribute__((always_inline)) void fill_single(float* x32, const Matrix& x, const PointTransform& t, double scale) {
  const std::int64_t n = x.rows(), s = x.cols();
  for (std::int64_t j = 0; j < s; ++j) {
    const auto uj = static_cast<std::size_t>(j);
    transform_values<M, true>(x32 + j * n, x.data() + j * n, t.row_offset.data(), t.col_offset[uj], t.col_scale[uj], n, scale);
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void fill_single(
    KnnMetric m, float* x32, const Matrix& x, const PointTransform& t, double scale) {
  switch (m) {
    case KnnMetric::euclidean: return fill_single<KnnMetric::euclidean>(x32, x, t, scale);
    case KnnMetric::cosine: return fill_single<KnnMetric::cosine>(x32, x, t, scale);
    case KnnMetric::correlation: break;
  }
  fill_single<KnnMetric::correlation>(x32, x, t, scale);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void build_chunk(
    KnnMetric m, double* chunk, const Matrix& x, const PointTransform& t, std::int64_t r0, std::int64_t len) {
  switch (m) {
    case KnnMetric::euclidean: return build_chunk<KnnMetric::euclidean>(chunk, x, t, r0, len);
    case KnnMetric::cosine: return build_chunk<KnnMetric::cosine>(chunk, x, t, r0, len);
    case KnnMetric::correlation: break;
  }
  build_chunk<KnnMetric::correlation>(chunk, x, t, r0, len);
}

// transformed_dot(metric, x, t, i, j) for every pair (i, j), over this rank's neurons; bitwise the same.
std::vector<double> chunked_dots(KnnMetric metric, const Matrix& x, const PointTransform& t, const std::vector<PointPair>& pairs,
                                 const KnnTuning& tuning) {
  const std::int64_t n = x.rows(), s = x.cols();
  const std::int64_t whole = n / 8 * 8;  // neurons summed in the 8 running sums; the rest is the tail
  const std::int64_t chunk_len =
      std::min(std::max<std::int64_t>(8, tuning.rerank_chunk_bytes / (8 * std::max<std::int64_t>(s, 1)) / 8 * 8),
               std::max<std::int64_t>(8, whole));
  const auto batch = static_cast<std::size_t>(std::max<std::int64_t>(1, tuning.rerank_batch_pairs));
  std::vector<double> dots(pairs.size());
  std::vector<double> chunk(static_cast<std::size_t>(chunk_len * s));
  std::vector<double> sums(8 * std::min(batch, pairs.size()));
  for (std::size_t p0 = 0; p0 < pairs.size(); p0 += batch) {
    const std::size_t count = std::min(batch, pairs.size() - p0);
    std::fill(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(8 * count), 0.0);
    for (std::int64_t r0 = 0; r0 < whole; r0 += chunk_len) {
      const std::int64_t len = std::min(chunk_len, whole - r0);
      build_chunk(metric, chunk.data(), x, t, r0, len);
      add_chunk_products(chunk.data(), len, pairs.data() + p0, count, sums.data());
    }
    for (std::size_t p = 0; p < count; ++p) {
      const double* a = sums.data() + 8 * p;
      const auto [i, j] = pairs[p0 + p];
      const auto ui = static_cast<std::size_t>(i), uj = static_cast<std::size_t>(j);
      double d = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
      const double* xi = x.data() + i * n;
      const double* xj = x.data() + j * n;
      for (std::int64_t r = whole; r < n; ++r)
        d += t(xi[r], static_cast<std::size_t>(r), ui) * t(xj[r], static_cast<std::size_t>(r), uj);
      dots[p0 + p] = d;
    }
  }
  return dots;
}

// One point's values over this rank's neurons: how many are NaN or infinite, and the smallest and largest
// value (NaNs left out; meaningful only when the count is 0, which knn_graph requires before using them).
// Compiled for AVX2 and AVX-512 as well: the count and the extremes do not depend on the order they are
// taken in.
struct ColumnScan {
  std::int64_t non_finite = 0;
  double lowest = std::numeric_limits<double>::infinity(), highest = -std::numeric_limits<double>::infinity();
};
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) ColumnScan scan_column(const double* v,
                                                                                                    std::int64_t n) {
  typedef long long Counts8 __attribute__((vector_size(64)));
  const double inf = std::numeric_limits<double>::infinity();
  Lanes8 lo = {inf, inf, inf, inf, inf, inf, inf, inf}, hi = -lo;
  Counts8 bad = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t r = 0;
  for (; r + 8 <= n; r += 8) {
    Lanes8 x;
    std::memcpy(&x, v + r, sizeof x);
    const Lanes8 z = x - x;  // 0 when finite, NaN otherwise; comparisons with NaN are false
    bad -= z != z;
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
  }
  ColumnScan c;
  for (int l = 0; l < 8; ++l) {
    c.non_finite += bad[l];
    c.lowest = std::min(c.lowest, lo[l]);
    c.highest = std::max(c.highest, hi[l]);
  }
  for (; r < n; ++r) {  // the same tests as the lanes'
    const double x = v[r], z = x - x;
    c.non_finite += z != z ? 1 : 0;
    c.lowest = x < c.lowest ? x : c.lowest;
    c.highest = x > c.highest ? x : c.highest;
  }
  return c;
}

// Neurons per single-precision product run (the gamma_m of the error bound). Longer runs mean fewer block
// passes that widen sgemm's single-precision results into the double sums, and a wider bound, so more
// candidates. On the dimension benchmark (5,600 points x 10,000 neurons, cosine, k = 20; session 18, three
// alternating runs): 512 neurons, 102,013 candidate pairs and 3.52-3.57 s from the stage's start to the end
// of the kNN blocks; 2,048, 103,184 and 3.40-3.46 s; 4,096, 104,759 and 3.38-3.50 s. One run of all 10,000
// neurons (bound 6e-4) let through 9.8 million candidate pairs.
constexpr std::int64_t kSingleRun = 2048;

}  // namespace

KnnProducts parse_knn_products(const std::string& name) {
  if (name == "float32") return KnnProducts::float32;
  if (name == "float64") return KnnProducts::float64;
  throw UsageError(fmt::format("unknown products '{}' (expected float32 or float64)", name));
}

const char* knn_products_name(KnnProducts p) { return p == KnnProducts::float32 ? "float32" : "float64"; }

KnnMetric parse_knn_metric(const std::string& name) {
  if (name == "euclidean") return KnnMetric::euclidean;
  if (name == "cosine") return KnnMetric::cosine;
  if (name == "correlation") return KnnMetric::correlation;
  throw UsageError(fmt::format("unknown metric '{}' (expected euclidean, cosine or correlation)", name));
}

const char* knn_metric_name(KnnMetric m) {
  switch (m) {
    case KnnMetric::euclidean: return "euclidean";
    case KnnMetric::cosine: return "cosine";
    case KnnMetric::correlation: return "correlation";
  }
  return "?";
}

KnnGraph knn_graph(const Context& ctx, const Matrix& points, std::int64_t k, KnnMetric metric, std::int64_t tile,
                   const GramBlockVisitor& visit, KnnProducts products, const KnnTuning& tuning) {
  const std::int64_t s = points.cols(), n_local = points.rows();
  ctx.agree(k < 1 || k >= s,
            fmt::format("kNN graph: k = {} needs 1 <= k < number of points ({})", k, s), ExitCode::bad_input);
  tile = std::max<std::int64_t>(1, std::min(tile, s));

  std::vector<ColumnScan> scans;  // each point's local extremes, for the float32 scale below
  {
    // Before any transformation, which would spread a NaN over its whole neuron.
    std::vector<double> non_finite(static_cast<std::size_t>(s), 0.0);
    scans.resize(static_cast<std::size_t>(s));
    for (std::int64_t j = 0; j < s; ++j) {
      scans[static_cast<std::size_t>(j)] = scan_column(points.data() + j * n_local, n_local);
      non_finite[static_cast<std::size_t>(j)] = static_cast<double>(scans[static_cast<std::size_t>(j)].non_finite);
    }
    ctx.allreduce_sum(non_finite);
    std::int64_t bad = 0, first_bad = -1;
    for (std::int64_t j = 0; j < s; ++j)
      if (non_finite[static_cast<std::size_t>(j)] > 0 && bad++ == 0) first_bad = j;
    ctx.agree(bad > 0, fmt::format("kNN graph: {} of {} points have NaN or infinite values (first: point {})", bad, s, first_bad),
              ExitCode::bad_input);
  }
  // The points in the metric's space: centred over points (euclidean), centred over neurons (correlation), unit norm
  // (cosine, correlation). Squared norms are sums over neurons.
  PointTransform transform{std::vector<double>(static_cast<std::size_t>(n_local), 0.0),
                           std::vector<double>(static_cast<std::size_t>(s), 0.0), std::vector<double>(static_cast<std::size_t>(s), 1.0)};
  if (metric == KnnMetric::euclidean) {
    // Distances do not change when every point moves by the same vector; centring the points over
    // points (a per-neuron mean, local) keeps the Gram-based distances accurate for far-off clouds.
    for (std::int64_t i = 0; i < n_local; ++i) {
      double mean = 0;
      for (std::int64_t j = 0; j < s; ++j) mean += points(i, j);
      transform.row_offset[static_cast<std::size_t>(i)] = mean / static_cast<double>(s);
    }
  } else if (metric == KnnMetric::correlation) {
    std::vector<double> mean(static_cast<std::size_t>(s), 0.0);
    for (std::int64_t j = 0; j < s; ++j)
      for (double v : points.col(j)) mean[static_cast<std::size_t>(j)] += v;
    ctx.allreduce_sum(mean);
    const double n_total = static_cast<double>(ctx.sum(n_local));
    for (std::int64_t j = 0; j < s; ++j) transform.col_offset[static_cast<std::size_t>(j)] = mean[static_cast<std::size_t>(j)] / n_total;
  }
  // Summed as the float32 mode's re-ranked products are (the same dot, then over ranks), so that exact duplicates
  // come out at distance exactly 0 there.
  std::vector<double> norm2(static_cast<std::size_t>(s), 0.0);
  for (std::int64_t j = 0; j < s; ++j) norm2[static_cast<std::size_t>(j)] = transformed_dot(metric, points, transform, j, j);
  ctx.allreduce_sum(norm2);
  {
    std::int64_t bad = 0, first_bad = -1;
    for (std::int64_t j = 0; j < s; ++j)
      if (!std::isfinite(norm2[static_cast<std::size_t>(j)]) && bad++ == 0) first_bad = j;
    ctx.agree(bad > 0,
              fmt::format("kNN graph: {} of {} points have squared norms beyond the double range (first: point {})", bad,
                          s, first_bad),
              ExitCode::bad_input);
  }
  if (metric != KnnMetric::euclidean) {
    std::int64_t zero = 0, first_zero = -1;
    for (std::int64_t j = 0; j < s; ++j)
      if (!(norm2[static_cast<std::size_t>(j)] > 0)) {
        if (zero++ == 0) first_zero = j;
      }
    ctx.agree(zero > 0,
              fmt::format("kNN graph: {} of {} points have zero {} (first: point {}); the {} distance is undefined for "
                          "them",
                          zero, s, metric == KnnMetric::correlation ? "variance over neurons" : "norm", first_zero,
                          knn_metric_name(metric)),
              ExitCode::bad_input);
    for (std::int64_t j = 0; j < s; ++j) transform.col_scale[static_cast<std::size_t>(j)] = 1.0 / std::sqrt(norm2[static_cast<std::size_t>(j)]);
  }
  const auto transformed_value = [&](std::int64_t i, std::int64_t j) {
    return transform(points(i, j), static_cast<std::size_t>(i), static_cast<std::size_t>(j));
  };

  const bool single = products == KnnProducts::float32;
  // float64: the transformed points themselves, for dgemm (8 n_local S bytes). float32 keeps no such copy.
  Matrix transformed;
  if (!single) {
    transformed = Matrix(n_local, s);
    for (std::int64_t j = 0; j < s; ++j)
      for (std::int64_t i = 0; i < n_local; ++i) transformed(i, j) = transformed_value(i, j);
  }
  const std::int64_t tiles = (s + tile - 1) / tile;
  const std::int64_t blocks = tiles * (tiles + 1) / 2;
  Matrix partial(tile, tile), summed(tile, tile);
  const auto distance = [&](std::int64_t i, std::int64_t j, double dot) {
    // Non-increasing in `dot` as computed (each step is a correctly rounded, monotone operation), which the
    // float32 products' intervals rely on.
    return metric == KnnMetric::euclidean
               ? std::sqrt(std::max(0.0, norm2[static_cast<std::size_t>(i)] + norm2[static_cast<std::size_t>(j)] - 2.0 * dot))
               : std::clamp(1.0 - dot, 0.0, 2.0);  // sklearn clips cosine distances to [0, 2]
  };

  // float32 products: the single-precision copy, scaled by 2^-e so that its largest value is below 1, and the
  // error bound of a product (see knn.hpp): |x.y (single) - x.y (double)| <= c |x||y| + absolute.
  std::vector<float> x32;
  std::vector<float> part32;
  double unscale = 1, bound_c = 0, bound_abs = 0;
  std::vector<double> norm;  // |x_j| in the metric's space, rounded up past its own rounding error
  if (single) {
    // The largest transformed magnitude. Cosine and correlation transform a point's values by one
    // increasing function, x -> (x - c) * s (s > 0, each step rounded, so still non-decreasing), whose
    // largest magnitude over the point is at its smallest or its largest value: no pass over the values.
    // Euclidean subtracts a different offset from each neuron.
    double largest = 0;
    if (metric == KnnMetric::euclidean) {
      for (std::int64_t j = 0; j < s; ++j)
        for (std::int64_t i = 0; i < n_local; ++i) largest = std::max(largest, std::abs(transformed_value(i, j)));
    } else if (n_local > 0) {
      for (std::int64_t j = 0; j < s; ++j) {
        const ColumnScan& c = scans[static_cast<std::size_t>(j)];
        const auto uj = static_cast<std::size_t>(j);
        largest = std::max({largest, std::abs(transform(c.lowest, 0, uj)), std::abs(transform(c.highest, 0, uj))});
      }
    }
    largest = ctx.max(largest);
    int e = 0;
    std::frexp(largest, &e);  // largest < 2^e
    const double scale = std::ldexp(1.0, -e);
    unscale = std::ldexp(1.0, 2 * e);
    x32.resize(static_cast<std::size_t>(n_local * s));
    fill_single(metric, x32.data(), points, transform, scale);
    part32.resize(static_cast<std::size_t>(tile * tile));
    const double u = 0x1p-24, u64 = 0x1p-53, run = static_cast<double>(kSingleRun);
    const double n_total = static_cast<double>(ctx.sum(n_local));
    const double gamma_run = run * u / (1 - run * u);
    const double terms64 = n_total + std::ceil(n_total / run) + ctx.size();
    const double gamma64 = terms64 * u64 / (1 - terms64 * u64);
    bound_c = 1.01 * (2 * u + u * u + gamma_run * (1 + u) * (1 + u) + 2 * gamma64);
    // Underflow: at most 2^-150 for each rounded value, product and sum of the scaled points; 8 per neuron covers it.
    bound_abs = 8 * n_total * 0x1p-149 * unscale;
    norm.resize(static_cast<std::size_t>(s));
    for (std::int64_t j = 0; j < s; ++j)
      norm[static_cast<std::size_t>(j)] =
          (metric == KnnMetric::euclidean ? std::sqrt(norm2[static_cast<std::size_t>(j)]) : 1.0) * (1 + 2 * gamma64 + 1e-12);
  }
  // The interval of a pair's double product around its single-precision one, widened for the rounding of
  // dot +- bound itself.
  const auto product_bound = [&](std::int64_t i, std::int64_t j, double dot) {
    const double b = bound_c * norm[static_cast<std::size_t>(i)] * norm[static_cast<std::size_t>(j)] + bound_abs;
    return 1.000001 * b + 4 * 0x1p-53 * (std::abs(dot) + b);
  };

  // float64: the running top-k of every point, on every rank (the pairs of the blocks this rank reduced).
  // float32: the k smallest interval ends (`upper`) and the candidates.
  TopK top(s, single ? 1 : k);
  TopK upper(s, single ? k : 1);
  Candidates candidates(single ? s : 0, k);
  Progress progress(fmt::format("kNN graph ({} points, k = {}, {}, {} products, {} blocks)", s, k, knn_metric_name(metric),
                                knn_products_name(products), blocks),
                    static_cast<std::size_t>(blocks));
  std::int64_t q = 0;
  for (std::int64_t a = 0; a < tiles; ++a) {
    for (std::int64_t b = a; b < tiles; ++b, ++q) {
      // Block (a, b) of the upper triangle: its partial products over this rank's neurons, summed onto
      // the block's root; each distance then serves both of its points.
      const std::int64_t fa = a * tile, ra = std::min(tile, s - fa), fb = b * tile, rb = std::min(tile, s - fb);
      const int root = static_cast<int>(q % ctx.size());
      if (n_local > 0 && !single) {
        gemm_raw(Trans::yes, Trans::no, ra, rb, n_local, 1.0, transformed.data() + fa * n_local, n_local,
                 transformed.data() + fb * n_local, n_local, 0.0, partial.data(), ra);
      } else {
        // A diagonal block is symmetric: ssyrk forms its upper triangle at half the flops, which is mirrored
        // once the runs are added (the visitor sees the whole square).
        const bool diagonal = a == b;
        std::fill(partial.data(), partial.data() + ra * rb, 0.0);
        for (std::int64_t r0 = 0; r0 < n_local; r0 += kSingleRun) {
          const std::int64_t len = std::min(kSingleRun, n_local - r0);
          if (diagonal) {
            syrk_raw_f32(ra, len, x32.data() + fa * n_local + r0, n_local, part32.data(), ra);
            for (std::int64_t jj = 0; jj < rb; ++jj)
              for (std::int64_t ii = 0; ii <= jj; ++ii)
                partial.data()[ii + jj * ra] += static_cast<double>(part32[static_cast<std::size_t>(ii + jj * ra)]);
          } else {
            gemm_raw_f32(Trans::yes, Trans::no, ra, rb, len, x32.data() + fa * n_local + r0, n_local,
                         x32.data() + fb * n_local + r0, n_local, part32.data(), ra);
            for (std::int64_t e = 0; e < ra * rb; ++e) partial.data()[e] += static_cast<double>(part32[static_cast<std::size_t>(e)]);
          }
        }
        if (unscale != 1)
          for (std::int64_t e = 0; e < ra * rb; ++e) partial.data()[e] *= unscale;
        if (diagonal)
          for (std::int64_t jj = 0; jj < rb; ++jj)
            for (std::int64_t ii = jj + 1; ii < ra; ++ii) partial.data()[ii + jj * ra] = partial.data()[jj + ii * ra];
      }
      mpi_check(MPI_Reduce(partial.data(), summed.data(), static_cast<int>(ra * rb), MPI_DOUBLE, MPI_SUM, root, ctx.comm()),
                "MPI_Reduce");
      if (ctx.rank() == root) {
        if (visit) visit(fa, ra, fb, rb, summed.data());
        for (std::int64_t jj = 0; jj < rb; ++jj) {
          const std::int64_t j = fb + jj;
          for (std::int64_t ii = 0; ii < (a == b ? jj : ra); ++ii) {  // the diagonal block: each pair once
            const std::int64_t i = fa + ii;
            const double dot = summed.data()[ii + jj * ra];
            if (!single) {
              const double d = distance(i, j, dot);
              top.offer(i, d, j);
              top.offer(j, d, i);
              continue;
            }
            const double bound = product_bound(i, j, dot);
            const double lo = distance(i, j, dot + bound);
            if (lo > upper.worst(i) && lo > upper.worst(j)) continue;  // far from both points' k nearest
            const double hi = distance(i, j, dot - bound);
            upper.offer(i, hi, j);
            upper.offer(j, hi, i);
            candidates.offer(i, lo, j, upper.worst(i));
            candidates.offer(j, lo, i, upper.worst(j));
          }
        }
      }
      progress.advance();
    }
  }
  progress.finish();
  std::int64_t rechecked = 0;
  if (!single) {
    top.merge(ctx);
  } else {
    x32 = {};
    // Every rank's candidates against the final limits, as unordered pairs (each pair was offered on one rank
    // only), gathered on all ranks in one order.
    upper.merge(ctx);
    std::vector<std::int64_t> mine;  // (low, high) point pairs
    for (std::int64_t i = 0; i < s; ++i) {
      const double limit = upper.sorted(i)[static_cast<std::size_t>(k - 1)].distance;
      for (const Candidates::Entry& c : candidates.list(i))
        if (c.lo <= limit) {
          mine.push_back(std::min(i, c.index));
          mine.push_back(std::max(i, c.index));
        }
    }
    std::vector<PointPair> pairs;
    {
      const auto count = static_cast<std::int64_t>(mine.size());
      if (ctx.any(count > std::numeric_limits<int>::max()))  // every rank throws, none waits in the gather
        throw InternalError(fmt::format("kNN graph: {} candidate pair values on one rank exceed MPI's int counts", ctx.max(count)));
      const int my_count = static_cast<int>(count);
      std::vector<int> counts(static_cast<std::size_t>(ctx.size())), offsets(static_cast<std::size_t>(ctx.size()), 0);
      mpi_check(MPI_Allgather(&my_count, 1, MPI_INT, counts.data(), 1, MPI_INT, ctx.comm()), "MPI_Allgather");
      std::int64_t total = 0;
      for (int r = 0; r < ctx.size(); ++r) {
        if (total > std::numeric_limits<int>::max())
          throw InternalError(fmt::format("kNN graph: {} candidate pair values exceed MPI's int counts", total));
        offsets[static_cast<std::size_t>(r)] = static_cast<int>(total);
        total += counts[static_cast<std::size_t>(r)];
      }
      std::vector<std::int64_t> all(static_cast<std::size_t>(total));
      mpi_check(MPI_Allgatherv(mine.data(), my_count, MPI_INT64_T, all.data(), counts.data(), offsets.data(), MPI_INT64_T,
                               ctx.comm()),
                "MPI_Allgatherv");
      for (std::size_t p = 0; p + 1 < all.size(); p += 2) pairs.emplace_back(all[p], all[p + 1]);
    }
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    rechecked = static_cast<std::int64_t>(pairs.size());
    // Their products in double, chunk of neurons by chunk (chunked_dots).
    std::vector<double> dots = chunked_dots(metric, points, transform, pairs, tuning);
    ctx.allreduce_sum(dots);
    top = TopK(s, k);
    for (std::size_t p = 0; p < pairs.size(); ++p) {
      const auto [i, j] = pairs[p];
      const double d = distance(i, j, dots[p]);
      top.offer(i, d, j);
      top.offer(j, d, i);
    }
    top.sort();
  }

  KnnGraph g;
  g.points = s;
  g.k = k;
  g.rechecked_pairs = rechecked;
  g.index.resize(static_cast<std::size_t>(s * k));
  g.distance.resize(static_cast<std::size_t>(s * k));
  for (std::int64_t i = 0; i < s; ++i)
    for (std::int64_t c = 0; c < k; ++c) {
      const TopK::Entry& e = top.sorted(i)[static_cast<std::size_t>(c)];
      g.index[static_cast<std::size_t>(i * k + c)] = e.index;
      g.distance[static_cast<std::size_t>(i * k + c)] = e.distance;
    }
  return g;
}

}  // namespace popcode
