#include "src/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "src/log.hpp"

namespace popcode {

namespace {
constexpr double kQuietStart = 1.0;  // seconds before the first 10% line (see the header)
}  // namespace

std::string format_duration(double s) {
  if (s < 60) return fmt::format("{:.1f} s", s);
  if (s < 3600) return fmt::format("{} min {:02d} s", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  return fmt::format("{} h {:02d} min", static_cast<int>(s / 3600), (static_cast<int>(s) % 3600) / 60);
}

Progress::Progress(std::string label, std::size_t total, double interval_seconds)
    : label_(std::move(label)), total_(total), interval_(interval_seconds) {
  tty_ = log::is_root() && isatty(STDERR_FILENO) != 0;
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(std::size_t units) {
  done_ += units;
  if (!log::is_root() || log::level() == log::Level::quiet || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  const double running = std::chrono::duration<double>(now - start_).count();
  const int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : 10;
  const bool due = tty_ ? since >= 0.2 : (since >= interval_ || (decile > last_decile_ && running >= kQuietStart));
  if (due && done_ < total_) {
    last_decile_ = decile;
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!log::is_root() || log::level() == log::Level::quiet || total_ == 0) return;
  print(true);
}

void Progress::print(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string text;
  if (final_line) {
    text = fmt::format("{}: {}/{} done in {}", label_, done_, total_, format_duration(elapsed));
  } else {
    const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    const double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
    text = fmt::format("{}: {}/{} ({:.0f}%), {} elapsed, ETA {}", label_, done_, total_, 100.0 * frac,
                       format_duration(elapsed), format_duration(eta));
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K[popcode %8.2fs] %s%s", log::elapsed_seconds(), text.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else {
    log::write_info(text);
  }
}

}  // namespace popcode
