#pragma once
// Typed stage options. One OptionSpec list per stage drives the job-file validation, the `--set` overrides,
// the command-line flags of the stage's own subcommand and their help text.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace popcode {

enum class OptionType { integer, real, boolean, text };
using OptionValue = std::variant<std::int64_t, double, bool, std::string>;

struct OptionSpec {
  std::string key;
  OptionType type = OptionType::text;
  OptionValue default_value;
  std::string help;
  std::vector<std::string> choices;        // text options restricted to these values
  std::optional<double> min, max;          // numeric bounds, inclusive
  // Extra check; returns an error text ("" when fine).
  std::function<std::string(const OptionValue&)> check;
};

const char* type_name(OptionType t);
std::string to_text(const OptionValue& v);          // as it would appear on a command line
std::string to_toml(const OptionValue& v);          // as it would appear in a job file

// Parses `text` for `spec` (command line and --set). Returns an error text in `error` on failure.
std::optional<OptionValue> parse_option(const OptionSpec& spec, const std::string& text, std::string& error);
// Checks type-independent constraints (bounds, choices, custom check); returns "" or an error text.
std::string check_option(const OptionSpec& spec, const OptionValue& value);

// The resolved options of one stage: every key of its spec has a value (the default unless set).
class OptionValues {
 public:
  OptionValues() = default;
  explicit OptionValues(const std::vector<OptionSpec>& specs);
  void set(const std::string& key, OptionValue v) { values_[key] = std::move(v); }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  bool flag(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  // "key = value" lines in key order: the canonical form stored in results and hashed for identity.
  std::string canonical() const;
  const std::map<std::string, OptionValue>& values() const { return values_; }

 private:
  const OptionValue& at(const std::string& key) const;
  std::map<std::string, OptionValue> values_;
};

// Parses a comma-separated list of positive integers ("4,9,13"; spaces allowed). With `allow_none`, "" and
// "none" give an empty list. Throws UsageError naming `key` and showing `example`.
std::vector<std::int64_t> parse_positive_list(const std::string& text, const std::string& key, const std::string& example,
                                              bool allow_none = false);
// An OptionSpec::check that accepts exactly what parse_positive_list accepts.
std::function<std::string(const OptionValue&)> positive_list_check(const std::string& key, const std::string& example,
                                                                   bool allow_none = false);

// Parses a comma-separated list of finite real numbers ("-15,-10,0.5"; spaces allowed), at least one.
// Throws UsageError naming `key` and showing `example`.
std::vector<double> parse_real_list(const std::string& text, const std::string& key, const std::string& example);
// An OptionSpec::check that accepts exactly what parse_real_list accepts.
std::function<std::string(const OptionValue&)> real_list_check(const std::string& key, const std::string& example);

// The closest of `candidates` to `word` by edit distance, or "" when none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace popcode
