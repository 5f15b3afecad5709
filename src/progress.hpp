#pragma once
// Progress reporting for long stages, printed by rank 0 with elapsed time and an ETA.
// On a terminal one line is updated in place; otherwise (files, Slurm logs) a plain line is printed when
// `interval` seconds have passed since the last one and at every 10% step, so logs stay short and grep-able.
// The 10% lines start once the work has run for a second: work that ends sooner logs only its final line.
#include <chrono>
#include <cstddef>
#include <string>

namespace popcode {

class Progress {
 public:
  // `total` units of work; non-root ranks construct it too but print nothing.
  Progress(std::string label, std::size_t total, double interval_seconds = 10.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::size_t units = 1);
  // Prints the final line (idempotent; the destructor calls it).
  void finish();

 private:
  void print(bool final_line);

  std::string label_;
  std::size_t total_;
  std::size_t done_ = 0;
  double interval_;
  int last_decile_ = 0;
  bool tty_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

// Formats seconds as "12.3 s", "4 min 05 s" or "2 h 03 min".
std::string format_duration(double seconds);

}  // namespace popcode
