// The command line as users meet it: `powerlaw` against the published known answers, `run` with restart
// and provenance, help and usage errors, the embedded default job and `summarize` of its results, and the
// guides (docs/results.md, format.md, simulator.md) against every dataset and attribute the jobs write.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "e2e/e2e_util.hpp"

#ifdef POPCODE_HAVE_MATIO
#include <matio.h>
#endif

namespace popcode::e2e {
namespace {

// The names a guide gives in backticks, as patterns: "{a,b}" is either, "*" and "<name>" stand for any
// text within one path component (e.g. `truth/corr_{rrr,ridge,sta}`, `different_*`, `k<k>_status`).
std::vector<std::regex> documented_names(const std::string& markdown) {
  std::vector<std::regex> out;
  for (std::size_t open = markdown.find('`'); open != std::string::npos; open = markdown.find('`', open + 1)) {
    const std::size_t close = markdown.find('`', open + 1);
    if (close == std::string::npos) break;
    std::string token = markdown.substr(open + 1, close - open - 1);
    open = close;
    if (!token.empty() && token[0] == '/') token.erase(0, 1);  // `/responses` names the dataset `responses`
    if (token.empty()) continue;
    std::string re;
    int braces = 0;
    for (std::size_t i = 0; i < token.size(); ++i) {
      const char c = token[i];
      if (c == '{') {
        ++braces;
        re += '(';
      } else if (c == '}' && braces > 0) {
        --braces;
        re += ')';
      } else if (c == ',' && braces > 0) {
        re += '|';
      } else if (c == '*') {
        re += "[^/]*";
      } else if (c == '<' && token.find('>', i) != std::string::npos) {
        i = token.find('>', i);
        re += "[^/]+";
      } else {
        if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) re += '\\';
        re += c;
      }
    }
    if (braces == 0) out.emplace_back(re);
  }
  return out;
}

// Whether the last one, two, three or four components of `path` match a documented name.
bool is_documented(const std::string& path, const std::vector<std::regex>& names) {
  std::size_t cut = path.size();
  for (int parts = 1; parts <= 4; ++parts) {
    cut = path.rfind('/', cut == 0 ? 0 : cut - 1);
    if (cut == std::string::npos) return false;
    const std::string tail = path.substr(cut + 1);
    for (const std::regex& re : names)
      if (std::regex_match(tail, re)) return true;
    if (cut == 0) return false;
  }
  return false;
}

// Every attribute name in the file but `description`, with the object that carries it (one entry per name).
std::map<std::string, std::string> attribute_names(const h5::File& f) {
  std::map<std::string, std::string> out;
  struct Visit {
    std::map<std::string, std::string>* out;
    std::string object;
  } v{&out, ""};
  H5Ovisit(f.id(), H5_INDEX_NAME, H5_ITER_INC,
           [](hid_t root, const char* name, const H5O_info_t*, void* data) -> herr_t {
             auto* visit = static_cast<Visit*>(data);
             h5::Handle object(H5Oopen(root, name, H5P_DEFAULT));
             visit->object = std::string("/") + (std::string(name) == "." ? "" : name);
             hsize_t at = 0;
             const auto collect = [](hid_t, const char* attribute, const H5A_info_t*, void* d) -> herr_t {
               auto* seen = static_cast<Visit*>(d);
               if (std::string(attribute) != "description") seen->out->emplace(attribute, seen->object);
               return 0;
             };
             return H5Aiterate2(object.id(), H5_INDEX_NAME, H5_ITER_INC, &at, collect, data) < 0 ? -1 : 0;
           },
           &v);
  return out;
}

// Every dataset and attribute name in `file` is named in one of the guides `docs`, so that an h5py user can look
// it up. `at_least` datasets are expected: a check that found nothing would pass.
void expect_documented(const std::string& file, std::size_t at_least,
                       const std::vector<std::string>& docs = {"docs/results.md"}) {
  std::string text, doc;
  for (const std::string& d : docs) {
    std::ifstream guide(std::string(POPCODE_SOURCE_DIR) + "/" + d);
    text += std::string(std::istreambuf_iterator<char>(guide), {}) + "\n";
    doc += (doc.empty() ? "" : " or ") + d;
  }
  const std::vector<std::regex> names = documented_names(text);
  ASSERT_GT(names.size(), 20u) << doc;
  h5::File f = open(file);
  const std::vector<std::string> datasets = datasets_under(f, "/");
  EXPECT_GE(datasets.size(), at_least);
  for (const std::string& d : datasets) EXPECT_TRUE(is_documented(d, names)) << d << " is not in " << doc;
  // Attributes (options, counts, provenance) by name alone.
  const auto attributes = attribute_names(f);
  EXPECT_GE(attributes.size(), 10u);
  for (const auto& [name, object] : attributes)
    EXPECT_TRUE(is_documented("/" + name, names)) << "attribute " << name << " of " << object << " is not in " << doc;
}

double parse_alpha(const std::string& out) {
  std::smatch m;
  static const std::regex re("alpha=([-+0-9.eE]+)");
  if (!std::regex_search(out, m, re)) return std::nan("");
  return std::stod(m[1]);
}

#ifdef POPCODE_HAVE_MATIO
// Writes a 1-D float64 .npy file.
void write_npy(const std::string& path, const std::vector<double>& v) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(v.size()) + ",), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff), static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
}

TEST(Commands, PowerlawReproducesTheAlphaEphysKnownAnswers) {
  const std::string mat_path = std::string(POPCODE_SHARED_DATA) + "/stringer2019/ephys_eigsControls.mat";
  if (!std::filesystem::exists(mat_path)) GTEST_SKIP() << "known-answer file not present: " << mat_path;
  TempDir dir;
  mat_t* mat = Mat_Open(mat_path.c_str(), MAT_ACC_RDONLY);
  ASSERT_NE(mat, nullptr);
  matvar_t* spec = Mat_VarRead(mat, "specEphys");
  matvar_t* alpha = Mat_VarRead(mat, "alphaEphys");
  const int neurons[3] = {256, 512, 877};
  const std::string h5path = dir.file("spectra.h5");
  {
    h5::File f = h5::File::create(h5path);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j) {
        matvar_t* cell = Mat_VarGetCell(spec, i + 3 * j);
        const auto* d = static_cast<const double*>(cell->data);
        std::vector<double> v(d, d + cell->nbytes / cell->data_size);
        h5::write_all<double>(f, "/ss_" + std::to_string(i) + std::to_string(j), {static_cast<std::int64_t>(v.size())}, v);
        if (i == 2 && j == 1) write_npy(dir.file("ss.npy"), v);
      }
  }
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) {
      const std::string range = "10:" + std::to_string(std::min(500, neurons[i] - 2));
      const Outcome o = popcode(1, "powerlaw " + h5path + ":/ss_" + std::to_string(i) + std::to_string(j) + " --range " + range);
      ASSERT_EQ(o.code, 0) << o.output;
      EXPECT_NEAR(parse_alpha(o.output), static_cast<const double*>(alpha->data)[i + 3 * j], 1e-9) << o.output;
    }
  const Outcome npy = popcode(1, "powerlaw " + dir.file("ss.npy") + " --range 10:500");
  ASSERT_EQ(npy.code, 0) << npy.output;
  EXPECT_NEAR(parse_alpha(npy.output), 1.2865475761, 1e-9);
  EXPECT_EQ(popcode(1, "powerlaw " + h5path + ":/ss_00 --range 5:2").code, 2);
  EXPECT_EQ(popcode(1, "powerlaw " + h5path + ":/nothing").code, 3);
  EXPECT_EQ(popcode(1, "powerlaw " + h5path + " --range 10:20").code, 2);
  Mat_VarFree(spec);
  Mat_VarFree(alpha);
  Mat_Close(mat);
}
#endif

TEST(Commands, HelpAndUsageErrors) {
  const Outcome help = popcode(1, "--help");
  EXPECT_EQ(help.code, 0);
  for (const char* s : {"run", "simulate", "preprocess", "spectrum", "powerlaw", "Exit codes"}) EXPECT_TRUE(contains(help.output, s));
  const Outcome stage_help = popcode(1, "spectrum --help");
  EXPECT_EQ(stage_help.code, 0);
  EXPECT_TRUE(contains(stage_help.output, "--nshuff"));
  EXPECT_EQ(popcode(1, "frobnicate").code, 2);
  EXPECT_EQ(popcode(1, "simulate --neurons 10").code, 2);  // --out is required
  EXPECT_EQ(popcode(2, "simulate --out /tmp/x.h5 --neurons ten").code, 2);
}

TEST(Commands, EveryShippedJobFileValidates) {
  TempDir dir;
  const std::string input = dir.file("input.h5");
  std::ofstream(input) << "placeholder: --check validates the job, it does not read the recording";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(POPCODE_SOURCE_DIR) + "/jobs")) {
    if (entry.path().extension() != ".toml") continue;
    const std::string text = [&] {
      std::ifstream in(entry.path());
      return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    // Jobs that simulate write their recording; the others read one.
    const std::string recording = contains(text, "\"simulate\"") ? dir.file("new.h5") : input;
    const Outcome o = popcode(1, "run " + entry.path().string() + " --check --set job.recording=" + recording);
    EXPECT_EQ(o.code, 0) << entry.path() << ":\n" << o.output;
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(Commands, InfoReportsOpenBlasAtRunTime) {
  const Outcome o = popcode(1, "info");
  ASSERT_EQ(o.code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, "BLAS: OpenBLAS")) << o.output;
  EXPECT_TRUE(contains(o.output, "1 thread")) << o.output;
}

TEST(Commands, RerunsSkipCompleteStagesAndProvenanceIsComplete) {
  TempDir dir;
  const std::string job = simulate_job(dir, "j", "neurons = 400\nimages = 200", "nshuff = 2"), res = dir.file("j_res.h5");
  const Outcome first = popcode(2, "run " + job);
  ASSERT_EQ(first.code, 0) << first.output;
  const double alpha = scalar(res, "/spectrum/alpha");
  {
    h5::File f = open(res);
    EXPECT_EQ(h5::read_string_attribute(f, "/", "popcode_status"), "complete");
    EXPECT_EQ(h5::read_int_attribute(f, "/provenance", "ranks"), 2);
    EXPECT_FALSE(h5::read_string_attribute(f, "/provenance", "git_revision").empty());
    EXPECT_TRUE(contains(h5::read_string_attribute(f, "/provenance", "job_text"), "nshuff = 2"));
    EXPECT_TRUE(contains(h5::read_string_attribute(f, "/provenance", "command_line"), "run"));
    EXPECT_FALSE(h5::read_string_attribute(f, "/provenance", "end_time").empty());
    for (const char* stage : {"simulate", "preprocess", "spectrum"}) {
      const std::string g = std::string("/provenance/stages/") + stage;
      EXPECT_EQ(h5::read_string_attribute(f, g, "status"), "ran");
      const double wall = h5::read_double_attribute(f, g, "wall_s");
      const double parts = h5::read_double_attribute(f, g, "compute_s") + h5::read_double_attribute(f, g, "comm_s") +
                           h5::read_double_attribute(f, g, "io_s");
      EXPECT_GT(wall, 0);
      EXPECT_LE(parts, 3 * wall + 1e-3);  // per-kind maxima over ranks, each <= the wall time
      EXPECT_EQ(h5::shape_of(f, g + "/per_rank").dims, (std::vector<std::int64_t>{2, 5}));
    }
    EXPECT_EQ(h5::read_scalar(f, "/truth/alpha"), 1.0);
  }
  const Outcome second = popcode(2, "run " + job);
  ASSERT_EQ(second.code, 0) << second.output;
  for (const char* s : {"stage simulate: complete", "stage preprocess: complete", "stage spectrum: complete"}) {
    EXPECT_TRUE(contains(second.output, s)) << second.output;
  }
  EXPECT_EQ(scalar(res, "/spectrum/alpha"), alpha);
  {
    h5::File f = open(res);
    EXPECT_EQ(h5::read_string_attribute(f, "/provenance/stages/spectrum", "status"), "skipped: complete in results");
  }
  // A changed option re-runs what depends on it, and only that.
  const Outcome third = popcode(2, "run " + job + " --set spectrum.nshuff=3");
  ASSERT_EQ(third.code, 0) << third.output;
  EXPECT_TRUE(contains(third.output, "stage simulate: complete")) << third.output;
  EXPECT_TRUE(contains(third.output, "stage spectrum: start")) << third.output;
  const Outcome forced = popcode(2, "run " + job + " --force --set spectrum.nshuff=3");
  ASSERT_EQ(forced.code, 0) << forced.output;
  EXPECT_TRUE(contains(forced.output, "stage simulate: start")) << forced.output;
}

TEST(Commands, DemoJobFinishesInUnderTwoMinutes) {
  TempDir dir;
  const std::string job = std::string(POPCODE_SOURCE_DIR) + "/jobs/demo.toml";
  const Outcome check = popcode(1, "run " + job + " --check");
  ASSERT_EQ(check.code, 0) << check.output;
  const auto t0 = std::chrono::steady_clock::now();
  const Outcome o = shell("cd " + dir.path() + " && " + mpiexec(2) + POPCODE_BINARY + " run " + job);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(o.code, 0) << o.output;
  std::printf("demo job: %.1f s on 2 ranks\n", seconds);
  EXPECT_LT(seconds, 120.0);
  const std::string res = dir.file("demo_results.h5");
  EXPECT_EQ(status_of(res), "complete");
  EXPECT_NEAR(scalar(res, "/spectrum/alpha"), scalar(res, "/truth/alpha_signal"), 0.1);
  expect_documented(res, 300);  // what the demo does not write: OptionalOutputsAreDocumentedToo

  // `summarize` gives each stage's headline number: every column filled, and equal to the dataset it names.
  const Outcome sum = popcode(1, "summarize " + res);
  ASSERT_EQ(sum.code, 0) << sum.output;
  const auto split = [](const std::string& line) {
    std::vector<std::string> out(1);
    for (char c : line) {
      if (c == ',') {
        out.emplace_back();
      } else {
        out.back().push_back(c);
      }
    }
    return out;
  };
  std::istringstream lines(sum.output);
  std::string head_line, row_line;
  while (std::getline(lines, head_line) && head_line.rfind("file,", 0) != 0) {
  }
  ASSERT_TRUE(std::getline(lines, row_line)) << sum.output;
  const auto head = split(head_line), row = split(row_line);
  ASSERT_EQ(head.size(), row.size()) << sum.output;
  const std::vector<std::pair<std::string, std::string>> headline = {
      {"alpha", "/spectrum/alpha"},
      {"distances_d_prime", "/distances/zscored/d_prime"},
      {"identity_accuracy", "/decode_identity/accuracy"},
      {"dimension_d_fit_k9", "/dimension/k9/d_fit"},
      {"spont_d_fit_k9", "/dimension_spont/k9/d_fit"},
      {"cluster_repeat_agreement", "/cluster/repeat_agreement"},
      {"rf_rrr_normalized_ve", "/rf/rrr/normalized_variance_explained"},
      {"category_balanced_accuracy", "/decode_category/balanced_accuracy"}};
  for (const auto& [column, dataset] : headline) {
    const auto at = std::find(head.begin(), head.end(), column);
    ASSERT_NE(at, head.end()) << column << " is not a column: " << head_line;
    const std::string& cell = row[static_cast<std::size_t>(at - head.begin())];
    ASSERT_FALSE(cell.empty()) << column << " is empty: " << row_line;
    const double want = scalar(res, dataset);
    EXPECT_NEAR(std::stod(cell), want, 1e-9 * std::max(1.0, std::abs(want))) << column;
  }
  for (std::size_t i = 0; i < row.size(); ++i) EXPECT_FALSE(row[i].empty()) << head[i] << " is empty: " << row_line;
}

// What the demo leaves out, on small recordings: co-clustering, the Gabor fits, sampled Dijkstra sources, the MLP
// category decoder, the spatial CNN, and (on gratings) the orientation decoder.
TEST(Commands, OptionalOutputsAreDocumentedToo) {
  TempDir dir;
  const std::string job = simulate_job(
      dir, "optional", "neurons = 300\nimages = 120\nheight = 12\nwidth = 16\nplanes = 2\nspont_timepoints = 300\nseed = 3",
      "nshuff = 2", ", \"dimension\", \"dimension-spont\", \"cluster\", \"rf\", \"decode-category\", \"decode-spatial\"",
      "[preprocess]\nspont_pcs = 4\n[dimension]\nsources = 40\nsource_groups = 4\n[dimension-spont]\nsources = 40\n"
      "source_groups = 4\n[cluster]\nk = 3\ncocluster_k = 3\nbicluster_k = 3\n[rf]\ngabor_fit = true\n"
      "gabor_frequencies = \"0.09\"\ngabor_sizes = \"2\"\ngabor_ratios = \"1\"\ngabor_orientations = 2\ngabor_phases = 2\n"
      "gabor_row_offsets = \"0\"\ngabor_col_offsets = \"0\"\n[decode-category]\nmodel = \"mlp\"\nhidden = \"8\"\n"
      "folds = 2\nepochs = 1\n[decode-spatial]\ngrid = \"8,8,2\"\nchannels = \"2,2,2\"\nfolds = 2\nepochs = 1\n");
  const Outcome o = popcode(2, "run " + job);
  ASSERT_EQ(o.code, 0) << o.output;
  const std::string res = dir.file("optional_res.h5");
  {
    h5::File f = open(res);
    for (const char* group : {"/cluster/cocluster", "/cluster/bicluster", "/rf/gabor", "/dimension/k9/histogram/count_se",
                              "/decode_category", "/decode_spatial"})
      ASSERT_TRUE(h5::exists(f, group)) << group << " missing: the job no longer writes what this test is for";
  }
  expect_documented(res, 200);
  // The orientation decoder, on gratings.
  const std::string gratings = simulate_job(
      dir, "gratings", "stimulus = \"gratings\"\nneurons = 200\nimages = 60\nspont_timepoints = 200\nseed = 3",
      "nshuff = 2", ", \"decode-orientation\"",
      "[preprocess]\nspont_pcs = 4\n[decode-orientation]\nhidden = \"8\"\nfolds = 2\nepochs = 1\n");
  const Outcome g = popcode(2, "run " + gratings);
  ASSERT_EQ(g.code, 0) << g.output;
  const std::string gres = dir.file("gratings_res.h5");
  {
    h5::File gf = open(gres);
    ASSERT_TRUE(h5::exists(gf, "/decode_orientation")) << "the job no longer writes what this test is for";
  }
  expect_documented(gres, 40);
  // The simulated recordings themselves, against the recording format and the simulator's page.
  expect_documented(dir.file("optional_rec.h5"), 10, {"docs/format.md", "docs/simulator.md"});
  expect_documented(dir.file("gratings_rec.h5"), 10, {"docs/format.md", "docs/simulator.md"});
}

}  // namespace
}  // namespace popcode::e2e
