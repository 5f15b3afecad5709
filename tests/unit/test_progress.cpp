// Progress lines in logs (stderr not a terminal, as under ctest and Slurm): a loop that ends within a second
// logs only its final line; a longer one logs a line per 10% step from its first second on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "src/progress.hpp"

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Progress, AShortLoopLogsOnlyItsFinalLine) {
  if (isatty(STDERR_FILENO)) GTEST_SKIP() << "stderr is a terminal: progress redraws one line in place";
  testing::internal::CaptureStderr();
  {
    popcode::Progress p("short loop", 10);
    for (int i = 0; i < 10; ++i) p.advance();
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(out, "short loop"), 1) << out;
  EXPECT_EQ(count(out, "short loop: 10/10 done in"), 1) << out;
}

TEST(Progress, ALongerLoopLogsEveryTenPercentAfterItsFirstSecond) {
  if (isatty(STDERR_FILENO)) GTEST_SKIP() << "stderr is a terminal: progress redraws one line in place";
  testing::internal::CaptureStderr();
  {
    popcode::Progress p("long loop", 10);
    p.advance(3);  // 30% within the first second: not logged
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    for (int i = 3; i < 10; ++i) p.advance();  // 40% .. 90% logged, then the final line
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(out, "long loop: 3/10"), 0) << out;
  EXPECT_EQ(count(out, "long loop: 4/10 (40%)"), 1) << out;
  EXPECT_EQ(count(out, "long loop: 9/10 (90%)"), 1) << out;
  EXPECT_EQ(count(out, "long loop"), 7) << out;  // 40% .. 90% and "done"
}
