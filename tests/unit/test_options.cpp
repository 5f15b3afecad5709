#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "src/errors.hpp"
#include "src/job.hpp"
#include "src/options.hpp"

namespace popcode {
namespace {

namespace fs = std::filesystem;

class JobFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("popcode_job_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    recording_ = (dir_ / "rec.h5").string();
    std::ofstream(recording_) << "placeholder";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& text) {
    const std::string path = (dir_ / "job.toml").string();
    std::ofstream(path) << text;
    return path;
  }
  // The UsageError message of loading `text` (fails the test when loading succeeds).
  std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
    try {
      load_job_file(write(text), sets, "");
    } catch (const UsageError& e) {
      return e.what();
    }
    ADD_FAILURE() << "job loaded without error:\n" << text;
    return {};
  }
  fs::path dir_;
  std::string recording_;
};

TEST(Options, ParsesEachTypeAndExplainsFailures) {
  OptionSpec i{"n", OptionType::integer, std::int64_t{1}, "", {}, 0.0, 10.0, {}};
  std::string err;
  EXPECT_EQ(std::get<std::int64_t>(*parse_option(i, "7", err)), 7);
  EXPECT_FALSE(parse_option(i, "7.5", err));
  EXPECT_NE(err.find("expected an integer"), std::string::npos);
  EXPECT_NE(check_option(i, std::int64_t{11}), "");
  EXPECT_EQ(check_option(i, std::int64_t{10}), "");
  OptionSpec b{"b", OptionType::boolean, true, "", {}, {}, {}, {}};
  EXPECT_FALSE(std::get<bool>(*parse_option(b, "false", err)));
  EXPECT_FALSE(parse_option(b, "maybe", err));
  OptionSpec c{"c", OptionType::text, std::string("auto"), "", {"auto", "lapack"}, {}, {}, {}};
  EXPECT_EQ(check_option(c, std::string("lapack")), "");
  EXPECT_NE(check_option(c, std::string("scalapack")).find("not one of"), std::string::npos);
  EXPECT_EQ(closest_match("nshuf", {"nshuff", "seed"}), "nshuff");
  EXPECT_EQ(closest_match("zzzzzz", {"nshuff", "seed"}), "");
}

TEST_F(JobFiles, LoadsAValidJobWithDefaultsAndOverrides) {
  const std::string text = "[job]\nstages = [\"simulate\", \"preprocess\", \"spectrum\"]\nrecording = \"" + recording_ +
                           "\"\n[simulate]\nalpha = 2\n[spectrum]\nnshuff = 3\n";
  const Job job = load_job_file(write(text), {"spectrum.seed=5", "preprocess.spont_pcs=4"}, "");
  ASSERT_EQ(job.stages.size(), 3u);
  EXPECT_EQ(job.stage("spectrum")->options.integer("nshuff"), 3);
  EXPECT_EQ(job.stage("spectrum")->options.integer("seed"), 5);
  EXPECT_DOUBLE_EQ(job.stage("simulate")->options.real("alpha"), 2.0);  // integers are accepted for numbers
  EXPECT_EQ(job.stage("preprocess")->options.integer("spont_pcs"), 4);
  EXPECT_TRUE(job.stage("preprocess")->options.flag("drop_gray"));   // default
  EXPECT_EQ(job.results, "job_results.h5");
  // The effective job reproduces itself.
  const Job again = load_job_file(write(job.effective_toml()), {}, "");
  for (std::size_t s = 0; s < job.stages.size(); ++s) {
    EXPECT_EQ(again.stages[s].options.canonical(), job.stages[s].options.canonical());
  }
}

TEST_F(JobFiles, ReportsEveryProblemAtOnce) {
  const std::string text = "[job]\nstages = [\"preprocess\", \"spectrum\", \"spectrm\"]\nrecording = \"" + recording_ +
                           "\"\nbogus = 1\n[spectrum]\nnshuf = 3\nnshuff = \"ten\"\ncomponents = -1\nsolver = \"magic\"\n"
                           "[gabor]\nx = 1\n";
  const std::string err = error_of(text, {"spectrum.seed=abc", "nosuch.key=1"});
  for (const char* needle : {"unknown stage 'spectrm' (did you mean 'spectrum'?)", "[job] unknown key 'bogus'",
                             "unknown key 'nshuf' (did you mean 'nshuff'?)", "nshuff: expected integer, found string",
                             "components: -1 is below the minimum 0", "'magic' is not one of", "unknown table [gabor]",
                             "--set 'spectrum.seed=abc': expected an integer", "'nosuch' is not a stage"}) {
    EXPECT_NE(err.find(needle), std::string::npos) << "missing '" << needle << "' in:\n" << err;
  }
}

TEST_F(JobFiles, ChecksStageOrderAndInputs) {
  EXPECT_NE(error_of("[job]\nstages = [\"spectrum\"]\nrecording = \"" + recording_ + "\"\n")
                .find("stage 'spectrum' needs 'preprocess' earlier"), std::string::npos);
  EXPECT_NE(error_of("[job]\nstages = [\"preprocess\"]\nrecording = \"/nonexistent/x.h5\"\n").find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of("[job]\nstages = [\"preprocess\"]\n").find("job.recording is not set"), std::string::npos);
  EXPECT_NE(error_of("[job]\nrecording = \"x\"\n").find("stages is missing"), std::string::npos);
  EXPECT_NE(error_of("[job\nstages=1").find("TOML syntax error"), std::string::npos);
  EXPECT_NE(error_of("[job]\nstages = [\"preprocess\"]\nrecording = \"" + recording_ + "\"\n[spectrum]\nnshuff = 1\n")
                .find("not in job.stages"), std::string::npos);
  // A simulated recording need not exist beforehand.
  EXPECT_NO_THROW(load_job_file(write("[job]\nstages = [\"simulate\", \"preprocess\"]\nrecording = \"" +
                                      (dir_ / "new.h5").string() + "\"\n"), {}, ""));
}

TEST(Options, PositiveLists) {
  EXPECT_EQ(parse_positive_list("4,9,13", "k", "4,9,13"), (std::vector<std::int64_t>{4, 9, 13}));
  EXPECT_EQ(parse_positive_list(" 512 , 128", "hidden", "1024,128"), (std::vector<std::int64_t>{512, 128}));
  EXPECT_TRUE(parse_positive_list("none", "hidden", "1024,128", true).empty());
  EXPECT_TRUE(parse_positive_list("", "hidden", "1024,128", true).empty());
  EXPECT_THROW(parse_positive_list("", "k", "4,9,13"), UsageError);
  EXPECT_THROW(parse_positive_list("4,,9", "k", "4,9,13"), UsageError);
  EXPECT_THROW(parse_positive_list("4,0", "k", "4,9,13"), UsageError);
  EXPECT_THROW(parse_positive_list("4,9x", "k", "4,9,13"), UsageError);
  EXPECT_THROW(parse_positive_list("-3", "k", "4,9,13"), UsageError);
  const std::string msg = positive_list_check("hidden", "1024,128", true)(OptionValue{std::string("512,abc")});
  EXPECT_NE(msg.find("hidden = \"512,abc\": \"abc\" is not a positive integer"), std::string::npos) << msg;
  EXPECT_EQ(positive_list_check("k", "4,9,13")(OptionValue{std::string("4,9")}), "");
}

TEST_F(JobFiles, StageCommandsPullInWhatTheyNeed) {
  const Job job = make_stage_job("spectrum", recording_, (dir_ / "out.h5").string(), {{"nshuff", "0"}}, {"preprocess.center=false"});
  ASSERT_EQ(job.stages.size(), 2u);
  EXPECT_EQ(job.stages[0].spec->name, "preprocess");
  EXPECT_FALSE(job.stage("preprocess")->options.flag("center"));
  EXPECT_EQ(job.stage("spectrum")->options.integer("nshuff"), 0);
  EXPECT_THROW(make_stage_job("spectrum", recording_, "out.h5", {{"nshuff", "-2"}}, {}), UsageError);
}

}  // namespace
}  // namespace popcode
