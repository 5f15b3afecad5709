#include "solvers/geodesic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <queue>

#include "src/progress.hpp"

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

// Single-source shortest paths (binary heap, lazy deletion), reusing its buffers between sources.
class Dijkstra {
 public:
  explicit Dijkstra(const UndirectedGraph& g)
      : g_(g), dist_(static_cast<std::size_t>(g.points), std::numeric_limits<double>::infinity()) {}

  // Distances from `source`, valid until the next run (infinity when unreachable).
  const std::vector<double>& run(std::int64_t source) {
    for (std::int64_t v : touched_) dist_[static_cast<std::size_t>(v)] = std::numeric_limits<double>::infinity();
    touched_.clear();
    dist_[static_cast<std::size_t>(source)] = 0;
    touched_.push_back(source);
    heap_.push({0.0, source});
    while (!heap_.empty()) {
      const auto [d, v] = heap_.top();
      heap_.pop();
      if (d > dist_[static_cast<std::size_t>(v)]) continue;  // stale entry
      for (std::int64_t e = g_.offset[static_cast<std::size_t>(v)]; e < g_.offset[static_cast<std::size_t>(v + 1)]; ++e) {
        const std::int64_t w = g_.target[static_cast<std::size_t>(e)];
        const double nd = d + g_.weight[static_cast<std::size_t>(e)];
        double& dw = dist_[static_cast<std::size_t>(w)];
        if (nd < dw) {
          if (std::isinf(dw)) touched_.push_back(w);
          dw = nd;
          heap_.push({nd, w});
        }
      }
    }
    return dist_;
  }

 private:
  using Entry = std::pair<double, std::int64_t>;
  const UndirectedGraph& g_;
  std::vector<double> dist_;
  std::vector<std::int64_t> touched_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
};

}  // namespace

GeodesicHistogram geodesic_histogram(const Context& ctx, const UndirectedGraph& graph, int bins, std::int64_t store_bytes) {
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
  std::vector<std::int64_t> sources;
  for (std::int64_t i = 0; i < n; ++i)
    if (h.kept[static_cast<std::size_t>(i)] && i % ctx.size() == ctx.rank()) sources.push_back(i);
  std::int64_t my_pairs = 0;
  for (std::int64_t i : sources)
    for (std::int64_t j = i + 1; j < n; ++j) my_pairs += h.kept[static_cast<std::size_t>(j)];
  h.stored = !ctx.any(my_pairs * 8 > store_bytes);

  Dijkstra dijkstra(graph);
  std::vector<double> stored;
  if (h.stored) stored.reserve(static_cast<std::size_t>(my_pairs));
  // Pass 1: range, moments and the zero pairs. Moments accumulate in long double (a pass sums ~N^2/2 terms).
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  long double sum = 0, sum2 = 0;
  std::int64_t pairs = 0, zero = 0;
  {
    Progress progress(fmt::format("geodesic distances ({} sources over {} ranks)", h.points_kept, ctx.size()),
                      sources.size());
    for (std::int64_t i : sources) {
      const std::vector<double>& d = dijkstra.run(i);
      for (std::int64_t j = i + 1; j < n; ++j) {
        if (!h.kept[static_cast<std::size_t>(j)]) continue;
        const double x = d[static_cast<std::size_t>(j)];
        if (x == 0) {
          ++zero;
          continue;
        }
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        sum += x;
        sum2 += static_cast<long double>(x) * x;
        ++pairs;
        if (h.stored) stored.push_back(x);
      }
      progress.advance();
    }
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
  const auto add = [&](double x) { ++h.counts[static_cast<std::size_t>(numpy_bin_index(x, first, last, h.edges))]; };
  if (h.stored) {
    for (double x : stored) add(x);
  } else {
    Progress progress("geodesic distances, second pass (histogram)", sources.size());
    for (std::int64_t i : sources) {
      const std::vector<double>& d = dijkstra.run(i);
      for (std::int64_t j = i + 1; j < n; ++j)
        if (h.kept[static_cast<std::size_t>(j)] && d[static_cast<std::size_t>(j)] != 0) add(d[static_cast<std::size_t>(j)]);
      progress.advance();
    }
  }
  ctx.allreduce_sum(h.counts);
  return h;
}

}  // namespace popcode
