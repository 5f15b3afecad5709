#include "solvers/geodesic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <immintrin.h>
#include <limits>
#include <map>

#include "src/progress.hpp"
#include "src/rng.hpp"

namespace popcode {

UndirectedGraph undirected_knn_graph(const KnnGraph& g, std::int64_t k) {
  if (k < 1 || k > g.k) throw InternalError(fmt::format("graph of {} neighbours from a {}-neighbour list", k, g.k));
  UndirectedGraph u;
  u.points = g.points;
  // Each undirected edge once, keyed (min, max), with the smaller weight of its directions.
  std::vector<std::map<std::int64_t, double>> adj(static_cast<std::size_t>(g.points));
  for (std::int64_t i = 0; i < g.points; ++i)
    for (std::int64_t c = 0; c < k; ++c) {
      const std::int64_t j = g.neighbour(i, c);
      const double w = g.dist(i, c);
      u.max_edge = std::max(u.max_edge, w);
      for (auto [a, b] : {std::pair{i, j}, std::pair{j, i}}) {
        auto [it, fresh] = adj[static_cast<std::size_t>(a)].emplace(b, w);
        if (!fresh) it->second = std::min(it->second, w);
      }
    }
  u.offset.assign(static_cast<std::size_t>(g.points + 1), 0);
  for (std::int64_t i = 0; i < g.points; ++i)
    u.offset[static_cast<std::size_t>(i + 1)] = u.offset[static_cast<std::size_t>(i)] +
                                                 static_cast<std::int64_t>(adj[static_cast<std::size_t>(i)].size());
  u.target.reserve(static_cast<std::size_t>(u.offset.back()));
  u.weight.reserve(static_cast<std::size_t>(u.offset.back()));
  for (const auto& a : adj)
    for (const auto& [j, w] : a) {
      u.target.push_back(j);
      u.weight.push_back(w);
    }
  return u;
}

Components connected_components(const UndirectedGraph& g) {
  Components c;
  c.label.assign(static_cast<std::size_t>(g.points), -1);
  std::vector<std::int64_t> stack;
  for (std::int64_t start = 0; start < g.points; ++start) {
    if (c.label[static_cast<std::size_t>(start)] >= 0) continue;
    const auto id = static_cast<std::int64_t>(c.size.size());
    std::int64_t count = 0;
    stack.push_back(start);
    c.label[static_cast<std::size_t>(start)] = id;
    while (!stack.empty()) {
      const std::int64_t v = stack.back();
      stack.pop_back();
      ++count;
      for (std::int64_t e = g.offset[static_cast<std::size_t>(v)]; e < g.offset[static_cast<std::size_t>(v + 1)]; ++e) {
        const std::int64_t w = g.target[static_cast<std::size_t>(e)];
        if (c.label[static_cast<std::size_t>(w)] < 0) {
          c.label[static_cast<std::size_t>(w)] = id;
          stack.push_back(w);
        }
      }
    }
    c.size.push_back(count);
  }
  return c;
}

std::vector<double> numpy_bin_edges(double first, double last, int bins) {
  // np.linspace(first, last, bins + 1): i * step + first, the last one set to `last`.
  std::vector<double> e(static_cast<std::size_t>(bins + 1));
  const double step = (last - first) / bins;
  for (int i = 0; i <= bins; ++i) e[static_cast<std::size_t>(i)] = i * step + first;
  e.back() = last;
  return e;
}

int numpy_bin_index(double x, double first, double last, const std::vector<double>& edges) {
  // np.histogram's fast path for equal bins: scale, truncate, then correct against the edges.
  const int bins = static_cast<int>(edges.size()) - 1;
  const double norm = bins / (last - first);
  auto i = static_cast<int>((x - first) * norm);
  if (i == bins) --i;
  if (x < edges[static_cast<std::size_t>(i)]) --i;
  if (x >= edges[static_cast<std::size_t>(i + 1)] && i != bins - 1) ++i;
  return i;
}

namespace {

// Single-source shortest paths by buckets of distance (Dial's algorithm with real weights, label-correcting):
// a point whose distance improves goes into bucket floor(distance / width), never below the bucket being
// emptied; buckets are emptied in increasing order, each until nothing is left in it, a popped entry whose
// distance has since improved is skipped, and every improvement is queued again. Whatever the width, the
// search ends with dist[v] <= fl(dist[u] + w(u, v)) along every edge, each dist[v] the rounded sum along some
// path; as rounding is monotone, that makes each dist[v] the smallest rounded path sum, which is what
// Dijkstra's algorithm (and scipy's) returns. The width only sets the speed: at most the smallest edge weight,
// no point is processed twice (each bucket's points are final when it is reached); wider, there are fewer
// buckets but points may be processed again. Buffers are reused between sources.
//
// Measured on the 9-neighbour cosine graph of 5,600 points of a 5-dimensional manifold in 64 dimensions (all
// sources, 1 rank, with the histogram): 4.2 s with a binary heap, 3.1 s with a radix heap (keys: the bits of
// the distances) and the branch-free relaxation, 1.8-2.2 s with buckets of width between the smallest edge
// weight and a third of the median one. On the dimension benchmark's graph (5,600 points of 10,000 neurons,
// cosine, k = 9, 1 rank): 1.6-1.8 s in the input's numbering, 1.5 s in the breadth-first numbering below
// (three alternating runs each, same histogram). Eight edges at a time with AVX-512 gathers and scatters
// took 1.7-2.0 s on this machine's AMD cores and was not kept.
//
// Sixteen sources at once (run_batch, on AVX-512 machines): every point holds its sixteen distances in two
// 64-byte vectors, and processing a point relaxes each edge for all sixteen sources with one vector addition,
// comparison and masked store per vector. A point is queued when any of its distances improves, keyed by the
// smallest improved one, and the label-correcting argument above holds lane by lane, so every distance is the
// same bits as a search from that source alone. With sources near one another in the graph (consecutive in the
// breadth-first numbering) a point is processed about 1.7 times per batch instead of 16 times. On the dimension
// benchmark's graph (all sources, 1 rank, log lines of the pass): 1.4-2.0 s one source at a time, 0.9-1.0 s
// with 8 lanes, 0.8 s with 16 and with 32 (three runs each). A prototype outside popcode took 1.3 s
// instead of 0.8 s (8 lanes) with the sources batched in the input's numbering, hence the breadth-first order.
// With sparse sources the batches are far apart and the gain goes: 2,000 sampled sources on a 40,000-point
// graph took 7.2-8.4 s in every variant, one source at a time included. Finding a point's key in registers
// (it was stored and read back lane by lane) and prefetching its neighbours' rows before relaxing them: 0.78-0.83
// -> 0.68-0.73 s on the benchmark graph (session 18, four alternating runs); with the shuffle constants and
// the key array held outside the loops, 0.64-0.67 s.
class BucketSearch {
 public:
  // `width`: the bucket width (> 0); `buckets`: how many buckets at most (larger indices go in the last one,
  // which the label-correcting argument above still covers).
  BucketSearch(const UndirectedGraph& g, double width, std::size_t buckets)
      : dist_(static_cast<std::size_t>(g.points), std::numeric_limits<double>::infinity()),
        out_(static_cast<std::size_t>(g.points)),
        inv_width_(1 / width),
        buckets_(buckets) {
    if (g.points > std::numeric_limits<std::uint32_t>::max())
      throw InternalError(fmt::format("geodesic distances: {} points do not fit 32-bit indices", g.points));
    if (g.target.size() > std::numeric_limits<std::uint32_t>::max())
      throw InternalError(fmt::format("geodesic distances: {} edges do not fit 32-bit offsets", g.target.size()));
    const auto n = static_cast<std::size_t>(g.points);
    // Breadth-first numbering, component after component: neighbours get nearby numbers, so a point's
    // edges and its neighbours' distances share cache lines with those of the points searched just before.
    std::vector<std::uint32_t> old_of_new;
    old_of_new.reserve(n);
    new_of_old_.assign(n, std::numeric_limits<std::uint32_t>::max());
    for (std::size_t start = 0; start < n; ++start) {
      if (new_of_old_[start] != std::numeric_limits<std::uint32_t>::max()) continue;
      new_of_old_[start] = static_cast<std::uint32_t>(old_of_new.size());
      old_of_new.push_back(static_cast<std::uint32_t>(start));
      for (std::size_t q = new_of_old_[start]; q < old_of_new.size(); ++q) {
        const std::uint32_t v = old_of_new[q];
        for (std::int64_t e = g.offset[v]; e < g.offset[v + 1]; ++e) {
          const auto t = static_cast<std::size_t>(g.target[static_cast<std::size_t>(e)]);
          if (new_of_old_[t] != std::numeric_limits<std::uint32_t>::max()) continue;
          new_of_old_[t] = static_cast<std::uint32_t>(old_of_new.size());
          old_of_new.push_back(static_cast<std::uint32_t>(t));
        }
      }
    }
    offset_.reserve(n + 1);
    offset_.push_back(0);
    weight_.reserve(g.target.size());
    target_.reserve(g.target.size());
    std::vector<std::int64_t> seen_from(n, -1);  // the last point listing each target
    for (std::size_t nv = 0; nv < n; ++nv) {
      const std::uint32_t v = old_of_new[nv];
      for (auto e = static_cast<std::size_t>(g.offset[v]); e < static_cast<std::size_t>(g.offset[v + 1]); ++e) {
        const std::int64_t t = g.target[e];
        if (!(g.weight[e] >= 0) || std::isinf(g.weight[e]))
          throw InternalError(fmt::format("geodesic distances: edge weight {} is not a finite non-negative number", g.weight[e]));
        if (t == v || seen_from[static_cast<std::size_t>(t)] == v)
          throw InternalError(fmt::format("geodesic distances: point {} lists point {} twice or as its own neighbour", v, t));
        seen_from[static_cast<std::size_t>(t)] = v;
        weight_.push_back(g.weight[e]);
        target_.push_back(new_of_old_[static_cast<std::size_t>(t)]);
      }
      offset_.push_back(static_cast<std::uint32_t>(target_.size()));
    }
  }

  // Distances from `source`, valid until the next run (infinity when unreachable).
  const std::vector<double>& run(std::int64_t source) {
    std::fill(dist_.begin(), dist_.end(), std::numeric_limits<double>::infinity());
    const std::uint32_t from = new_of_old_[static_cast<std::size_t>(source)];
    dist_[from] = 0;
    buckets_[0].push_back({0.0, from});
    std::size_t highest = 0;  // the highest bucket in use
    for (std::size_t c = 0; c <= highest; ++c) {
      std::vector<Item>& bucket = buckets_[c];
      while (!bucket.empty()) {
        const Item top = bucket.back();
        bucket.pop_back();
        const double d = top.distance;
        if (d > dist_[top.point]) continue;  // improved since it was queued
        // Without a branch on the comparison, which no predictor guesses: every edge stores the smaller
        // distance and appends its target to the improved list, whose length grows only when it improved.
        // A point's neighbours are distinct, so each improved target is queued once with its new distance.
        const auto first = static_cast<std::size_t>(offset_[top.point]);
        const auto last = static_cast<std::size_t>(offset_[top.point + 1]);
        improved_.resize(std::max(improved_.size(), last - first));
        std::size_t count = 0;
        for (std::size_t e = first; e < last; ++e) {
          const std::uint32_t t = target_[e];
          const double nd = d + weight_[e];
          const double dw = dist_[t];
          const bool better = nd < dw;
          dist_[t] = better ? nd : dw;
          improved_[count] = t;
          count += better ? 1 : 0;
        }
        for (std::size_t i = 0; i < count; ++i) {
          const std::uint32_t t = improved_[i];
          const double nd = dist_[t];
          const std::size_t b = std::clamp(bucket_of(nd), c, buckets_.size() - 1);
          buckets_[b].push_back({nd, t});
          highest = std::max(highest, b);
        }
      }
    }
    for (std::size_t v = 0; v < out_.size(); ++v) out_[v] = dist_[new_of_old_[v]];
    return out_;
  }

  // Whether run_batch can run here (AVX-512F); otherwise callers search one source at a time.
  static bool batch_supported() { return __builtin_cpu_supports("avx512f"); }
  static constexpr int kVectors = 2;  // 8-lane vectors a point
  static constexpr int kLanes = 8 * kVectors;  // sources a search

  // Distances from up to kLanes distinct sources at once; lane l's distance to point v (caller's numbering) is
  // then batch_distance(l, v), valid until the next run or run_batch.
  __attribute__((target("avx512f"))) void run_batch(const std::int64_t* sources, int count) {
    const std::size_t n = new_of_old_.size();
    batch_.assign(kLanes * n, std::numeric_limits<double>::infinity());
    key_.assign(n, std::numeric_limits<double>::infinity());  // the key a point is queued with; infinity: not queued
    for (int l = 0; l < count; ++l) {
      const std::uint32_t from = new_of_old_[static_cast<std::size_t>(sources[l])];
      batch_[kLanes * from + static_cast<std::size_t>(l)] = 0;
      if (key_[from] > 0) {
        key_[from] = 0;
        buckets_[0].push_back({0.0, from});
      }
    }
    double* dist = batch_.data();
    double* keys = key_.data();  // in a local: the queue's appends would make the member be read again
    // The smallest improved distance of an edge is found in registers: the improved lanes (others infinity),
    // folded in halves three times. GCC vector operations, as GCC 12 warns (-Wmaybe-uninitialized) on the
    // min and shuffle intrinsics' undefined pass-through operand. No distance is NaN, so `<` is a minimum.
    typedef long long Index8 __attribute__((vector_size(64)));
    const Index8 halves = {4, 5, 6, 7, 0, 1, 2, 3}, quarters = {2, 3, 0, 1, 6, 7, 4, 5}, pairs = {1, 0, 3, 2, 5, 4, 7, 6};
    const __m512d inf = _mm512_set1_pd(std::numeric_limits<double>::infinity());
    std::size_t highest = 0;
    for (std::size_t c = 0; c <= highest; ++c) {
      std::vector<Item>& bucket = buckets_[c];
      while (!bucket.empty()) {
        const Item top = bucket.back();
        bucket.pop_back();
        if (top.distance != keys[top.point]) continue;  // queued again with a smaller key since
        keys[top.point] = std::numeric_limits<double>::infinity();
        __m512d from[kVectors];
        for (int v = 0; v < kVectors; ++v) from[v] = _mm512_loadu_pd(dist + kLanes * static_cast<std::size_t>(top.point) + 8 * v);
        const auto first = static_cast<std::size_t>(offset_[top.point]);
        const auto last = static_cast<std::size_t>(offset_[top.point + 1]);
        // The neighbours' distance rows are scattered over more than the L2 cache: their loads are issued
        // before the first is needed.
        for (std::size_t e = first; e < last; ++e) {
          const double* to = dist + kLanes * static_cast<std::size_t>(target_[e]);
          for (int v = 0; v < kVectors; ++v) _mm_prefetch(reinterpret_cast<const char*>(to + 8 * v), _MM_HINT_T0);
        }
        for (std::size_t e = first; e < last; ++e) {
          const std::uint32_t t = target_[e];
          double* to = dist + kLanes * static_cast<std::size_t>(t);
          const __m512d w = _mm512_set1_pd(weight_[e]);
          __m512d nd[kVectors];
          __mmask8 better[kVectors];
          std::uint32_t improved = 0;  // bit l: lane l improved
          for (int v = 0; v < kVectors; ++v) {
            nd[v] = _mm512_add_pd(from[v], w);
            better[v] = _mm512_cmp_pd_mask(nd[v], _mm512_loadu_pd(to + 8 * v), _CMP_LT_OQ);
            improved |= std::uint32_t{better[v]} << (8 * v);
          }
          if (improved == 0) continue;
          __m512d m = inf;
          for (int v = 0; v < kVectors; ++v) {
            _mm512_mask_storeu_pd(to + 8 * v, better[v], nd[v]);
            const __m512d lane = _mm512_mask_blend_pd(better[v], inf, nd[v]);
            m = lane < m ? lane : m;
          }
          const auto fold = [&m](const Index8& swap) __attribute__((always_inline)) {
            const __m512d other = __builtin_shuffle(m, swap);
            m = other < m ? other : m;
          };
          fold(halves);
          fold(quarters);
          fold(pairs);
          const double key = m[0];
          if (key < keys[t]) {
            keys[t] = key;
            const std::size_t b = std::clamp(bucket_of(key), c, buckets_.size() - 1);
            buckets_[b].push_back({key, t});
            highest = std::max(highest, b);
          }
        }
      }
    }
  }
  double batch_distance(int lane, std::size_t v) const { return batch_[kLanes * new_of_old_[v] + static_cast<std::size_t>(lane)]; }
  // The search's position of a point (for ordering sources so that a batch's are near one another).
  std::uint32_t position(std::int64_t v) const { return new_of_old_[static_cast<std::size_t>(v)]; }

 private:
  struct Item {
    double distance;
    std::uint32_t point;
  };
  std::size_t bucket_of(double d) const {
    const double b = d * inv_width_;
    return b < static_cast<double>(buckets_.size()) ? static_cast<std::size_t>(b) : buckets_.size() - 1;
  }
  std::vector<std::uint32_t> offset_;  // the graph in breadth-first numbering
  // The edges as two arrays, 12 bytes an edge; targets fit 32 bits because the graph is replicated on every
  // rank. The dimension benchmark's 9-neighbour graph (5,600 points, 90,948 directed edges: mean degree 16.2,
  // as most neighbour relations are not mutual) takes 1.1 MB, about a 1 MiB L2 cache. 16-bit targets, which
  // would bring it under, made no measurable difference there (1.5 s either way).
  std::vector<double> weight_;
  std::vector<std::uint32_t> target_;
  std::vector<std::uint32_t> improved_;
  std::vector<std::uint32_t> new_of_old_;
  std::vector<double> dist_;  // in the search's numbering
  std::vector<double> out_;   // in the caller's
  std::vector<double> batch_;  // run_batch: kLanes distances a point, in the search's numbering
  std::vector<double> key_;
  double inv_width_;
  std::vector<std::vector<Item>> buckets_;
};

// The bucket width for BucketSearch: the smallest positive edge weight, but no narrower than an upper bound of
// the source component's diameter over `buckets`. The bound is twice the eccentricity of `source` in hops
// (breadth-first) times the largest weight.
double bucket_width(const UndirectedGraph& g, std::int64_t source, std::size_t buckets) {
  double smallest = std::numeric_limits<double>::infinity(), largest = 0;
  for (const double w : g.weight) {
    if (w > 0) smallest = std::min(smallest, w);
    largest = std::max(largest, w);
  }
  if (largest == 0) return 1;  // every distance is 0: one bucket
  std::vector<std::int64_t> hops(static_cast<std::size_t>(g.points), -1), queue{source};
  hops[static_cast<std::size_t>(source)] = 0;
  std::int64_t eccentricity = 0;
  for (std::size_t q = 0; q < queue.size(); ++q) {
    const std::int64_t v = queue[q];
    for (std::int64_t e = g.offset[static_cast<std::size_t>(v)]; e < g.offset[static_cast<std::size_t>(v + 1)]; ++e) {
      const std::int64_t t = g.target[static_cast<std::size_t>(e)];
      if (hops[static_cast<std::size_t>(t)] < 0) {
        hops[static_cast<std::size_t>(t)] = hops[static_cast<std::size_t>(v)] + 1;
        eccentricity = std::max(eccentricity, hops[static_cast<std::size_t>(t)]);
        queue.push_back(t);
      }
    }
  }
  const double diameter_bound = 2 * static_cast<double>(eccentricity) * largest;
  return std::max(smallest, diameter_bound / static_cast<double>(buckets));
}

constexpr std::size_t kBuckets = 4096;

// The positions of `sources` (distinct points) in an order whose consecutive runs of `batch` are near one
// another, for the batched search. Sparse (sampled) sources consecutive in the breadth-first numbering can lie
// far apart on one breadth-first shell, and then the sixteen fronts of a batch do not overlap. Here each point
// joins the cell of its nearest source in hops (one breadth-first search from all of them), two sources are
// neighbours when an edge joins their cells, and each batch is grown breadth first over that neighbour graph,
// from the first source (in the given order) not yet taken, through taken ones, until it has `batch` sources;
// a batch that exhausts its component goes on from the next source not taken. Only the order changes, not the
// sources. A batch's search may cross cells already taken, so the grouping is O(m^2 / batch) cell visits at
// worst for m sources, against the m searches of O(N k) each that follow. On 2,000 sampled sources of a
// 40,000-point 5-d Gaussian cloud (k = 9, euclidean, 1 rank; session
// 18, three alternating runs): 5.9-6.2 s in breadth-first order, 5.3-5.5 s grouped, the same histogram.
std::vector<std::size_t> batched_order(const UndirectedGraph& g, const std::vector<std::int64_t>& sources, std::size_t batch) {
  const std::size_t m = sources.size();
  std::vector<std::int64_t> cell(static_cast<std::size_t>(g.points), -1);
  std::vector<std::int64_t> queue;
  queue.reserve(static_cast<std::size_t>(g.points));
  for (std::size_t q = 0; q < m; ++q) {
    cell[static_cast<std::size_t>(sources[q])] = static_cast<std::int64_t>(q);
    queue.push_back(sources[q]);
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> touching;  // (cell, cell) across an edge
  for (std::size_t at = 0; at < queue.size(); ++at) {
    const std::int64_t v = queue[at];
    for (std::int64_t e = g.offset[static_cast<std::size_t>(v)]; e < g.offset[static_cast<std::size_t>(v + 1)]; ++e) {
      const auto t = static_cast<std::size_t>(g.target[static_cast<std::size_t>(e)]);
      if (cell[t] < 0) {
        cell[t] = cell[static_cast<std::size_t>(v)];
        queue.push_back(static_cast<std::int64_t>(t));
      } else if (cell[t] != cell[static_cast<std::size_t>(v)]) {
        touching.emplace_back(cell[static_cast<std::size_t>(v)], cell[t]);
      }
    }
  }
  std::sort(touching.begin(), touching.end());
  touching.erase(std::unique(touching.begin(), touching.end()), touching.end());
  std::vector<std::size_t> first(m + 1, 0);  // the neighbour graph, by cell: touching[first[c] .. first[c + 1])
  for (const auto& [a, b] : touching) ++first[static_cast<std::size_t>(a) + 1];
  for (std::size_t c = 0; c < m; ++c) first[c + 1] += first[c];

  std::vector<std::size_t> order;
  order.reserve(m);
  std::vector<char> taken(m, 0);
  std::vector<std::int64_t> seen(m, -1);  // the batch whose search last reached each cell
  std::vector<std::size_t> frontier;
  std::size_t next = 0;  // the first source perhaps not taken
  for (std::int64_t b = 0; order.size() < m; ++b) {
    const std::size_t end = std::min(m, order.size() + batch);
    while (order.size() < end) {
      while (taken[next]) ++next;
      frontier.assign(1, next);
      seen[next] = b;
      for (std::size_t at = 0; at < frontier.size() && order.size() < end; ++at) {
        const std::size_t c = frontier[at];
        if (!taken[c]) {
          taken[c] = 1;
          order.push_back(c);
        }
        for (std::size_t e = first[c]; e < first[c + 1]; ++e) {
          const auto t = static_cast<std::size_t>(touching[e].second);
          if (seen[t] != b) {
            seen[t] = b;
            frontier.push_back(t);
          }
        }
      }
    }
  }
  return order;
}

}  // namespace

std::vector<double> geodesic_distances(const UndirectedGraph& g, std::int64_t source, double width) {
  if (!(width > 0) || source < 0 || source >= g.points)
    throw InternalError(fmt::format("geodesic distances: source {} of {} points, bucket width {}", source, g.points, width));
  BucketSearch search(g, width, kBuckets + 1);
  return search.run(source);
}

bool geodesic_batch_supported() { return BucketSearch::batch_supported(); }

GeodesicHistogram geodesic_histogram(const Context& ctx, const UndirectedGraph& graph, int bins, std::int64_t store_bytes,
                                     const GeodesicSampling& sampling, GeodesicSearch search) {
  GeodesicHistogram h;
  const std::int64_t n = graph.points;
  const Components comp = connected_components(graph);
  h.kept.assign(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < n; ++i)
    if (2 * (comp.size[static_cast<std::size_t>(comp.label[static_cast<std::size_t>(i)])] - 1) > n) {
      h.kept[static_cast<std::size_t>(i)] = 1;
      ++h.points_kept;
    }
  if (h.points_kept == 0) {
    const std::int64_t largest = *std::max_element(comp.size.begin(), comp.size.end());
    throw InputError(
        fmt::format("the neighbour graph is highly disconnected: its largest component has {} of {} points, and the "
                    "Granata-Carnevale procedure needs one point connected to more than half of them; increase k",
                    largest, n),
        /*collective=*/true);  // replicated data: every rank throws it
  }
  // The sources, in point order (exact) or draw order (sampled: kept points sorted by a random key).
  std::vector<std::int64_t> order;
  for (std::int64_t i = 0; i < n; ++i)
    if (h.kept[static_cast<std::size_t>(i)]) order.push_back(i);
  h.sampled = sampling.sources > 0 && sampling.sources < h.points_kept;
  const int groups = h.sampled ? std::max(1, sampling.groups) : 0;
  if (h.sampled) {
    const CounterRng rng(sampling.seed);
    std::vector<std::pair<std::uint64_t, std::int64_t>> keyed;
    for (const std::int64_t i : order) {
      const auto w = rng.bits(Stream::geodesic_sources, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i >> 32));
      keyed.emplace_back((std::uint64_t{w[0]} << 32) | w[1], i);
    }
    std::sort(keyed.begin(), keyed.end());
    order.resize(static_cast<std::size_t>(sampling.sources));
    for (std::size_t q = 0; q < order.size(); ++q) order[q] = keyed[q].second;
  }
  h.sources = static_cast<std::int64_t>(order.size());
  if (h.sampled) h.source_points = order;
  std::vector<std::int64_t> sources, group;  // this rank's sources and their groups
  for (std::size_t q = 0; q < order.size(); ++q)
    if (static_cast<int>(q % static_cast<std::size_t>(ctx.size())) == ctx.rank()) {
      sources.push_back(order[q]);
      group.push_back(groups > 0 ? static_cast<std::int64_t>(q % static_cast<std::size_t>(groups)) : 0);
    }
  // The pairs of source i: j > i (exact, each unordered pair once) or every j != i (sampled).
  const auto first_partner = [&](std::int64_t i) { return h.sampled ? std::int64_t{0} : i + 1; };
  const auto partner = [&](std::int64_t i, std::int64_t j) { return j != i && h.kept[static_cast<std::size_t>(j)]; };
  std::int64_t my_pairs = 0;
  for (std::int64_t i : sources)
    for (std::int64_t j = first_partner(i); j < n; ++j) my_pairs += partner(i, j) ? 1 : 0;
  h.stored = !ctx.any(my_pairs * 8 > store_bytes);

  BucketSearch dijkstra(graph, bucket_width(graph, order.front(), kBuckets), kBuckets + 1);
  // This rank's sources in the search's (breadth-first) numbering, so that a batch's sixteen are near one
  // another (all points as sources: consecutive numbers are neighbours); sampled sources are then grouped
  // into batches of nearby ones (batched_order). The sums below run in this order.
  const auto reorder = [&](const std::vector<std::size_t>& perm) {
    std::vector<std::int64_t> s2(sources.size()), g2(group.size());
    for (std::size_t q = 0; q < perm.size(); ++q) {
      s2[q] = sources[perm[q]];
      g2[q] = group[perm[q]];
    }
    sources.swap(s2);
    group.swap(g2);
  };
  {
    std::vector<std::size_t> perm(sources.size());
    for (std::size_t q = 0; q < perm.size(); ++q) perm[q] = q;
    std::stable_sort(perm.begin(), perm.end(),
                     [&](std::size_t a, std::size_t b) { return dijkstra.position(sources[a]) < dijkstra.position(sources[b]); });
    reorder(perm);
  }
  if (h.sampled)  // in every mode, so that the sums' order, and so their bits, do not depend on the machine
    reorder(batched_order(graph, sources, BucketSearch::kLanes));
  // visit(s, distance) for each of this rank's sources in turn, distance(j) its distance to point j: sixteen
  // sources a search where AVX-512 is available, else one.
  const bool batched = search == GeodesicSearch::batched_where_supported && BucketSearch::batch_supported();
  const auto each_source = [&](Progress& progress, const auto& visit) {
    if (!batched) {
      for (std::size_t s = 0; s < sources.size(); ++s) {
        const std::vector<double>& d = dijkstra.run(sources[s]);
        visit(s, [&d](std::int64_t j) { return d[static_cast<std::size_t>(j)]; });
        progress.advance();
      }
      return;
    }
    for (std::size_t s0 = 0; s0 < sources.size(); s0 += BucketSearch::kLanes) {
      const int count = static_cast<int>(std::min<std::size_t>(BucketSearch::kLanes, sources.size() - s0));
      dijkstra.run_batch(sources.data() + s0, count);
      for (int l = 0; l < count; ++l) {
        visit(s0 + static_cast<std::size_t>(l), [&dijkstra, l](std::int64_t j) { return dijkstra.batch_distance(l, static_cast<std::size_t>(j)); });
        progress.advance();
      }
    }
  };
  std::vector<double> stored;
  std::vector<std::size_t> stored_end;  // end of each source's distances in `stored`
  if (h.stored) stored.reserve(static_cast<std::size_t>(my_pairs));
  // Pass 1: range, moments and the zero pairs. Moments accumulate in long double (a pass sums ~N^2/2 terms).
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  long double sum = 0, sum2 = 0;
  std::int64_t pairs = 0, zero = 0;
  // Per group (sampled): sum, sum of squares and pairs, for the groups' means and s.d.
  std::vector<double> gmom(static_cast<std::size_t>(3 * groups), 0.0);
  {
    Progress progress(fmt::format("geodesic distances ({} {}sources over {} rank{})", h.sources, h.sampled ? "sampled " : "",
                                  ctx.size(), ctx.size() == 1 ? "" : "s"),
                      sources.size());
    each_source(progress, [&](std::size_t s, const auto& d) {
      const std::int64_t i = sources[s];
      long double gs = 0, gs2 = 0;
      std::int64_t gp = 0;
      for (std::int64_t j = first_partner(i); j < n; ++j) {
        if (!partner(i, j)) continue;
        const double x = d(j);
        if (!std::isfinite(x))  // both points are in the kept component: a search that left one unreached is a bug
          throw InternalError(fmt::format("geodesic distances: connected points {} and {} at distance {}", i, j, x));
        if (x == 0) {
          ++zero;
          continue;
        }
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        gs += x;
        gs2 += static_cast<long double>(x) * x;
        ++gp;
        if (h.stored) stored.push_back(x);
      }
      sum += gs;
      sum2 += gs2;
      pairs += gp;
      if (groups > 0) {
        const auto g = static_cast<std::size_t>(group[s]);
        gmom[3 * g] += static_cast<double>(gs);
        gmom[3 * g + 1] += static_cast<double>(gs2);
        gmom[3 * g + 2] += static_cast<double>(gp);
      }
      if (h.stored) stored_end.push_back(stored.size());
    });
  }
  h.min = ctx.min(lo);
  h.max = ctx.max(hi);
  std::int64_t counts2[2] = {pairs, zero};
  ctx.allreduce_sum(std::span<std::int64_t>(counts2, 2));
  h.pairs = counts2[0];
  h.zero_pairs = counts2[1];
  double moments[2] = {static_cast<double>(sum), static_cast<double>(sum2)};
  ctx.allreduce_sum(std::span<double>(moments, 2));
  if (h.pairs == 0)
    throw InputError(fmt::format("no pair of the {} connected points has a nonzero geodesic distance", h.points_kept), true);
  h.mean = moments[0] / static_cast<double>(h.pairs);
  h.std = std::sqrt(std::max(0.0, moments[1] / static_cast<double>(h.pairs) - h.mean * h.mean));

  // np.histogram widens an empty range by 0.5 on each side.
  double first = h.min, last = h.max;
  if (first == last) {
    first -= 0.5;
    last += 0.5;
  }
  h.edges = numpy_bin_edges(first, last, bins);
  h.counts.assign(static_cast<std::size_t>(bins), 0);
  const auto nb = static_cast<std::size_t>(bins);
  // Sampled: each source's own counts, for the spread over sources and the group histograms.
  std::vector<std::int64_t> own(h.sampled ? nb : 0, 0);
  std::vector<double> csum(own.size(), 0.0), csum2(own.size(), 0.0);
  h.group_counts.assign(static_cast<std::size_t>(groups) * nb, 0);
  const auto add = [&](double x) {
    const auto b = static_cast<std::size_t>(numpy_bin_index(x, first, last, h.edges));
    ++h.counts[b];
    if (h.sampled) ++own[b];
  };
  const auto source_done = [&](std::size_t s) {
    if (!h.sampled) return;
    for (std::size_t b = 0; b < nb; ++b) {
      const auto c = static_cast<double>(own[b]);
      csum[b] += c;
      csum2[b] += c * c;
      h.group_counts[static_cast<std::size_t>(group[s]) * nb + b] += own[b];
      own[b] = 0;
    }
  };
  if (h.stored) {
    std::size_t at = 0;
    for (std::size_t s = 0; s < sources.size(); ++s) {
      for (; at < stored_end[s]; ++at) add(stored[at]);
      source_done(s);
    }
  } else {
    Progress progress("geodesic distances, second pass (histogram)", sources.size());
    each_source(progress, [&](std::size_t s, const auto& d) {
      const std::int64_t i = sources[s];
      for (std::int64_t j = first_partner(i); j < n; ++j)
        if (partner(i, j) && d(j) != 0) add(d(j));
      source_done(s);
    });
  }
  ctx.allreduce_sum(h.counts);
  if (h.sampled) {
    ctx.allreduce_sum(csum);
    ctx.allreduce_sum(csum2);
    ctx.allreduce_sum(h.group_counts);
    ctx.allreduce_sum(gmom);
    const auto m = static_cast<double>(h.sources), kept = static_cast<double>(h.points_kept);
    h.scale = kept / (2 * m);
    h.count_se.assign(nb, 0.0);
    for (std::size_t b = 0; b < nb; ++b) {
      const double mean = csum[b] / m;
      const double var = m > 1 ? std::max(0.0, (csum2[b] - m * mean * mean) / (m - 1)) : std::numeric_limits<double>::quiet_NaN();
      h.count_se[b] = (kept / 2) * std::sqrt(var / m) * std::sqrt(1 - m / kept);
    }
    for (int g = 0; g < groups; ++g) {
      const double gp = gmom[3 * static_cast<std::size_t>(g) + 2];
      const double gm = gp > 0 ? gmom[3 * static_cast<std::size_t>(g)] / gp : std::numeric_limits<double>::quiet_NaN();
      h.group_mean.push_back(gm);
      h.group_std.push_back(gp > 0 ? std::sqrt(std::max(0.0, gmom[3 * static_cast<std::size_t>(g) + 1] / gp - gm * gm))
                                   : std::numeric_limits<double>::quiet_NaN());
    }
  }
  return h;
}

}  // namespace popcode
