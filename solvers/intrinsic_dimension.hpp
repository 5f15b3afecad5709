#pragma once
// Intrinsic-dimension estimators on a kNN graph and its geodesic-distance histogram.
//
// - Granata & Carnevale 2016 (Sci. Rep. 6:31377), step for step as the authors' ID_fit.py
//   (dgranata/Intrinsic-Dimension) with its defaults (no -M/-n options): r_max from the histogram peak,
//   consistency checks against the mean and the largest kNN edge, two quadratic fits of log counts around
//   the peak (np.polyfit) that refine r_max and sigma, the fit window (max(r_max - 2 sigma - dx/2,
//   r_NN_max), r_max + dx/4], and on it, with x = r / r_max and y = log count - log peak:
//     R    from y = -R^2/2 (x - 1)^2 (Gaussian);
//     Dfit from y = (D - 1) log sin(pi x / 2) (hypersphere), i.e. D = 1 + sum(y L) / sum(L^2);
//     Dmin = the integer D in 1..dmin_max whose hypersphere curve has the smallest RMSD.
//   The anchor fits the two one-parameter models with scipy's curve_fit; their least-squares optima have
//   the closed forms used here (curve_fit reaches them to its tolerance). Where the anchor prints an error
//   and stops, popcode throws InputError with the same diagnosis; its warnings are returned.
// - TwoNN (Facco et al. 2017): mu_i = r2 / r1; the fit of -log(1 - F(mu)) = d log mu through the origin on
//   the smallest 90% of the sorted mu (F = i / N), and the maximum-likelihood form (N - 1) / sum log mu.
// - Levina-Bickel MLE: d_i = (k - 1) / sum_{j<k} log(R_k / R_j), combined by the harmonic mean (the
//   MacKay-Ghahramani correction), k = 20.
// - Participation ratio (sum lambda)^2 / sum lambda^2 of the covariance over points, from its Gram
//   matrix by tiles (GramTileVisitor): trace and squared Frobenius norm of the centred Gram H G H.
// All of these work on replicated data (the histogram, the k-lists); only the participation ratio
// accumulates over the distributed tiles.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/knn.hpp"

namespace popcode {

struct GcFit {
  double r_max = 0, sigma = 0, r_min = 0, r_fit_end = 0, r_nn_max = 0;
  double ratio = 0;                  // R of the Gaussian model (NaN when its fit is negative)
  double d_fit = 0;
  std::int64_t d_min = 0;
  std::vector<double> rmsd;          // RMSD of each integer D = 1..dmin_max
  // The fitted window, for plotting: x = r / r_max, y = log p(r) / p(r_max), and the three model curves.
  std::vector<double> x, y, gaussian, hypersphere_fit, hypersphere_dmin;
  std::vector<std::string> warnings;
};

// `counts` and `edges` as np.histogram; `mean` and `sd` of the distances; `r_nn_max` the largest kNN edge.
GcFit granata_carnevale_fit(const std::vector<std::int64_t>& counts, const std::vector<double>& edges, double mean,
                            double sd, double r_nn_max, int dmin_max = 25);

struct TwoNnEstimate {
  double d_fit = 0, d_mle = 0;
  std::int64_t points_used = 0, points_dropped = 0;  // dropped: r1 == 0 (duplicates)
};
TwoNnEstimate two_nn(const KnnGraph& g);

struct MleEstimate {
  double d = 0;
  std::int64_t k = 0, points_used = 0, points_dropped = 0;  // dropped: a zero or repeated distance makes d_i undefined
};
MleEstimate levina_bickel(const KnnGraph& g, std::int64_t k = 20);

// Accumulates the participation ratio of the points' covariance from the Gram blocks of knn_graph (the
// upper triangle, mirrored): with r_i the mean of row i of G and m the mean of r, the centred Gram
// K = H G H has  trace K = trace G - S m  and  |K|_F^2 = |G|_F^2 - 2 S sum r_i^2 + S^2 m^2.
// The points are those of the metric's space (for euclidean the raw points, which knn_graph centres over
// points first, so the identity does not cancel; unit-norm for cosine, centred unit-norm for correlation).
class ParticipationRatio {
 public:
  explicit ParticipationRatio(std::int64_t points) : row_sum_(static_cast<std::size_t>(points), 0.0) {}
  GramBlockVisitor visitor();
  // Collective: the ratio over all blocks (each block visited on one rank).
  double finish(const Context& ctx);

 private:
  std::vector<double> row_sum_;
  double trace_ = 0, frobenius2_ = 0;
};

}  // namespace popcode
