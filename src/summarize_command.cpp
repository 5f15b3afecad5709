// `popcode summarize RESULTS.h5... [--out summary.csv]`: one CSV row per results file, for nightly runs
// and array jobs: the spectrum, the job's wall time, then one or two headline numbers per analysis stage
// (kHeadlines). Exits 3 when any file is unreadable or not complete (its row says why).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "io/h5.hpp"
#include "src/cli.hpp"
#include "src/log.hpp"

namespace popcode {
namespace {

std::string csv_field(std::string s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The headline number of each analysis stage, after the spectrum's columns: (column, dataset). A stage's
// columns stay empty unless its group is complete.
struct Headline {
  const char* column;
  const char* dataset;
};
constexpr Headline kHeadlines[] = {
    {"distances_d_prime", "/distances/zscored/d_prime"},
    {"distances_auc", "/distances/zscored/auc"},
    {"identity_accuracy", "/decode_identity/accuracy"},
    {"dimension_d_fit_k9", "/dimension/k9/d_fit"},
    {"dimension_two_nn", "/dimension/two_nn/dimension"},
    {"spont_d_fit_k9", "/dimension_spont/k9/d_fit"},
    {"cluster_repeat_agreement", "/cluster/repeat_agreement"},
    {"cluster_ari_classes", "/cluster/ari_classes"},
    {"rf_rrr_normalized_ve", "/rf/rrr/normalized_variance_explained"},
    {"rf_ridge_normalized_ve", "/rf/ridge/normalized_variance_explained"},
    {"category_balanced_accuracy", "/decode_category/balanced_accuracy"},
};
constexpr std::size_t kFixedColumns = 11;

std::string header() {
  std::string h = "file,status,recording,neurons,stimuli,alpha,fit_first,fit_last,mean_signal_fraction,truth_alpha,wall_s";
  for (const Headline& c : kHeadlines) h += std::string(",") + c.column;
  return h + "\n";
}

// The row for one file; `complete` tells whether the job finished.
std::string summary_row(const std::string& path, bool* complete) {
  std::vector<std::string> f(kFixedColumns + std::size(kHeadlines));
  f[0] = path;
  *complete = false;
  try {
    h5::File file = h5::File::open(path, h5::Access::read_only, ExitCode::bad_input);
    const auto attr = [&](const std::string& obj, const std::string& name) {
      return h5::has_attribute(file, obj, name) ? h5::read_string_attribute(file, obj, name) : std::string();
    };
    f[1] = attr("/", "popcode_status");
    *complete = f[1] == "complete";
    f[2] = attr("/preprocess", "recording");
    if (h5::exists(file, "/spectrum/alpha") && h5::has_attribute(file, "/spectrum", "complete")) {
      f[3] = std::to_string(h5::read_int_attribute(file, "/spectrum", "neurons"));
      f[4] = std::to_string(h5::read_int_attribute(file, "/spectrum", "stimuli"));
      f[5] = fmt::format("{:.10g}", h5::read_scalar(file, "/spectrum/alpha"));
      const auto range = h5::read_all<std::int64_t>(file, "/spectrum/fit_range");
      f[6] = std::to_string(range.at(0));
      f[7] = std::to_string(range.at(1));
      f[8] = fmt::format("{:.6g}", h5::read_double_attribute(file, "/spectrum", "mean_signal_fraction"));
    }
    if (h5::exists(file, "/truth/alpha")) f[9] = fmt::format("{:.10g}", h5::read_scalar(file, "/truth/alpha"));
    if (h5::exists(file, "/provenance/stages")) {
      double wall = 0;
      for (const auto& stage : h5::list(file, "/provenance/stages")) {
        wall += h5::read_double_attribute(file, "/provenance/stages/" + stage, "wall_s");
      }
      f[10] = fmt::format("{:.2f}", wall);
    }
    for (std::size_t i = 0; i < std::size(kHeadlines); ++i) {
      const std::string dataset = kHeadlines[i].dataset;
      const std::string group = dataset.substr(0, dataset.find('/', 1));
      if (!h5::exists(file, dataset) || !h5::has_attribute(file, group, "complete")) continue;
      f[kFixedColumns + i] = fmt::format("{:.10g}", h5::read_scalar(file, dataset));
    }
  } catch (const Error& e) {
    f[1] = fmt::format("unreadable: {}", e.what());
  }
  std::string row;
  for (std::size_t i = 0; i < f.size(); ++i) row += (i ? "," : "") + csv_field(f[i]);
  return row;
}

}  // namespace

int summarize_command(const Context& ctx, const std::vector<std::string>& files, const std::string& out) {
  int incomplete = 0;
  if (ctx.root()) {
    std::string text = header();
    for (const auto& path : files) {
      bool complete = false;
      text += summary_row(path, &complete) + "\n";
      if (!complete) ++incomplete;
    }
    if (out.empty()) {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream(out) << text;
      log::info("summarize: {} results files, {} not complete -> {}", files.size(), incomplete, out);
    }
  }
  const auto total = ctx.sum(static_cast<std::int64_t>(incomplete));
  if (total > 0) throw InputError(fmt::format("{} of {} results files are missing or not complete", total, files.size()), true);
  return 0;
}

}  // namespace popcode
