// Failure behaviour: bad input data exits 3 with a message naming file and dataset, job errors exit 2
// before any work, and no failed or killed job leaves a results file that looks complete.
#include <fcntl.h>

#include <limits>

#include "e2e/e2e_util.hpp"

namespace popcode::e2e {
namespace {

std::string small_recording(const TempDir& dir, const std::string& name = "rec.h5") {
  const std::string rec = dir.file(name);
  const Outcome o = popcode(2, "simulate --out " + rec + " --neurons 200 --images 60 --spont-timepoints 100 --height 12 --width 20");
  EXPECT_EQ(o.code, 0) << o.output;
  return rec;
}

template <typename T>
void rewrite(const std::string& file, const std::string& dataset, const std::function<void(std::vector<T>&)>& change) {
  h5::File f = h5::File::open(file, h5::Access::read_write, ExitCode::internal);
  std::vector<T> v = h5::read_all<T>(f, dataset);
  change(v);
  const auto dims = h5::shape_of(f, dataset).dims;
  h5::write_block<T>(f, dataset, std::vector<std::int64_t>(dims.size(), 0), dims, v);
  f.close();
}

// Runs spectrum on `rec`; expects `code` and every needle in the output, and no complete results.
void expect_failure(const TempDir& dir, const std::string& rec, int code, const std::vector<std::string>& needles,
                    const std::string& extra = "") {
  const std::string res = dir.file("res.h5");
  std::filesystem::remove(res);
  const Outcome o = popcode(2, "spectrum --in " + rec + " --out " + res + " " + extra);
  EXPECT_EQ(o.code, code) << o.output;
  for (const auto& n : needles) EXPECT_TRUE(contains(o.output, n)) << "missing '" << n << "' in:\n" << o.output;
  if (std::filesystem::exists(res)) {
    EXPECT_NE(status_of(res), "complete");
  }
}

TEST(Failures, TruncatedRecording) {
  TempDir dir;
  const std::string rec = small_recording(dir);
  std::filesystem::resize_file(rec, std::filesystem::file_size(rec) / 3);
  expect_failure(dir, rec, 3, {rec});
}

TEST(Failures, WrongShapesAndOutOfRangeIds) {
  TempDir dir;
  const std::string rec = small_recording(dir);
  {
    h5::File f = h5::File::open(rec, h5::Access::read_write, ExitCode::internal);
    std::vector<std::int32_t> ids = h5::read_all<std::int32_t>(f, "/stimulus_id");
    ids.pop_back();
    h5::remove(f, "/stimulus_id");
    h5::write_all<std::int32_t>(f, "/stimulus_id", {static_cast<std::int64_t>(ids.size())}, ids);
  }
  expect_failure(dir, rec, 3, {rec, "/stimulus_id", "expected int32 [126]", "found int32 [125]"});
  const std::string rec2 = small_recording(dir, "rec2.h5");
  rewrite<std::int32_t>(rec2, "/stimulus_id", [](std::vector<std::int32_t>& v) { v[7] = 60; v[9] = -3; });
  expect_failure(dir, rec2, 3, {rec2, "/stimulus_id", "2 ids outside [-1, 60)"});
}

TEST(Failures, NanAndInfPolicies) {
  TempDir dir;
  const std::string rec = small_recording(dir);
  rewrite<float>(rec, "/responses", [](std::vector<float>& v) { v[10] = v[500] = v[777] = std::numeric_limits<float>::quiet_NaN(); });
  expect_failure(dir, rec, 3, {rec, "/responses", "3 NaN", "nan_policy"}, "--set preprocess.nan_policy=error");
  // The default follows the anchor: NaN -> 0, counted and reported.
  const std::string res = dir.file("ok.h5");
  const Outcome ok = popcode(2, "spectrum --in " + rec + " --out " + res);
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_TRUE(contains(ok.output, "3 NaN values in /responses replaced by 0"));
  h5::File f = open(res);
  EXPECT_EQ(h5::read_int_attribute(f, "/preprocess", "nan_responses"), 3);
  rewrite<float>(rec, "/responses", [](std::vector<float>& v) { v[11] = std::numeric_limits<float>::infinity(); });
  expect_failure(dir, rec, 3, {rec, "/responses", "1 infinite"});
}

TEST(Failures, ZeroNeuronsAndMoreRanksThanNeurons) {
  TempDir dir;
  const std::string empty = dir.file("empty.h5");
  {
    h5::File f = h5::File::create(empty);
    h5::create_dataset<float>(f, "/responses", {10, 0});
    std::vector<std::int32_t> ids = {0, 1, 2, 3, 4, 0, 1, 2, 3, 4};
    h5::write_all<std::int32_t>(f, "/stimulus_id", {10}, ids);
    h5::write_attribute(f, "/", "n_images", std::int64_t{5});
  }
  expect_failure(dir, empty, 3, {empty, "/responses", "has 0 neurons"});
  // Policy for more ranks than neurons: ranks without neurons take part in the reductions only.
  const std::string tiny = dir.file("tiny.h5"), res = dir.file("tiny_res.h5");
  ASSERT_EQ(popcode(1, "simulate --out " + tiny + " --neurons 2 --images 40 --height 12 --width 20").code, 0);
  const Outcome o = popcode(3, "spectrum --in " + tiny + " --out " + res + " --set preprocess.spont_pcs=1 --fit-range 1:2");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, "2 neurons on 3 ranks"));
  EXPECT_EQ(status_of(res), "complete");
  {
    h5::File f = open(res);
    EXPECT_EQ(h5::read_all<double>(f, "/spectrum/signal_variance").size(), 2u);
  }
  // Two components cannot take the default fit range: every rank agrees, so the job ends cleanly with
  // code 3 (no MPI_Abort) and the results file says why.
  const std::string res2 = dir.file("tiny_res2.h5");
  const Outcome too_few = popcode(3, "spectrum --in " + tiny + " --out " + res2 + " --set preprocess.spont_pcs=1");
  EXPECT_EQ(too_few.code, 3) << too_few.output;
  EXPECT_TRUE(contains(too_few.output, "needs K >= 14 components")) << too_few.output;
  EXPECT_FALSE(contains(too_few.output, "MPI_ABORT")) << too_few.output;
  EXPECT_TRUE(contains(status_of(res2), "failed: ")) << status_of(res2);
}

TEST(Failures, GeometryStagesRefuseBadInputsAndSurviveTinyOnes) {
  TempDir dir;
  const std::string rec = small_recording(dir);  // 60 images
  // More neighbours than points: exit 3 naming the recording and the numbers.
  const std::string res = dir.file("dim.h5");
  const Outcome big_k = popcode(2, "dimension --in " + rec + " --out " + res + " --k 4,70");
  EXPECT_EQ(big_k.code, 3) << big_k.output;
  EXPECT_TRUE(contains(big_k.output, "k = 70")) << big_k.output;
  EXPECT_TRUE(contains(big_k.output, "has 60 points")) << big_k.output;
  EXPECT_TRUE(contains(big_k.output, rec)) << big_k.output;
  // A malformed k list is a usage error before any work.
  const Outcome bad_list = popcode(1, "dimension --in " + rec + " --out " + res + " --k 4,x");
  EXPECT_EQ(bad_list.code, 2) << bad_list.output;
  EXPECT_TRUE(contains(bad_list.output, "\"x\" is not a positive integer")) << bad_list.output;
  // Two neurons on three ranks (one rank holds none): both stages complete; decoding from one-neuron
  // subsets is undecided, and a k whose fit fails is reported, not fatal.
  const std::string tiny = dir.file("tiny.h5"), tiny_res = dir.file("tiny_res.h5");
  ASSERT_EQ(popcode(1, "simulate --out " + tiny + " --neurons 2 --images 40 --height 12 --width 20").code, 0);
  const Outcome o = popcode(3, "dimension --in " + tiny + " --out " + tiny_res +
                                   " --metric euclidean --k 3,9 --mle-k 5 --set preprocess.spont_pcs=1");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_EQ(status_of(tiny_res), "complete");
  const Outcome d = popcode(3, "decode-identity --in " + tiny + " --out " + tiny_res + " --set preprocess.spont_pcs=1");
  ASSERT_EQ(d.code, 0) << d.output;
  h5::File f = open(tiny_res);
  EXPECT_EQ(h5::read_all<std::int64_t>(f, "/decode_identity/subsets/neurons"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(h5::read_all<std::int64_t>(f, "/decode_identity/subsets/undecided")[0], 40);  // one neuron: no correlation
  EXPECT_EQ(h5::read_all<double>(f, "/dimension/d_fit").size(), 2u);
}

TEST(Failures, RfRefusesBadImagesAndSurvivesTinyRecordings) {
  TempDir dir;
  // No /images: exit 3 naming the recording and the dataset.
  const std::string rec = small_recording(dir), res = dir.file("rf.h5");
  {
    h5::File f = h5::File::open(rec, h5::Access::read_write, ExitCode::internal);
    h5::remove(f, "/images");
  }
  const Outcome none = popcode(2, "rf --in " + rec + " --out " + res);
  EXPECT_EQ(none.code, 3) << none.output;
  EXPECT_TRUE(contains(none.output, rec + " has no /images dataset")) << none.output;
  // A NaN pixel in an image the responses use.
  const std::string nan_rec = small_recording(dir, "nan.h5");
  {
    h5::File f = h5::File::open(nan_rec, h5::Access::read_write, ExitCode::internal);
    const float bad = std::numeric_limits<float>::quiet_NaN();
    h5::write_block<float>(f, "/images", {5, 2, 3}, {1, 1, 1}, std::span<const float>(&bad, 1));
  }
  const Outcome nan = popcode(2, "rf --in " + nan_rec + " --out " + dir.file("rf_nan.h5"));
  EXPECT_EQ(nan.code, 3) << nan.output;
  EXPECT_TRUE(contains(nan.output, "/images has 1 NaN or Inf pixels")) << nan.output;
  // Too few images to split into train and test.
  const std::string few = dir.file("few.h5");
  ASSERT_EQ(popcode(1, "simulate --out " + few + " --neurons 50 --images 4 --height 8 --width 8").code, 0);
  const Outcome f4 = popcode(2, "rf --in " + few + " --out " + dir.file("rf_few.h5") + " --set preprocess.spont_pcs=1");
  EXPECT_EQ(f4.code, 3) << f4.output;
  EXPECT_TRUE(contains(f4.output, "4 images give 2 train and 2 test images")) << f4.output;
  // Two neurons on three ranks (one rank holds none) completes, with one response PC.
  const std::string tiny = dir.file("tiny.h5"), tiny_res = dir.file("tiny_rf.h5");
  ASSERT_EQ(popcode(1, "simulate --out " + tiny + " --neurons 2 --images 40 --height 12 --width 20").code, 0);
  const Outcome o = popcode(3, "rf --in " + tiny + " --out " + tiny_res + " --set preprocess.spont_pcs=1");
  ASSERT_EQ(o.code, 0) << o.output;
  // The defaults (100 response PCs, rank 25) are more than two neurons allow: each cut is said, once.
  EXPECT_TRUE(contains(o.output, "rf: response_pcs = 100 but 2 neurons and 40 images allow 2: using 2")) << o.output;
  EXPECT_TRUE(contains(o.output, "rf: rank = 25 but there are 2 canonical components (2 response PCs, 20 train images): "
                                 "using rank 2")) << o.output;
  h5::File f = open(tiny_res);
  EXPECT_EQ(h5::read_all<double>(f, "/rf/centre_x").size(), 2u);
  EXPECT_EQ(h5::shape_of(f, "/rf/rrr/rf").dims, (std::vector<std::int64_t>{2, 240}));
}

TEST(Failures, RefusesToWriteResultsIntoAFileItDidNotCreate) {
  TempDir dir;
  const std::string rec = small_recording(dir), other = small_recording(dir, "other.h5");
  const auto before = std::filesystem::file_size(other);
  const Outcome o = popcode(2, "spectrum --in " + rec + " --out " + other);
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, "is not a popcode results file")) << o.output;
  EXPECT_EQ(std::filesystem::file_size(other), before);
  h5::File f = open(other);
  EXPECT_FALSE(h5::exists(f, "/preprocess"));
}

TEST(Failures, MissingInputIsAUsageError) {
  TempDir dir;
  const Outcome o = popcode(2, "spectrum --in " + dir.file("nope.h5") + " --out " + dir.file("res.h5"));
  EXPECT_EQ(o.code, 2) << o.output;
  EXPECT_TRUE(contains(o.output, "nope.h5' does not exist"));
  EXPECT_FALSE(std::filesystem::exists(dir.file("res.h5")));
}

#if POPCODE_WITH_TORCH
// libtorch lives in libpopcode_torch.so beside the binary and is loaded only when a decoder stage runs
// (src/torch_module.hpp). A copy of the binary without the module: --help never loads libtorch, the other
// stages run, and a decoder stage stops on every rank with exit 1 and a message naming the missing file.
TEST(Failures, OnlyDecoderStagesNeedTheTorchModule) {
  TempDir dir;
  const std::string copy = dir.file("popcode");
  std::filesystem::copy_file(POPCODE_BINARY, copy);
  const Outcome help = shell("LD_DEBUG=libs " + copy + " --help");
  EXPECT_EQ(help.code, 0) << help.output;
  EXPECT_TRUE(contains(help.output, "calling init")) << "LD_DEBUG gave no loader trace:\n" << help.output;
  EXPECT_FALSE(contains(help.output, "libtorch")) << "libtorch was loaded for --help:\n" << help.output;

  const std::string rec = dir.file("rec.h5");
  Outcome o = shell(mpiexec(2) + copy + " simulate --out " + rec + " --neurons 60 --images 40 --height 12 --width 20");
  ASSERT_EQ(o.code, 0) << o.output;
  o = shell(mpiexec(2) + copy + " spectrum --in " + rec + " --out " + dir.file("spectrum.h5"));
  EXPECT_EQ(o.code, 0) << o.output;
  o = shell(mpiexec(2) + copy + " decode-category --in " + rec + " --out " + dir.file("decode.h5"));
  EXPECT_EQ(o.code, 1) << o.output;
  EXPECT_TRUE(contains(o.output, "cannot load popcode's libtorch module " + dir.file("libpopcode_torch.so")))
      << o.output;
  h5::File f = open(dir.file("decode.h5"));  // preprocessing finished and was kept; no decoder results
  EXPECT_TRUE(h5::exists(f, "/preprocess"));
  EXPECT_FALSE(h5::exists(f, "/decode_category"));
}
#endif

TEST(Failures, JobErrorsAreAllReportedBeforeAnyWork) {
  TempDir dir;
  const std::string job = dir.file("bad.toml"), res = dir.file("bad_results.h5");
  std::FILE* f = std::fopen(job.c_str(), "w");
  std::fprintf(f, "[job]\nstages = [\"simulate\", \"preprocess\", \"spectrum\"]\nrecording = \"%s\"\nresults = \"%s\"\n"
                  "[simulate]\nneurons = \"many\"\nalpah = 1.0\n[spectrum]\nnshuff = -1\n",
               dir.file("rec.h5").c_str(), res.c_str());
  std::fclose(f);
  const Outcome o = popcode(2, "run " + job + " --set spectrum.solver=gpu");
  EXPECT_EQ(o.code, 2) << o.output;
  for (const char* n : {"4 problems", "neurons: expected integer, found string", "unknown key 'alpah' (did you mean 'alpha'?)",
                        "nshuff: -1 is below the minimum 0", "'gpu' is not one of"}) {
    EXPECT_TRUE(contains(o.output, n)) << "missing '" << n << "' in:\n" << o.output;
  }
  EXPECT_FALSE(std::filesystem::exists(res));
  EXPECT_FALSE(std::filesystem::exists(dir.file("rec.h5")));
}

// Starts `command` in its own process group and, once `marker` appears in its output, sends `sig` to the
// popcode ranks matching `pattern` (as Slurm signals every task of a step), then to the launcher's group.
// Returns everything the command printed.
std::string run_until(const std::string& command, const std::string& marker, int sig, const std::string& pattern) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);
  close(fds[1]);
  std::string out;
  bool sent = false;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<std::size_t>(n));
    if (!sent && contains(out, marker)) {
      // The ranks sit in their own process groups under Open MPI's mpirun.
      shell("pkill -" + std::to_string(sig) + " -f '^" + std::string(POPCODE_BINARY) + " .*" + pattern + "'");
      kill(-pid, sig);
      sent = true;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out;
}

// A job whose spectrum stage runs for several seconds, to be interrupted.
constexpr const char* kLongSimulation = "neurons = 3000\nimages = 1500";
constexpr const char* kLongSpectrum = "nshuff = 20";

TEST(Failures, AKilledJobNeverLooksCompleteAndResumes) {
  TempDir dir;
  const std::string job = simulate_job(dir, "kill", kLongSimulation, kLongSpectrum), res = dir.file("kill_res.h5");
  const std::string out = run_until(mpiexec(2) + POPCODE_BINARY + " run " + job, "stage spectrum: start", SIGKILL, dir.path());
  ASSERT_TRUE(contains(out, "stage spectrum: start")) << out;
  ASSERT_TRUE(std::filesystem::exists(res));
  EXPECT_EQ(status_of(res), "running");
  {
    h5::File r = open(res);
    EXPECT_TRUE(h5::has_attribute(r, "/preprocess", "complete"));
    EXPECT_FALSE(h5::exists(r, "/spectrum") && h5::has_attribute(r, "/spectrum", "complete"));
  }
  const Outcome again = popcode(2, "run " + job + " --set spectrum.nshuff=2");
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "stage simulate: complete")) << again.output;
  EXPECT_EQ(status_of(res), "complete");
}

TEST(Failures, SigtermStopsTheJobWithoutCompletingIt) {
  TempDir dir;
  const std::string job = simulate_job(dir, "term", kLongSimulation, kLongSpectrum), res = dir.file("term_res.h5");
  const std::string out = run_until(mpiexec(2) + POPCODE_BINARY + " run " + job, "stage spectrum: start", SIGTERM, dir.path());
  EXPECT_TRUE(contains(out, "terminated by a signal")) << out;
  EXPECT_NE(status_of(res), "complete");
}

}  // namespace
}  // namespace popcode::e2e
