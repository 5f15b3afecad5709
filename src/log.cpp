#include "src/log.hpp"

#include <chrono>
#include <cstdio>

namespace popcode::log {
namespace {
struct State {
  int rank = 0;
  int size = 1;
  Level level = Level::normal;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};
State& state() {
  static State s;
  return s;
}
void emit(const char* tag, const std::string& line, bool with_rank) {
  const State& s = state();
  if (with_rank && s.size > 1) {
    std::fprintf(stderr, "[popcode %8.2fs] %s(rank %d) %s\n", elapsed_seconds(), tag, s.rank, line.c_str());
  } else {
    std::fprintf(stderr, "[popcode %8.2fs] %s%s\n", elapsed_seconds(), tag, line.c_str());
  }
  std::fflush(stderr);
}
}  // namespace

void configure(int rank, int size, Level level) {
  state().rank = rank;
  state().size = size;
  state().level = level;
}
Level level() { return state().level; }
int rank() { return state().rank; }
bool is_root() { return state().rank == 0; }
double elapsed_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - state().start).count();
}

void write_info(const std::string& line) {
  if (is_root() && state().level >= Level::normal) emit("", line, false);
}
void write_debug(const std::string& line) {
  if (is_root() && state().level >= Level::verbose) emit("", line, false);
}
void write_warning(const std::string& line) { emit("warning: ", line, true); }
void write_root_warning(const std::string& line) {
  if (is_root()) emit("warning: ", line, false);
}
void write_error(const std::string& line) { emit("error: ", line, true); }
void write_collective_error(const std::string& line) { emit("error: ", line, false); }

}  // namespace popcode::log
