// Sensorium 2022 / Lurz et al. 2021 folders (one per scan):
//   data/responses/<trial>.npy   neurons                 -> row <trial> of /responses
//   data/images/<trial>.npy      1 x height x width      -> /images (one per distinct frame_image_id)
//   data/behavior, data/pupil_center                     -> ignored (behaviour is not stored in v1 recordings)
//   meta/trials/frame_image_id.npy                       -> stimulus ids (dense, the source id in /image_source_id)
//   meta/trials/tiers.npy        train / validation / test / final_test -> /presentation_tier
//   meta/neurons/cell_motor_coordinates.npy  neurons x 3 -> /neurons/position
// Trials are the files 0.npy .. T-1.npy; the arrays under meta/trials have one entry per trial in that
// order. Repeats of test images are found from frame_image_id and reported.
//
// Reading: each rank reads the response files of its block of trials, then one all-to-all turns trial
// blocks into neuron blocks (partition/redistribute). Images are read by rank 0 (one file per image).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "io/importers/formats.hpp"
#include "io/npy.hpp"
#include "io/recording.hpp"

namespace popcode {
namespace {

namespace fs = std::filesystem;

class SensoriumImporter final : public Importer {
 public:
  SensoriumImporter(std::string path, ImportOptions options) : path_(std::move(path)), options_(std::move(options)) {}

  SourceInfo describe() override {
    SourceInfo info;
    info.format = "sensorium";
    const fs::path root(path_);
    const fs::path resp_dir = root / "data" / "responses";
    if (!fs::is_directory(resp_dir)) throw InputError(fmt::format("{}: no data/responses folder", path_));
    // Trial files must be exactly 0.npy .. T-1.npy.
    std::vector<std::int64_t> trials;
    for (const auto& e : fs::directory_iterator(resp_dir)) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() != ".npy") continue;
      const std::string stem = e.path().stem().string();
      if (stem.empty() || stem.size() > 12 || !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        throw InputError(fmt::format("{}: {} is not named <trial number>.npy", resp_dir.string(), name));
      }
      trials.push_back(std::stoll(stem));
    }
    std::sort(trials.begin(), trials.end());
    const std::int64_t T = static_cast<std::int64_t>(trials.size());
    if (T == 0) throw InputError(fmt::format("{}: no trial files (<trial>.npy)", resp_dir.string()));
    for (std::int64_t i = 0; i < T; ++i) {
      if (trials[static_cast<std::size_t>(i)] != i) {
        throw InputError(fmt::format("{}: trial files are not numbered 0..{} (trial {} is missing)", resp_dir.string(), T - 1, i));
      }
    }
    const NpyArray first = read_npy((resp_dir / "0.npy").string());
    if (first.shape.size() != 1 || first.shape[0] == 0) {
      throw InputError(fmt::format("{}: expected a 1-D array of responses, found shape ({})", (resp_dir / "0.npy").string(),
                                   shape_text(first.shape)));
    }
    const std::int64_t N = first.shape[0];
    auto& L = info.layout;
    L.presentations = T;
    L.neurons = N;
    L.source = fmt::format("{} (Sensorium / Lurz et al. folder)", path_);
    L.units = "as stored (Sensorium responses)";
    info.responses.kind = BulkInfo::row_files;
    info.responses.file = path_;
    info.responses.dataset = "data/responses";
    info.responses.rows = T;
    info.responses.neurons = N;
    info.responses.variable = "data/responses/<trial>.npy";
    for (std::int64_t i = 0; i < T; ++i) info.responses.row_names.push_back(std::to_string(i) + ".npy");
    info.variables.push_back({info.responses.variable, {T, N}, first.dtype, -1, -1, "/responses (one file per trial)"});

    const fs::path trials_dir = root / "meta" / "trials";
    const NpyArray frame = required(trials_dir / "frame_image_id.npy");
    require_same_length(path_, "meta/trials/frame_image_id.npy", static_cast<std::int64_t>(frame.values.size()), "data/responses", T);
    std::vector<std::int64_t> keys(frame.values.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (frame.values[i] != static_cast<double>(static_cast<std::int64_t>(frame.values[i]))) {
        throw InputError(fmt::format("{}: frame_image_id[{}] = {} is not an integer", (trials_dir / "frame_image_id.npy").string(),
                                     i, frame.values[i]));
      }
      keys[i] = static_cast<std::int64_t>(frame.values[i]);
    }
    info.image_source_id = dense_stimulus_ids(keys, {}, info.meta.stimulus_id);
    L.images = static_cast<std::int64_t>(info.image_source_id.size());
    info.variables.push_back({"meta/trials/frame_image_id.npy", frame.shape, frame.dtype, -1, -1, "/stimulus_id (dense) and /image_source_id"});

    const fs::path tiers_file = trials_dir / "tiers.npy";
    if (fs::exists(tiers_file)) {
      const NpyArray tiers = read_npy(tiers_file.string());
      if (tiers.strings.size() != static_cast<std::size_t>(T)) {
        throw InputError(fmt::format("{}: expected {} tier names (strings, one per trial), found shape ({}) of {}",
                                     tiers_file.string(), T, shape_text(tiers.shape), tiers.dtype));
      }
      info.tier_names = {"train", "validation", "test", "final_test"};
      for (const std::string& t : tiers.strings) {
        auto it = std::find(info.tier_names.begin(), info.tier_names.end(), t);
        if (it == info.tier_names.end()) {
          info.tier_names.push_back(t);
          it = info.tier_names.end() - 1;
        }
        info.tier.push_back(static_cast<std::int32_t>(it - info.tier_names.begin()));
      }
      info.variables.push_back({"meta/trials/tiers.npy", tiers.shape, tiers.dtype, -1, -1, "/presentation_tier"});
      // Repeats per tier.
      std::map<std::int32_t, std::map<std::int32_t, int>> shown;
      for (std::int64_t p = 0; p < T; ++p) ++shown[info.tier[static_cast<std::size_t>(p)]][info.meta.stimulus_id[static_cast<std::size_t>(p)]];
      for (const auto& [tier, images] : shown) {
        int most = 0;
        std::int64_t repeated = 0;
        for (const auto& [id, n] : images) {
          most = std::max(most, n);
          repeated += n > 1;
        }
        info.notes.push_back(fmt::format("tier {}: {} trials of {} images, {} of them repeated (up to {}x)",
                                         info.tier_names[static_cast<std::size_t>(tier)],
                                         std::count(info.tier.begin(), info.tier.end(), tier), images.size(), repeated, most));
      }
    } else {
      info.notes.push_back("no meta/trials/tiers.npy: train/validation/test split not stored");
    }

    const fs::path coords = root / "meta" / "neurons" / "cell_motor_coordinates.npy";
    if (fs::exists(coords)) {
      const NpyArray c = read_npy(coords.string());
      if (c.shape.size() != 2 || c.shape[0] != N || c.shape[1] != 3) {
        throw InputError(fmt::format("{}: expected {} x 3 positions, found ({})", coords.string(), N, shape_text(c.shape)));
      }
      info.positions = c.values;
      L.positions = true;
      info.variables.push_back({"meta/neurons/cell_motor_coordinates.npy", c.shape, c.dtype, -1, -1, "/neurons/position"});
    }
    for (const char* ignored : {"behavior", "pupil_center"}) {
      if (fs::is_directory(root / "data" / ignored)) {
        info.variables.push_back({fmt::format("data/{}/<trial>.npy", ignored), {}, "", -1, -1, "ignored: behaviour is not stored in v1 recordings"});
      }
    }
    // Images: one file per distinct image (its first trial).
    const fs::path img_dir = root / "data" / "images";
    if (fs::is_directory(img_dir)) {
      first_trial_.assign(static_cast<std::size_t>(L.images), -1);
      for (std::int64_t p = T - 1; p >= 0; --p) first_trial_[static_cast<std::size_t>(info.meta.stimulus_id[static_cast<std::size_t>(p)])] = p;
      const NpyHeader h = read_npy_header((img_dir / "0.npy").string());
      std::vector<std::int64_t> s = h.shape;
      if (s.size() == 3 && s[0] == 1) s.erase(s.begin());
      if (s.size() != 2 || s[0] == 0 || s[1] == 0) {
        throw InputError(fmt::format("{}: expected an image of 1 x height x width, found ({})", (img_dir / "0.npy").string(),
                                     shape_text(h.shape)));
      }
      L.image_height = s[0];
      L.image_width = s[1];
      height_ = s[0];
      pixels_ = s[0] * s[1];
      info.variables.push_back({"data/images/<trial>.npy", h.shape, h.dtype, -1, -1, "/images (first trial of each image)"});
    }
    return info;
  }

  std::vector<float> load_images() override {
    const fs::path img_dir = fs::path(path_) / "data" / "images";
    std::vector<float> out;
    for (std::int64_t trial : first_trial_) {
      const std::string file = (img_dir / (std::to_string(trial) + ".npy")).string();
      const NpyArray a = read_npy(file);
      // Every image must have the size described (from 0.npy): the collective write expects exactly that.
      if (static_cast<std::int64_t>(a.values.size()) != pixels_) {
        throw InputError(fmt::format("{}: image of shape ({}) is not {} x {} like data/images/0.npy", file, shape_text(a.shape),
                                     height_, pixels_ / std::max<std::int64_t>(height_, 1)));
      }
      out.insert(out.end(), a.values.begin(), a.values.end());
    }
    return out;
  }

 private:
  NpyArray required(const fs::path& file) const {
    if (!fs::exists(file)) throw InputError(fmt::format("{}: missing {}", path_, fs::relative(file, path_).string()));
    return read_npy(file.string());
  }

  std::string path_;
  ImportOptions options_;
  std::vector<std::int64_t> first_trial_;
  std::int64_t height_ = 0, pixels_ = 0;
};

}  // namespace

std::unique_ptr<Importer> make_sensorium_importer(const std::string& path, const ImportOptions& options) {
  return std::make_unique<SensoriumImporter>(path, options);
}

}  // namespace popcode
