#include "src/job.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "src/errors.hpp"

namespace popcode {
namespace {

class Problems {
 public:
  explicit Problems(std::string source) : source_(std::move(source)) {}
  void add(const std::string& text) { items_.push_back(text); }
  void raise_if_any() const {
    if (items_.empty()) return;
    std::string msg = items_.size() == 1 ? fmt::format("{}: {}", source_, items_.front())
                                         : fmt::format("{}: {} problems:", source_, items_.size());
    if (items_.size() > 1)
      for (const auto& i : items_) msg += "\n  - " + i;
    throw UsageError(msg);
  }

 private:
  std::string source_;
  std::vector<std::string> items_;
};

const std::vector<std::string> kJobKeys = {"name", "stages", "recording", "results"};

std::string suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string m = closest_match(word, candidates);
  return m.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", m);
}

std::vector<std::string> keys_of(const StageSpec& spec) {
  std::vector<std::string> out;
  for (const auto& o : spec.options) out.push_back(o.key);
  return out;
}

const OptionSpec* find_option(const StageSpec& spec, const std::string& key) {
  for (const auto& o : spec.options)
    if (o.key == key) return &o;
  return nullptr;
}

std::string describe_node(const toml::node& n) {
  std::ostringstream s;
  n.visit([&s](const auto& v) { s << v; });
  const char* kind = n.is_string() ? "string" : n.is_integer() ? "integer" : n.is_floating_point() ? "number"
                   : n.is_boolean() ? "boolean" : n.is_array() ? "array" : n.is_table() ? "table" : "value";
  return fmt::format("{} {}", kind, s.str());
}

// Converts a TOML value for `spec`, or explains why not.
std::optional<OptionValue> from_toml(const OptionSpec& spec, const toml::node& n, std::string& error) {
  switch (spec.type) {
    case OptionType::integer:
      if (auto v = n.value_exact<std::int64_t>()) return OptionValue(*v);
      break;
    case OptionType::real:
      if (n.is_floating_point()) return OptionValue(*n.value<double>());
      if (auto v = n.value_exact<std::int64_t>()) return OptionValue(static_cast<double>(*v));
      break;
    case OptionType::boolean:
      if (auto v = n.value_exact<bool>()) return OptionValue(*v);
      break;
    case OptionType::text:
      if (auto v = n.value_exact<std::string>()) return OptionValue(*v);
      break;
  }
  error = fmt::format("expected {}, found {}", type_name(spec.type), describe_node(n));
  return std::nullopt;
}

void set_checked(Problems& p, JobStage& stage, const OptionSpec& spec, OptionValue v, const std::string& where) {
  const std::string bad = check_option(spec, v);
  if (!bad.empty()) {
    p.add(fmt::format("{}: {}", where, bad));
    return;
  }
  stage.options.set(spec.key, std::move(v));
}

// Checks stage order, needs and inputs; shared by job files and stage subcommands.
void check_plan(Problems& p, const Job& job) {
  std::set<std::string> seen;
  bool produces = false;
  for (const auto& s : job.stages) {
    for (const auto& need : s.spec->needs) {
      if (!seen.count(need)) p.add(fmt::format("stage '{}' needs '{}' earlier in job.stages", s.spec->name, need));
    }
    if (!seen.insert(s.spec->name).second) p.add(fmt::format("stage '{}' appears twice in job.stages", s.spec->name));
    produces = produces || s.spec->produces_recording;
  }
  std::error_code ec;
  if (job.recording.empty()) {
    p.add("job.recording is not set (the recording to analyse, or to write when simulate is a stage)");
  } else if (!produces && !std::filesystem::exists(job.recording, ec)) {
    p.add(fmt::format("job.recording: input file '{}' does not exist", job.recording));
  } else if (produces) {
    const auto dir = std::filesystem::path(job.recording).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
      p.add(fmt::format("job.recording: directory '{}' does not exist", dir.string()));
    }
  }
  if (!job.results.empty()) {
    const auto dir = std::filesystem::path(job.results).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
      p.add(fmt::format("job.results: directory '{}' does not exist", dir.string()));
    }
    if (job.results == job.recording) p.add("job.results and job.recording are the same file");
  }
}

void apply_overrides(Problems& p, Job& job, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    const auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      p.add(fmt::format("--set '{}': expected stage.key=value", o));
      continue;
    }
    const std::string stage = o.substr(0, dot), key = o.substr(dot + 1, eq - dot - 1), value = o.substr(eq + 1);
    if (stage == "job") {
      if (key == "recording") job.recording = value;
      else if (key == "results") job.results = value;
      else if (key == "name") job.name = value;
      else p.add(fmt::format("--set '{}': job.{} cannot be set here{}", o, key, suggestion(key, {"recording", "results", "name"})));
      continue;
    }
    JobStage* target = nullptr;
    for (auto& s : job.stages)
      if (s.spec->name == stage) target = &s;
    if (target == nullptr) {
      p.add(fmt::format("--set '{}': '{}' is not a stage of this job{}", o, stage, suggestion(stage, stage_names())));
      continue;
    }
    const OptionSpec* spec = find_option(*target->spec, key);
    if (spec == nullptr) {
      p.add(fmt::format("--set '{}': stage '{}' has no option '{}'{}", o, stage, key, suggestion(key, keys_of(*target->spec))));
      continue;
    }
    std::string error;
    auto v = parse_option(*spec, value, error);
    if (!v) {
      p.add(fmt::format("--set '{}': {}", o, error));
      continue;
    }
    set_checked(p, *target, *spec, std::move(*v), fmt::format("--set {}.{}", stage, key));
  }
}

}  // namespace

const JobStage* Job::stage(const std::string& stage_name) const {
  for (const auto& s : stages)
    if (s.spec->name == stage_name) return &s;
  return nullptr;
}

std::string Job::effective_toml() const {
  std::string out = "[job]\n";
  out += fmt::format("name = {}\n", to_toml(OptionValue(name)));
  std::vector<std::string> names;
  for (const auto& s : stages) names.push_back(to_toml(OptionValue(s.spec->name)));
  out += fmt::format("stages = [{}]\n", fmt::join(names, ", "));
  out += fmt::format("recording = {}\n", to_toml(OptionValue(recording)));
  if (!results.empty()) out += fmt::format("results = {}\n", to_toml(OptionValue(results)));
  for (const auto& s : stages) {
    out += fmt::format("\n[{}]\n", s.spec->name);
    out += s.options.canonical();
  }
  return out;
}

Job load_job_file(const std::string& path, const std::vector<std::string>& overrides, const std::string& results_override) {
  Job job;
  job.source = path;
  job.overrides = overrides;
  Problems p(path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw UsageError(fmt::format("{}: job file not found", path));
  {
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    job.text = buf.str();
  }
  toml::table doc;
  try {
    doc = toml::parse(job.text, path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw UsageError(fmt::format("{}:{}:{}: TOML syntax error: {}", path, where.line, where.column, e.description()));
  }

  job.name = std::filesystem::path(path).stem().string();
  const toml::table* job_table = doc["job"].as_table();
  if (job_table == nullptr) {
    p.add("missing [job] table (with stages = [...] and recording = \"...\")");
    p.raise_if_any();
  }
  for (const auto& [k, v] : *job_table) {
    const std::string key(k.str());
    if (key == "name" || key == "recording" || key == "results") {
      if (auto s = v.value_exact<std::string>()) {
        (key == "name" ? job.name : key == "recording" ? job.recording : job.results) = *s;
      } else {
        p.add(fmt::format("[job] {}: expected string, found {}", key, describe_node(v)));
      }
    } else if (key == "stages") {
      const toml::array* arr = v.as_array();
      if (arr == nullptr || arr->empty()) {
        p.add(fmt::format("[job] stages: expected a non-empty array of stage names, found {}", describe_node(v)));
        continue;
      }
      for (const auto& item : *arr) {
        const auto s = item.value_exact<std::string>();
        if (!s) {
          p.add(fmt::format("[job] stages: expected stage names, found {}", describe_node(item)));
          continue;
        }
        const StageSpec* spec = find_stage(*s);
        if (spec == nullptr) {
          p.add(fmt::format("[job] stages: unknown stage '{}'{} (stages: {})", *s, suggestion(*s, stage_names()),
                            fmt::join(stage_names(), ", ")));
          continue;
        }
        job.stages.push_back(JobStage{spec, OptionValues(spec->options)});
      }
    } else {
      p.add(fmt::format("[job] unknown key '{}'{}", key, suggestion(key, kJobKeys)));
    }
  }
  if (!job_table->contains("stages")) p.add("[job] stages is missing (e.g. stages = [\"preprocess\", \"spectrum\"])");

  for (const auto& [k, v] : doc) {
    const std::string table(k.str());
    if (table == "job") continue;
    const StageSpec* spec = find_stage(table);
    if (spec == nullptr) {
      p.add(fmt::format("unknown table [{}]{}", table, suggestion(table, stage_names())));
      continue;
    }
    JobStage* stage = nullptr;
    for (auto& s : job.stages)
      if (s.spec == spec) stage = &s;
    if (stage == nullptr) {
      p.add(fmt::format("[{}] is configured but '{}' is not in job.stages", table, table));
      continue;
    }
    const toml::table* t = v.as_table();
    if (t == nullptr) {
      p.add(fmt::format("{} must be a table", table));
      continue;
    }
    for (const auto& [ok, ov] : *t) {
      const std::string key(ok.str());
      const OptionSpec* option = find_option(*spec, key);
      if (option == nullptr) {
        p.add(fmt::format("[{}] unknown key '{}'{}", table, key, suggestion(key, keys_of(*spec))));
        continue;
      }
      std::string error;
      auto value = from_toml(*option, ov, error);
      if (!value) {
        p.add(fmt::format("[{}] {}: {}", table, key, error));
        continue;
      }
      set_checked(p, *stage, *option, std::move(*value), fmt::format("[{}] {}", table, key));
    }
  }
  apply_overrides(p, job, overrides);
  if (!results_override.empty()) job.results = results_override;
  if (job.results.empty()) job.results = job.name + "_results.h5";
  check_plan(p, job);
  p.raise_if_any();
  return job;
}

Job make_stage_job(const std::string& stage, const std::string& recording, const std::string& results,
                   const std::vector<std::pair<std::string, std::string>>& flags, const std::vector<std::string>& overrides) {
  const StageSpec* spec = find_stage(stage);
  if (spec == nullptr) throw InternalError(fmt::format("no stage '{}'", stage));
  Job job;
  job.source = "command line";
  job.name = stage;
  job.recording = recording;
  job.results = results;
  job.overrides = overrides;
  // The stages this one needs, recursively, then the stage itself.
  std::vector<const StageSpec*> order;
  std::function<void(const StageSpec*)> add = [&](const StageSpec* s) {
    for (const auto& need : s->needs) add(find_stage(need));
    if (std::find(order.begin(), order.end(), s) == order.end()) order.push_back(s);
  };
  add(spec);
  for (const StageSpec* s : order) job.stages.push_back(JobStage{s, OptionValues(s->options)});
  Problems p("command line");
  for (const auto& [key, value] : flags) {
    const OptionSpec* option = find_option(*spec, key);
    std::string error;
    auto v = option ? parse_option(*option, value, error) : std::nullopt;
    if (!v) {
      p.add(fmt::format("--{}: {}", key, option ? error : "unknown option"));
      continue;
    }
    set_checked(p, job.stages.back(), *option, std::move(*v), "--" + key);
  }
  apply_overrides(p, job, overrides);
  check_plan(p, job);
  p.raise_if_any();
  return job;
}

}  // namespace popcode
