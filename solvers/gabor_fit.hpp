#pragma once
// Gabor receptive-field fits: each neuron's best simple + complex Gabor model over a parameter grid.
//
// What it computes (Stringer et al. 2019; anchor MouseLand stringer-pachitariu-et-al-2018b fitGaborRFs.m with
// gaborFITRect.m, estimateRFs.m, gridGabor.m and gaborReduced.m):
//   images     each image minus the grand mean over all images and pixels (the anchor: (img - 128) / 64; the
//              models below are positively homogeneous in the image scale, so only the zero point matters, and
//              popcode takes the measured gray as for the linear RFs). Train = the first floor(S/2) images,
//              test = the next floor(S/2), as the anchor.
//   responses  the mean of the two repeats minus each neuron's train mean b; single repeats minus b for the
//              normalised test variance explained.
//   filter     G(x, y) = exp(-(x'^2 / s1^2 + y'^2 / s2^2) / 2) cos(2 pi f x' + psi), x' = (x - x0) cos t +
//              (y - y0) sin t, y' = -(x - x0) sin t + (y - y0) cos t, s1 = size, s2 = size x ratio; x is the
//              1-based row and y the 1-based column (the anchor's gridGabor convention).
//   scan       (estimateRFs) a blob filter (f 0.01, size 10, ratio 1, t 0, psi 0; here x is the column and y
//              the row, as estimateRFs builds its grid) centred on every pixel; each neuron's centre is the pixel
//              whose train responses correlate most with its own in absolute value (Pearson); the candidate
//              centres are the population's median row + row_offsets x median column + col_offsets.
//   model      at each candidate centre and for each Gabor of the grid (frequencies x sizes x ratios x
//              orientations k pi / n x phases k 2 pi / n, index in MATLAB ndgrid order: frequency fastest,
//              phase slowest), g1 = relu(G_psi . x) and g2 = sqrt((G_psi . x)^2 + (G_psi+pi/2 . x)^2) over the
//              train images; c1, c2 from the 2 x 2 normal equations of the centred g1, g2 against the response,
//              each clipped at 0 separately (as the anchor, not a joint nonnegative fit); vexp = c1 y1 + c2 y2;
//              the neuron's best Gabor at this centre is the first maximum of vexp; it replaces the neuron's
//              model when its train variance explained 1 - mean((pred - r)^2) / mean(r^2) beats the best so far
//              (strictly; centres in the anchor's loop order, rows outer). Test: the same model on the test
//              images with the train means of g1, g2.
//   metrics    per neuron train and test variance explained; the population's normalised test variance
//              explained 1 - sum(res1 res2) / sum(r1 r2) over neurons and test images (the anchor's vvr).
// Deliberate differences: float64 (the anchor runs in single precision on the GPU); a Gabor whose normal
// equations are singular (vexp not finite) is skipped, where the anchor's max would pass over NaN only.
// Cost saving, exact in exact arithmetic: cos(a + psi) = cos(psi) cos(a) - sin(psi) sin(a), so the image
// products are formed once per centre for phase 0 and pi/2 of each (frequency, size, ratio, orientation)
// ("base" filters); every phase's simple response is cos(psi) R0 + sin(psi) R90, and the complex response
// sqrt(R0^2 + R90^2) is the same for all phases (R90 = G_pi/2 . x = -sin(a) . x).
//
// Distribution and memory: neurons are split over ranks (the preprocessing blocks); the images are
// replicated. At each centre the base filters are split over ranks, each rank forms its share of the image
// products (P pixels x S images per filter), and one allgather replicates them (2 x bases x S doubles); every
// rank then fits its own neurons against all Gabors (bases x train doubles per phase, and bases x n_local for
// the products with the responses). The scan's blob responses (P x train, in chunks of 256 pixels) are
// replicated work. Memory per rank: the P x S images, 4 bases x S doubles of responses, 2 bases x n_local
// products, and n_local x S/2 test predictions.
#include <cstdint>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

struct GaborGrid {
  std::vector<double> frequencies{0.01, 0.03, 0.05, 0.07, 0.09, 0.11, 0.13};  // cycles per pixel
  std::vector<double> sizes{3, 6, 9, 12};                                     // pixels
  std::vector<double> ratios{1, 1.5, 2, 2.5};
  std::int64_t orientations = 8;  // k pi / n, k = 0 .. n - 1
  std::int64_t phases = 8;        // k 2 pi / n
  std::vector<double> row_offsets{-15, -10, -5, 0, 5, 10, 15};
  std::vector<double> col_offsets{-20, -15, -10, -5, 0, 5, 10, 15, 20};
  std::int64_t bases() const {
    return static_cast<std::int64_t>(frequencies.size() * sizes.size() * ratios.size()) * orientations;
  }
  std::int64_t count() const { return bases() * phases; }
};

struct GaborParameters {
  double frequency = 0, size = 0, ratio = 0, orientation = 0, phase = 0;
};
// The parameters of Gabor `index` (MATLAB ndgrid order: frequency fastest, phase slowest).
GaborParameters gabor_parameters(const GaborGrid& grid, std::int64_t index);

struct GaborFitResult {
  std::int64_t train = 0, test = 0;
  std::vector<double> grid_rows, grid_cols;   // candidate centres, 0-based pixels (replicated)
  // Per local neuron:
  std::vector<double> scan_row, scan_col;     // estimateRFs centre, 0-based
  std::vector<double> centre_row, centre_col; // centre of the kept model, 0-based (NaN: no model)
  std::vector<std::int64_t> index;            // kept Gabor (-1: none)
  std::vector<double> c_simple, c_complex;    // clipped coefficients
  std::vector<double> b_simple, b_complex;    // train means of g1 and g2 of the kept Gabor
  std::vector<double> ve_train, ve_test;
  double normalized_ve = 0;                   // population, on the test images (anchor's vvr)
};

// Collective. `repeats` is this rank's preprocessed block (n_local x 2S); `images` the replicated raw images
// (P x S, row-major height x width pixels per column, stimulus order of the block). InputError (exit 3) when
// there are fewer than 2 train images or the grid is empty.
GaborFitResult fit_gabors(const Context& ctx, const Matrix& repeats, const Matrix& images, std::int64_t height,
                          std::int64_t width, const GaborGrid& grid);

}  // namespace popcode
