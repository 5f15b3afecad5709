#pragma once
// Image category decoded from population responses (Stringer et al. 2019's category MLP; the linear
// softmax decoder as baseline), with k-fold cross-validation grouped by image.
//
// Samples: every repeat of every preprocessed image (2 S population vectors); label: the image's class,
// optionally after merging classes. Folds: images, stratified by class (each class's images are shuffled
// and dealt to the folds in turn), so the two repeats of an image are always in the same fold and no image
// is both trained on and tested. Within the training images of a fold, `validation_fraction` of them
// (again whole images, stratified) are held out for early stopping and the plateau schedule on balanced
// accuracy. Inputs are z-scored per neuron with the training samples' mean and s.d. (ddof 0; constant
// neurons become 0), or with normalize = "gray" by the neuron's gray-screen responses instead: (r - mean of
// its gray-screen responses) / (their s.d.), in the preprocessed units. The seed article reports 22.1% ->
// 23.8% "after normalising by gray-screen responses" without saying how; dividing by (or subtracting) a
// per-neuron gray-screen mean alone would be undone by the per-neuron z-score, so this option replaces the
// z-score rather than preceding it.
//
// Class imbalance: "weight" weights each training sample by n / (K n_c) in the cross-entropy (as
// torch.nn.CrossEntropyLoss(weight=...)), "oversample" repeats each class's training samples up to the
// largest class, "none" leaves the data alone.
//
// Reported over the test folds together: accuracy, balanced accuracy (mean per-class recall), per-class
// recall, the K x K confusion matrix (rows true class, columns predicted), the chance levels (majority
// class for accuracy, 1/K for balanced accuracy), and per fold the loss and validation curves.
// `shuffle_labels` permutes the labels over images first (a control that must decode at chance).
//
// Distribution: the preprocessed neuron blocks are redistributed to sample blocks (MPI_Alltoallv), so each
// rank holds every neuron of about 2 S / P samples, in float32 for the network; training is data-parallel
// over those blocks (solvers/train/trainer.hpp). Memory per rank: 2 S N / P floats, plus the model
// replica with its optimizer state.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/preprocess.hpp"
#include "src/context.hpp"

namespace popcode {

struct CategoryDecodeOptions {
  std::string model = "mlp";                 // mlp | linear
  std::vector<std::int64_t> hidden = {512, 128};
  double dropout = 0.5;
  bool batchnorm = true;
  std::int64_t folds = 5;
  double validation_fraction = 0.1;
  std::string balance = "weight";            // weight | oversample | none
  std::string normalize = "zscore";          // zscore (training statistics) | gray (gray-screen mean and s.d.)
  bool shuffle_labels = false;
  std::vector<std::vector<std::int32_t>> merge;  // groups of class indices merged into one class each
  std::int64_t epochs = 40;
  std::int64_t batch_size = 128;
  std::string optimizer = "adam";
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  std::int64_t early_stopping_patience = 8;
  std::string device = "auto";
  std::uint64_t seed = 0;
  std::string checkpoint_prefix;             // "<prefix>fold<k>.pt" per fold; empty: no checkpoints
  std::string checkpoint_identity;
  std::int64_t stop_after_steps = 0;         // test hook: stop (with a checkpoint) after this many steps of a fold
  std::string label = "decode-category";     // stage name in log lines
};

struct CategoryDecodeResult {
  std::vector<std::string> class_names;      // after merging
  std::vector<std::int32_t> sample_class;    // 2 S: class of each sample (repeat 1 of every image, then repeat 2)
  std::vector<std::int32_t> predicted;       // 2 S
  std::vector<std::int32_t> image_fold;      // S
  std::vector<std::int64_t> confusion;       // K x K, row-major
  std::vector<double> recall;                // K
  std::vector<std::int64_t> class_samples;   // K
  double accuracy = 0, balanced_accuracy = 0, chance_accuracy = 0, chance_balanced = 0;
  std::vector<double> fold_accuracy, fold_balanced;
  std::int64_t epochs = 0;                   // columns of the curves
  std::vector<double> train_loss, validation_metric;  // folds x epochs, NaN past a fold's last epoch
  std::vector<std::int64_t> best_epoch;      // per fold (0-based)
  std::int64_t parameters = 0;
  double train_seconds = 0, samples_per_second = 0;
  std::string backend, device_note;
  bool interrupted = false;
  int signal = 0;
};

// decode-spatial: the kept neurons binned on a grid of planes x rows x columns cells, each sample's cell value
// the sum of its neurons' responses, decoded by a CNN (solvers/nets/cnn.hpp) instead of the MLP.
struct SpatialGrid {
  std::int64_t planes = 11, rows = 63, columns = 63;
  std::vector<std::int64_t> cell;            // per kept neuron (kept-neuron order): (plane * rows + row) * columns + column
  std::string kind = "2d";                   // 2d | 3d
  std::vector<std::int64_t> channels = {32, 64, 64};
};

// Parses "0,1;5,6,7" (class names or indices) against `names`. Throws UsageError naming the key.
std::vector<std::vector<std::int32_t>> parse_class_merge(const std::string& text, const std::vector<std::string>& names);

// Collective. `image_class[i]` is the class of recording image i (every image_ids entry must have one),
// `class_names` the recording's names. With `grid`, the inputs are the binned grid and the network a CNN
// (options.hidden is then its dense head).
CategoryDecodeResult decode_category(const Context& ctx, const PreprocessedData& data,
                                     const std::vector<std::int32_t>& image_class,
                                     const std::vector<std::string>& class_names, const CategoryDecodeOptions& options,
                                     const SpatialGrid* grid = nullptr);

}  // namespace popcode
