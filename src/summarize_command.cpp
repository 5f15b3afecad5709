// `popcode summarize RESULTS.h5... [--out summary.csv]`: one CSV row per results file, for nightly runs
// and array jobs. Exits 3 when any file is unreadable or not complete (its row says why).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>

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

// The row for one file; `complete` tells whether the job finished.
std::string summary_row(const std::string& path, bool* complete) {
  std::vector<std::string> f(11);
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
    std::string text = "file,status,recording,neurons,stimuli,alpha,fit_first,fit_last,mean_signal_fraction,truth_alpha,wall_s\n";
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
