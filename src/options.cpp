#include "src/options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "src/errors.hpp"

namespace popcode {

const char* type_name(OptionType t) {
  switch (t) {
    case OptionType::integer: return "integer";
    case OptionType::real: return "number";
    case OptionType::boolean: return "boolean";
    case OptionType::text: return "string";
  }
  return "?";
}

std::string to_text(const OptionValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return std::get<std::string>(v);
}

std::string to_toml(const OptionValue& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    std::string s = fmt::format("{}", *d);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a TOML float
    return s;
  }
  if (const auto* s = std::get_if<std::string>(&v)) {
    std::string out = "\"";
    for (char c : *s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  }
  return to_text(v);
}

std::optional<OptionValue> parse_option(const OptionSpec& spec, const std::string& text, std::string& error) {
  switch (spec.type) {
    case OptionType::integer: {
      std::int64_t v = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size() || text.empty()) {
        error = fmt::format("expected an integer, found '{}'", text);
        return std::nullopt;
      }
      return OptionValue(v);
    }
    case OptionType::real: {
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) {
        error = fmt::format("expected a number, found '{}'", text);
        return std::nullopt;
      }
      return OptionValue(v);
    }
    case OptionType::boolean:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return OptionValue(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return OptionValue(false);
      error = fmt::format("expected true or false, found '{}'", text);
      return std::nullopt;
    case OptionType::text: return OptionValue(text);
  }
  return std::nullopt;
}

std::string check_option(const OptionSpec& spec, const OptionValue& value) {
  double numeric = 0;
  bool is_numeric = false;
  if (const auto* i = std::get_if<std::int64_t>(&value)) {
    numeric = static_cast<double>(*i);
    is_numeric = true;
  } else if (const auto* d = std::get_if<double>(&value)) {
    numeric = *d;
    is_numeric = true;
  }
  if (is_numeric && spec.min && numeric < *spec.min) return fmt::format("{} is below the minimum {}", to_text(value), *spec.min);
  if (is_numeric && spec.max && numeric > *spec.max) return fmt::format("{} is above the maximum {}", to_text(value), *spec.max);
  if (!spec.choices.empty()) {
    const std::string& s = std::get<std::string>(value);
    if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
      return fmt::format("'{}' is not one of: {}", s, fmt::join(spec.choices, ", "));
    }
  }
  if (spec.check) return spec.check(value);
  return {};
}

OptionValues::OptionValues(const std::vector<OptionSpec>& specs) {
  for (const auto& s : specs) values_[s.key] = s.default_value;
}

const OptionValue& OptionValues::at(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) throw InternalError(fmt::format("option '{}' is not defined for this stage", key));
  return it->second;
}

std::int64_t OptionValues::integer(const std::string& key) const { return std::get<std::int64_t>(at(key)); }
double OptionValues::real(const std::string& key) const {
  const OptionValue& v = at(key);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::get<double>(v);
}
bool OptionValues::flag(const std::string& key) const { return std::get<bool>(at(key)); }
const std::string& OptionValues::text(const std::string& key) const { return std::get<std::string>(at(key)); }

std::string OptionValues::canonical() const {
  std::string out;
  for (const auto& [k, v] : values_) out += fmt::format("{} = {}\n", k, to_toml(v));
  return out;
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = 3;  // suggest only close matches
  for (const auto& c : candidates) {
    std::vector<std::size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (std::size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= c.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] == c[j - 1] ? 0 : 1)});
      }
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_distance) {
      best_distance = prev[c.size()];
      best = c;
    }
  }
  return best;
}

namespace {

// Parses each comma-separated item of `text` (spaces around items ignored) as a T with from_chars; `ok` says
// whether a parsed value is acceptable; otherwise `fail(item)` throws.
template <typename T, typename Ok, typename Fail>
std::vector<T> parse_list(const std::string& text, Ok ok, Fail fail) {
  std::vector<T> values;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    std::size_t b = at, e = comma;
    while (b < e && text[b] == ' ') ++b;
    while (e > b && text[e - 1] == ' ') --e;
    T v{};
    const auto [end, ec] = std::from_chars(text.data() + b, text.data() + e, v);
    if (b == e || ec != std::errc() || end != text.data() + e || !ok(v)) fail(text.substr(b, e - b));
    values.push_back(v);
    at = comma + 1;
  }
  return values;
}

}  // namespace

std::vector<std::int64_t> parse_positive_list(const std::string& text, const std::string& key, const std::string& example,
                                              bool allow_none) {
  if (allow_none && (text.empty() || text == "none")) return {};
  return parse_list<std::int64_t>(
      text, [](std::int64_t v) { return v >= 1; },
      [&](const std::string& item) {
        throw UsageError(fmt::format("{} = \"{}\": \"{}\" is not a positive integer (expected e.g. \"{}\"{})", key, text,
                                     item, example, allow_none ? " or \"none\"" : ""));
      });
}

std::vector<double> parse_real_list(const std::string& text, const std::string& key, const std::string& example) {
  return parse_list<double>(
      text, [](double v) { return std::isfinite(v); },
      [&](const std::string& item) {
        throw UsageError(fmt::format("{} = \"{}\": \"{}\" is not a number (expected e.g. \"{}\")", key, text, item,
                                     example));
      });
}

namespace {

// An OptionSpec::check from a parser of the option's text: the parser's error message, or "".
template <typename Parse>
std::function<std::string(const OptionValue&)> check_by(Parse parse) {
  return [parse](const OptionValue& v) {
    try {
      parse(std::get<std::string>(v));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
}

}  // namespace

std::function<std::string(const OptionValue&)> real_list_check(const std::string& key, const std::string& example) {
  return check_by([key, example](const std::string& text) { parse_real_list(text, key, example); });
}

std::function<std::string(const OptionValue&)> positive_list_check(const std::string& key, const std::string& example,
                                                                   bool allow_none) {
  return check_by([key, example, allow_none](const std::string& text) { parse_positive_list(text, key, example, allow_none); });
}

}  // namespace popcode
