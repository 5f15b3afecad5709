#pragma once
// Wall-time accounting per stage, split into compute, communication and I/O, plus per-rank peak memory.
//
// A PhaseClock is always in exactly one phase; code that communicates or does file I/O enters that phase
// with a ScopedPhase, and the time in between counts as compute. Nested scopes attribute time to the
// innermost phase. Context's collective helpers and the io/ layer enter their phases themselves, so
// solver code rarely needs to.
#include <array>
#include <chrono>
#include <cstddef>
#include <string>

namespace popcode {

enum class Phase : int { compute = 0, comm = 1, io = 2 };

class PhaseClock {
 public:
  PhaseClock();
  // Starts a fresh measurement (all phases zero, current phase compute).
  void reset();
  Phase current() const { return current_; }
  // Switches phase and returns the previous one.
  Phase switch_to(Phase p);
  // Seconds spent in `p` so far (including the running interval if `p` is current).
  double seconds(Phase p) const;
  double wall_seconds() const;

 private:
  using clock = std::chrono::steady_clock;
  std::array<double, 3> acc_{};
  Phase current_ = Phase::compute;
  clock::time_point since_;
  clock::time_point start_;
};

// The process-wide clock (one per rank). Stages reset it at their start.
PhaseClock& phase_clock();

class ScopedPhase {
 public:
  explicit ScopedPhase(Phase p) : previous_(phase_clock().switch_to(p)) {}
  ~ScopedPhase() { phase_clock().switch_to(previous_); }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

 private:
  Phase previous_;
};

// The current time as ISO 8601 UTC, e.g. 2026-11-22T08:15:30Z.
std::string timestamp_utc();

// Peak resident set size of this process in bytes since the last reset (VmHWM from /proc/self/status).
std::size_t peak_rss_bytes();
// Current resident set size in bytes.
std::size_t current_rss_bytes();
// Resets the peak so the next peak_rss_bytes() measures one stage (Linux clear_refs; no-op elsewhere).
void reset_peak_rss();

}  // namespace popcode
