#include "src/runner.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "io/results.hpp"
#include "src/log.hpp"
#include "src/progress.hpp"
#include "src/provenance.hpp"
#include "src/timing.hpp"

namespace popcode {

std::string digest(const std::string& text) {
  // FNV-1a, 64 bit: identities only need to change when their inputs change.
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

namespace {

std::string file_fingerprint(const Context& ctx, const std::string& path) {
  std::string fp;
  if (ctx.root()) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      fp = fmt::format("{}:{}", std::filesystem::file_size(path, ec),
                       std::filesystem::last_write_time(path, ec).time_since_epoch().count());
    }
  }
  return ctx.broadcast(fp);
}

}  // namespace

void run_job(const Context& ctx, const Job& job, const RunOptions& opt) {
  const bool with_results = !job.results.empty();
  Workspace ws;
  ws.recording_path = job.recording;
  const std::size_t n = job.stages.size();

  // Identities, in order: each stage's digest covers its options, the identities of the stages it needs,
  // and the recording it reads (the simulate stage's identity stands for the recording it writes).
  std::vector<std::string> identity(n);
  const std::string input_fingerprint = file_fingerprint(ctx, job.recording);  // empty when absent
  std::string recording_identity = input_fingerprint;
  for (std::size_t i = 0; i < n; ++i) {
    const StageSpec& spec = *job.stages[i].spec;
    std::string text = spec.name + "\n" + job.stages[i].options.canonical();
    for (const auto& need : spec.needs)
      for (std::size_t j = 0; j < i; ++j)
        if (job.stages[j].spec->name == need) text += identity[j];
    if (spec.produces_recording) {
      text += job.recording;
      identity[i] = digest(text);
      recording_identity = identity[i];
    } else {
      identity[i] = digest(text + "recording " + recording_identity);
    }
  }

  ResultsFile results;
  if (with_results) {
    results = ResultsFile::open(ctx, job.results, opt.force);
    results.set_status(ctx, "running");
  }
  // Which stages run: not complete with this identity, or needed in memory by a later stage that runs.
  std::vector<bool> runs(n, true);
  std::vector<std::string> reason(n);
  const bool recording_present = !input_fingerprint.empty();
  for (std::size_t k = n; k-- > 0;) {
    const StageSpec& spec = *job.stages[k].spec;
    const bool complete = with_results && results.complete_identity(spec.name) == identity[k];
    bool needed = false;
    for (std::size_t j = k + 1; j < n; ++j)
      for (const auto& need : job.stages[j].spec->needs)
        if (runs[j] && need == spec.name) needed = true;
    if (complete && spec.produces_recording && !recording_present) {
      reason[k] = "its recording is missing";
    } else if (complete && needed) {
      reason[k] = "a later stage needs its data in memory";
    } else if (complete) {
      runs[k] = false;
    }
  }

  Provenance provenance(ctx, job, opt.command_line);
  try {
    for (std::size_t i = 0; i < n; ++i) {
      const JobStage& js = job.stages[i];
      const std::string started = timestamp_utc();
      phase_clock().reset();
      reset_peak_rss();
      if (!runs[i]) {
        log::info("stage {}: complete in {}, skipped (--force recomputes)", js.spec->name, job.results);
        provenance.record(ctx, js.spec->name, "skipped: complete in results", started);
        continue;
      }
      log::info("stage {}: start{}", js.spec->name, reason[i].empty() ? "" : fmt::format(" (re-run: {})", reason[i]));
      StageRun run{ctx, js.options, ws, with_results ? &results : nullptr, identity[i]};
      js.spec->run(run);
      provenance.record(ctx, js.spec->name, "ran", started);
      const StageRecord& rec = provenance.stages().back();
      const double wall = *std::max_element(rec.wall.begin(), rec.wall.end());
      const double rss = *std::max_element(rec.peak_rss_bytes.begin(), rec.peak_rss_bytes.end());
      log::info("stage {}: done in {} (max over ranks: compute {:.2f} s, comm {:.2f} s, I/O {:.2f} s; peak memory {:.0f} MiB per rank)",
                js.spec->name, format_duration(wall), *std::max_element(rec.compute.begin(), rec.compute.end()),
                *std::max_element(rec.comm.begin(), rec.comm.end()), *std::max_element(rec.io.begin(), rec.io.end()),
                rss / (1 << 20));
      if (with_results) provenance.write(ctx, job.results, "running");
    }
  } catch (const Error& e) {
    // Every rank is here when the error was agreed; record the failure, then let main exit.
    if (e.collective() && with_results) {
      try {
        results.set_status(ctx, fmt::format("failed: {}", e.what()));
        provenance.write(ctx, job.results, "failed");
      } catch (const Error&) {
      }
    }
    throw;
  }
  if (with_results) {
    provenance.write(ctx, job.results, "complete");
    results.set_status(ctx, "complete");
    log::info("results: {}", job.results);
  }
}

}  // namespace popcode
