#include "src/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "src/job.hpp"
#include "src/log.hpp"
#include "src/provenance.hpp"
#include "src/runner.hpp"
#include "src/version.hpp"

namespace popcode {
namespace {

constexpr const char* kExitCodes =
    "Exit codes: 0 success; 1 internal error; 2 usage or job error (bad flag, unknown or mistyped job key,\n"
    "missing input); 3 bad input data (malformed or truncated recording, Inf/NaN refused, inconsistent shapes).";

std::string dashed(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

struct StageCommand {
  CLI::App* app = nullptr;
  const StageSpec* spec = nullptr;
  std::map<std::string, std::string> values;  // option key -> text given
  std::string in, out;
  std::vector<std::string> sets;
  bool force = false;
};

}  // namespace

int run_cli(const Context& ctx, int argc, char** argv) {
  CLI::App app{fmt::format("popcode {}: reanalysis of large neural population recordings on MPI clusters.\n"
                           "Run a job file, or one stage on its own. Every command runs under mpirun/srun.",
                           version_string()),
               "popcode"};
  app.footer(kExitCodes);
  app.require_subcommand(1);
  bool quiet = false, verbose = false;
  app.add_flag("-q,--quiet", quiet, "only warnings and errors");
  app.add_flag("-v,--verbose", verbose, "more detail");
  app.set_version_flag("--version", fmt::format("popcode {} ({})", version_string(), git_revision()));

  std::string job_file, out_override;
  std::vector<std::string> sets;
  bool force = false, check_only = false;
  CLI::App* run = app.add_subcommand("run", "run a job file (TOML): its stages in order, one results file");
  run->add_option("job", job_file, "job file, e.g. jobs/demo.toml")->required();
  run->add_option("--out", out_override, "results file (overrides job.results)");
  run->add_option("--set", sets, "override an option: stage.key=value (repeatable)");
  run->add_flag("--force", force, "recompute every stage (start a fresh results file)");
  run->add_flag("--check", check_only, "validate the job and print its effective form, then stop");

  std::vector<StageCommand> stage_commands;
  stage_commands.reserve(stage_registry().size());
  for (const StageSpec& spec : stage_registry()) {
    StageCommand& sc = stage_commands.emplace_back();
    sc.spec = &spec;
    sc.app = app.add_subcommand(spec.name, spec.summary);
    if (spec.produces_recording) {
      sc.app->add_option("--out", sc.out, "recording file to write")->required();
    } else {
      sc.app->add_option("--in", sc.in, "recording file")->required();
      sc.app->add_option("--out", sc.out, "results file")->required();
      sc.app->add_option("--set", sc.sets, "override an option of this or an earlier stage: stage.key=value");
      sc.app->add_flag("--force", sc.force, "recompute even if the results file has this stage");
    }
    for (const OptionSpec& o : spec.options) {
      sc.app->add_option_function<std::string>("--" + dashed(o.key), [&sc, key = o.key](const std::string& v) { sc.values[key] = v; },
                                              fmt::format("{} ({}, default {})", o.help, type_name(o.type), to_text(o.default_value)));
    }
  }

  std::string spectrum_spec, range;
  CLI::App* pl = app.add_subcommand("powerlaw", "fit the power law of Stringer et al. 2019 to a spectrum; prints alpha=<value>");
  pl->add_option("spectrum", spectrum_spec, "file.h5:/dataset or file.npy (1-D)")->required();
  pl->add_option("--range", range, "A:B, 1-based PCs inclusive (default 11:min(500, K-2))");
  std::vector<std::string> summary_files;
  std::string summary_out;
  CLI::App* summarize = app.add_subcommand("summarize", "one CSV row per results file (status, alpha, wall time, each stage's headline numbers); exit 3 if any is incomplete");
  summarize->add_option("results", summary_files, "results files")->required();
  summarize->add_option("--out", summary_out, "CSV file (default: standard output)");
  CLI::App* info = app.add_subcommand("info", "print versions and build configuration");

  // Importers: the same source options for import and inspect.
  ImportOptions import_options;
  std::string import_source, import_out;
  bool inspect_json = false;
  CLI::App* import = app.add_subcommand("import", "convert a MAT, .npy/.npz, Sensorium folder or NWB file into a popcode recording");
  CLI::App* inspect = app.add_subcommand("inspect", "show what a file holds and what popcode would import from it");
  for (CLI::App* sub : {import, inspect}) {
    sub->add_option("source", import_source, "file or folder to read")->required();
    sub->add_option("--format", import_options.format, "auto, mat, npy, npz, sensorium or nwb (default: auto)");
    sub->add_option("--images", import_options.images, "MAT: images file (images_natimg2800_all.mat)");
    sub->add_option("--classes", import_options.classes, "MAT: class file (stimuli_class_assignment*.mat)");
    sub->add_option("--responses", import_options.responses, "variable/member/field holding the responses");
    sub->add_option("--stimulus", import_options.stimulus, "variable/member/column holding each presentation's stimulus");
    sub->add_option("--neurons-axis", import_options.neurons_axis, "NumPy: 0 (neurons x presentations), 1, or auto");
    sub->add_option("--gray", import_options.gray, "MAT istim: max (largest id is the gray screen) or none");
    sub->add_option("--nwb-series", import_options.nwb_series, "NWB: HDF5 path of the RoiResponseSeries");
    sub->add_option("--nwb-table", import_options.nwb_table, "NWB: HDF5 path of the presentation table");
  }
  import->add_option("--out", import_out, "recording file to write (must not exist)")->required();
  inspect->add_flag("--json", inspect_json, "print JSON instead of text");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = e.get_exit_code();
    if (ctx.root()) app.exit(e);
    return code == 0 ? 0 : static_cast<int>(ExitCode::usage);
  }
  log::configure(ctx.rank(), ctx.size(), quiet ? log::Level::quiet : verbose ? log::Level::verbose : log::Level::normal);
  const std::string cmdline = command_line(argc, argv);

  if (info->parsed()) {
    if (ctx.root())
      for (const auto& line : build_description()) std::printf("%s\n", line.c_str());
    return 0;
  }
  if (pl->parsed()) return powerlaw_command(ctx, spectrum_spec, range);
  if (summarize->parsed()) return summarize_command(ctx, summary_files, summary_out);
  if (import->parsed()) return import_command(ctx, import_source, import_out, import_options);
  if (inspect->parsed()) return inspect_command(ctx, import_source, import_options, inspect_json);

  Job job;
  bool job_force = false;
  std::string error;
  try {
    if (run->parsed()) {
      job = load_job_file(job_file, sets, out_override);
      job_force = force;
    } else {
      for (StageCommand& sc : stage_commands) {
        if (!sc.app->parsed()) continue;
        std::vector<std::pair<std::string, std::string>> flags(sc.values.begin(), sc.values.end());
        job = sc.spec->produces_recording ? make_stage_job(sc.spec->name, sc.out, "", flags, {})
                                          : make_stage_job(sc.spec->name, sc.in, sc.out, flags, sc.sets);
        job_force = sc.force;
      }
    }
  } catch (const UsageError& e) {
    error = e.what();
  }
  ctx.agree(!error.empty(), error, ExitCode::usage);
  if (check_only) {
    if (ctx.root()) std::printf("%s: valid\n\n%s", job.source.c_str(), job.effective_toml().c_str());
    return 0;
  }
  run_job(ctx, job, RunOptions{job_force, cmdline});
  return 0;
}

}  // namespace popcode
