// Stage `decode-category`: image category from population responses with a cross-validated MLP or linear
// decoder, trained data-parallel on libtorch (solvers/decode_category.hpp). Writes /decode_category.
// Stage `decode-spatial`: the same decoding from the neurons binned by cortical position on a grid (the
// seed article's 63 x 63 x 11), by a 2D CNN with planes as channels or a 3D CNN. Writes /decode_spatial.
// Part of the libtorch module (libpopcode_torch.so); the stages' options are in decoder_stages.cpp.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <optional>

#include "solvers/decode_category.hpp"
#include "solvers/decode_common.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"
#include "src/log.hpp"
#include "src/stages/decoder_runs.hpp"
#include "src/stages/training_stage.hpp"

namespace popcode {
namespace {

// Extra inputs and outputs of decode-spatial around the shared category decoder.
struct SpatialSetup {
  SpatialGrid grid;
  double cell_um[2] = {0, 0};
  std::int64_t occupied = 0, max_per_cell = 0;
};

// Collective. Bins the kept neurons on the grid of the `grid` option and checks the memory it needs.
SpatialSetup bin_neurons(StageRun& run, const PreprocessedData& p) {
  const Context& ctx = run.ctx;
  const OptionValues& o = run.options;
  const Recording& rec = run.workspace.open_recording(ctx);
  const RecordingInfo& info = rec.info();
  const std::vector<std::int64_t> dims = parse_positive_list(o.text("grid"), "grid", "63,63,11", true);
  if (dims.size() != 3) throw UsageError(fmt::format("grid = \"{}\": give columns,rows,planes, e.g. \"63,63,11\"", o.text("grid")), true);
  SpatialSetup s;
  s.grid.columns = dims[0];
  s.grid.rows = dims[1];
  s.grid.planes = dims[2];
  s.grid.kind = o.text("model") == "cnn3d" ? "3d" : "2d";
  s.grid.channels = parse_positive_list(o.text("channels"), "channels", "32,64,64", true);
  if (s.grid.channels.size() != 3) throw UsageError(fmt::format("channels = \"{}\": give three widths, e.g. \"32,64,64\"", o.text("channels")), true);
  ctx.agree(!info.has_positions,
            fmt::format("decode-spatial needs neuron positions (/neurons/position); the recording {} has none", info.path),
            ExitCode::bad_input);
  const std::int64_t cells = s.grid.planes * s.grid.rows * s.grid.columns;

  // Memory: the binned samples, their standardised training copy and one more copy for evaluation, float32.
  const auto samples = static_cast<std::int64_t>(2 * p.image_ids.size());
  const std::int64_t per_rank = (samples + ctx.size() - 1) / ctx.size();
  const double need_mb = 3.0 * 4.0 * static_cast<double>(per_rank) * static_cast<double>(cells) / (1 << 20);
  double limit_mb = o.real("max_memory_mb");
  if (limit_mb <= 0) {
    MPI_Comm node;
    mpi_check(MPI_Comm_split_type(ctx.comm(), MPI_COMM_TYPE_SHARED, ctx.rank(), MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    int on_node = 1;
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
    const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
    limit_mb = ctx.min(0.5 * physical / on_node / (1 << 20));
  }
  ctx.agree(need_mb > limit_mb,
            fmt::format("decode-spatial: the grid {} x {} x {} ({} cells) needs about {:.0f} MiB per rank for {} samples "
                        "per rank, above the limit of {:.0f} MiB (max_memory_mb; 0 = half the node's memory over its "
                        "ranks): use a coarser grid or more ranks",
                        s.grid.columns, s.grid.rows, s.grid.planes, cells, need_mb, per_rank, limit_mb),
            ExitCode::bad_input);

  // Cell of each local kept neuron: x and y binned evenly over the kept neurons' range, the plane from
  // /neurons/plane (or z binned like x and y when the recording has no planes).
  const std::vector<double> pos = rec.read_neuron_rows(ctx, "/neurons/position", p.neuron_index, 3);
  const std::vector<double> plane = info.has_planes ? rec.read_neuron_rows(ctx, "/neurons/plane", p.neuron_index, 1) : std::vector<double>{};
  const auto n = static_cast<std::int64_t>(p.neuron_index.size());
  std::int64_t bad = 0;
  for (const double v : pos) bad += std::isfinite(v) ? 0 : 1;
  bad = ctx.sum(bad);
  ctx.agree(bad > 0, fmt::format("decode-spatial: /neurons/position of {} holds {} NaN or infinite values", info.path, bad),
            ExitCode::bad_input);
  double lo[3], hi[3];
  for (int a = 0; a < 3; ++a) {
    double l = std::numeric_limits<double>::infinity(), h = -l;
    for (std::int64_t i = 0; i < n; ++i) {
      l = std::min(l, pos[static_cast<std::size_t>(3 * i + a)]);
      h = std::max(h, pos[static_cast<std::size_t>(3 * i + a)]);
    }
    lo[a] = ctx.min(l);
    hi[a] = ctx.max(h);
  }
  auto bin = [](double v, double l, double h, std::int64_t k) {
    if (!(h > l)) return std::int64_t{0};
    return std::min<std::int64_t>(k - 1, static_cast<std::int64_t>(std::floor((v - l) / (h - l) * static_cast<double>(k))));
  };
  s.cell_um[0] = (hi[0] - lo[0]) / static_cast<double>(s.grid.columns);
  s.cell_um[1] = (hi[1] - lo[1]) / static_cast<double>(s.grid.rows);
  std::vector<std::int64_t> local(static_cast<std::size_t>(n));
  std::int64_t outside = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = bin(pos[static_cast<std::size_t>(3 * i)], lo[0], hi[0], s.grid.columns);
    const std::int64_t r = bin(pos[static_cast<std::size_t>(3 * i + 1)], lo[1], hi[1], s.grid.rows);
    std::int64_t z = bin(pos[static_cast<std::size_t>(3 * i + 2)], lo[2], hi[2], s.grid.planes);
    if (!plane.empty()) {
      z = static_cast<std::int64_t>(plane[static_cast<std::size_t>(i)]);
      outside += z < 0 || z >= s.grid.planes ? 1 : 0;
    }
    local[static_cast<std::size_t>(i)] = (z * s.grid.rows + r) * s.grid.columns + c;
  }
  outside = ctx.sum(outside);
  ctx.agree(outside > 0,
            fmt::format("decode-spatial: {} neurons of {} lie on a plane (/neurons/plane) outside the grid's {} planes", outside,
                        info.path, s.grid.planes),
            ExitCode::bad_input);
  s.grid.cell = decode::gather_rows(ctx, local);  // kept-neuron order: rank blocks in rank order
  std::vector<std::int64_t> per_cell(static_cast<std::size_t>(cells), 0);
  for (const std::int64_t c : s.grid.cell) ++per_cell[static_cast<std::size_t>(c)];
  for (const std::int64_t v : per_cell) {
    s.occupied += v > 0 ? 1 : 0;
    s.max_per_cell = std::max(s.max_per_cell, v);
  }
  return s;
}

// The body shared by decode-category and decode-spatial (`spatial`: bin on the grid, CNN).
void run_category_decoder(StageRun& run, const std::string& stage, bool spatial) {
  const OptionValues& o = run.options;
  const PreprocessedData& p = *run.workspace.preprocessed;
  std::vector<std::string> names;
  const std::vector<std::int32_t> classes = run.workspace.open_recording(run.ctx).read_class_labels(run.ctx, &names);
  run.ctx.agree(classes.empty(),
                fmt::format("{} needs image class labels (/classes/label and /classes/names); the recording "
                            "{} has none (import them with popcode import --classes, or simulate a recording)",
                            stage, run.workspace.recording_path),
                ExitCode::bad_input);
  run.ctx.agree(p.neurons_total < 1 || p.image_ids.size() < 2,
                fmt::format("{}: the preprocessed recording {} has {} neurons and {} images", stage,
                            run.workspace.recording_path, p.neurons_total, p.image_ids.size()),
                ExitCode::bad_input);
  CategoryDecodeOptions co;
  co.label = stage;
  read_training_options(o, co);
  co.balance = o.text("balance");
  co.normalize = o.text("normalize");
  try {
    co.merge = parse_class_merge(o.text("merge"), names);
  } catch (const UsageError& e) {
    throw UsageError(e.what(), /*collective=*/true);  // the names are replicated: every rank fails alike
  }
  std::optional<SpatialSetup> grid;
  if (spatial) {
    grid = bin_neurons(run, p);
    log::info("{}: {} neurons on a {} x {} x {} grid of {:.1f} x {:.1f} um cells: {} cells occupied, at most {} neurons in one",
              stage, p.neurons_total, grid->grid.columns, grid->grid.rows, grid->grid.planes, grid->cell_um[0], grid->cell_um[1],
              grid->occupied, grid->max_per_cell);
  }
  const StageCheckpoints ck = prepare_checkpoints(run, stage);
  co.checkpoint_prefix = ck.prefix;
  co.checkpoint_identity = ck.identity;
  co.stop_after_steps = ck.stop_after_steps;
  const CategoryDecodeResult r = decode_category(run.ctx, p, classes, names, co, grid ? &grid->grid : nullptr);
  if (r.interrupted) end_interrupted_training(stage, ck, r.signal);
  const auto K = static_cast<std::int64_t>(r.class_names.size());
  log::info("{}: {} ({} parameters, {}): accuracy {:.1f}% (chance {:.1f}%), balanced {:.1f}% (chance "
            "{:.1f}%), {} folds; training {:.1f} s, {:.0f} samples/s",
            stage, co.model == "linear" ? co.model : co.model + " " + o.text("hidden"), r.parameters, r.device_note,
            100 * r.accuracy, 100 * r.chance_accuracy, 100 * r.balanced_accuracy, 100 * r.chance_balanced, co.folds,
            r.train_seconds, r.samples_per_second);

  if (run.results == nullptr) return;
  StageWriter w = run.results->begin_stage(run.ctx, spatial ? "decode_spatial" : "decode_category");
  w.scalar("accuracy", r.accuracy, "fraction of test samples (every repeat of every image, each tested once) decoded correctly");
  w.scalar("balanced_accuracy", r.balanced_accuracy, "mean over classes of the per-class recall");
  w.scalar("chance_accuracy", r.chance_accuracy, "accuracy of always answering the largest class");
  w.scalar("chance_balanced_accuracy", r.chance_balanced, "1 / number of classes");
  w.replicated("recall", r.recall, "recall of each class (class order of the class_names attribute)");
  w.replicated("class_samples", r.class_samples, "test samples of each class");
  w.replicated("confusion", r.confusion, "confusion matrix [true class, predicted class], counts", {K, K});
  w.replicated("sample_class", r.sample_class, "class of each sample: repeat 1 of every image (image_ids order), then repeat 2");
  w.replicated("predicted", r.predicted, "predicted class of each sample (same order)");
  w.replicated("image_ids", p.image_ids, "image id of each preprocessed image");
  w.replicated("image_fold", r.image_fold, "test fold of each image");
  w.replicated("fold_accuracy", r.fold_accuracy, "accuracy on each fold's test images");
  w.replicated("fold_balanced_accuracy", r.fold_balanced, "balanced accuracy on each fold's test images");
  w.replicated("curves/train_loss", r.train_loss, "weighted mean training loss [fold, epoch] (NaN after early stopping)",
               {co.folds, r.epochs});
  w.replicated("curves/validation_balanced_accuracy", r.validation_metric,
               "balanced accuracy on the validation images [fold, epoch] (NaN after early stopping or without validation)",
               {co.folds, r.epochs});
  w.replicated("curves/best_epoch", r.best_epoch, "epoch (0-based) whose parameters were kept, per fold (-1: the last)");
  w.attribute("class_names", r.class_names);
  w.attribute("model", co.model);
  w.attribute("normalize", co.normalize);
  w.attribute("hidden", o.text("hidden"));
  w.attribute("parameters", r.parameters);
  w.attribute("device", r.device_note);
  w.attribute("gradient_reduction", r.backend);
  w.attribute("train_seconds", r.train_seconds);
  w.attribute("samples_per_second", r.samples_per_second);
  w.attribute("ranks", static_cast<std::int64_t>(run.ctx.size()));
  if (grid) {
    w.replicated("neuron_cell", grid->grid.cell, "grid cell of each kept neuron, (plane * rows + row) * columns + column");
    w.attribute("grid", std::vector<std::int64_t>{grid->grid.columns, grid->grid.rows, grid->grid.planes});
    w.attribute("cell_um", std::vector<double>{grid->cell_um[0], grid->cell_um[1]});
    w.attribute("occupied_cells", grid->occupied);
    w.attribute("channels", o.text("channels"));
  }
  w.commit(run.identity, o.canonical());
  remove_checkpoints(run, ck, co.folds);
}

}  // namespace

void run_decode_category(StageRun& run) { run_category_decoder(run, "decode-category", false); }
void run_decode_spatial(StageRun& run) { run_category_decoder(run, "decode-spatial", true); }

}  // namespace popcode
