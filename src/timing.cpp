#include "src/timing.hpp"

#include <fmt/chrono.h>

#include <ctime>
#include <fstream>
#include <string>

namespace popcode {

PhaseClock::PhaseClock() { reset(); }

void PhaseClock::reset() {
  acc_ = {};
  current_ = Phase::compute;
  since_ = start_ = clock::now();
}

Phase PhaseClock::switch_to(Phase p) {
  const auto now = clock::now();
  acc_[static_cast<int>(current_)] += std::chrono::duration<double>(now - since_).count();
  since_ = now;
  const Phase previous = current_;
  current_ = p;
  return previous;
}

double PhaseClock::seconds(Phase p) const {
  double s = acc_[static_cast<int>(p)];
  if (p == current_) s += std::chrono::duration<double>(clock::now() - since_).count();
  return s;
}

double PhaseClock::wall_seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

PhaseClock& phase_clock() {
  static PhaseClock c;
  return c;
}

std::string timestamp_utc() { return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(std::time(nullptr))); }

namespace {
std::size_t status_field_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size()));
  }
  return 0;
}
}  // namespace

std::size_t peak_rss_bytes() { return status_field_kib("VmHWM") * 1024; }
std::size_t current_rss_bytes() { return status_field_kib("VmRSS") * 1024; }

void reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (out) out << "5";
}

}  // namespace popcode
