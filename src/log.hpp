#pragma once
// Logging: informational lines come from rank 0 only; warnings and errors from any rank carry the rank.
// Every line is prefixed with the elapsed wall time so logs of long jobs read as a timeline.
#include <fmt/format.h>

#include <string>

namespace popcode::log {

enum class Level { quiet = 0, normal = 1, verbose = 2 };

// Called once by main after MPI is up; before that, every process logs as rank 0 of 1.
void configure(int rank, int size, Level level);
Level level();
int rank();
bool is_root();
double elapsed_seconds();

void write_info(const std::string& line);
void write_debug(const std::string& line);
void write_warning(const std::string& line);       // any rank; prefixed with the rank when size > 1
void write_root_warning(const std::string& line);  // rank 0 only: for facts every rank knows
void write_error(const std::string& line);
// An error every rank raised together, printed once by rank 0; Context::agree already names the failing rank.
void write_collective_error(const std::string& line);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write_info(fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  write_debug(fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write_warning(fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn_once(fmt::format_string<Args...> f, Args&&... args) {
  write_root_warning(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace popcode::log
