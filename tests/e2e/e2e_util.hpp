#pragma once
// Helpers for the end-to-end tests: run popcode under mpiexec, read results files, compare them.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace popcode::e2e {

struct Outcome {
  int code = -1;
  std::string output;  // stdout and stderr
};

inline Outcome shell(const std::string& command) {
  Outcome o;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return o;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) o.output += buf;
  const int status = pclose(p);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

inline std::string mpiexec(int ranks) {
  return std::string(POPCODE_MPIEXEC) + " -n " + std::to_string(ranks) + " --oversubscribe ";
}

// `popcode ARGS` on `ranks` ranks.
inline Outcome popcode(int ranks, const std::string& args) {
  return shell(mpiexec(ranks) + POPCODE_BINARY + " " + args);
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/popcode_e2e_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes NAME.toml in `dir`: simulate -> preprocess -> spectrum with the given option lines, recording
// NAME_rec.h5 and results NAME_res.h5. Returns the job file's path.
// `extra_stages` run after spectrum (e.g. ", \"decode-identity\""); `extra_sections` is appended TOML.
inline std::string simulate_job(const TempDir& dir, const std::string& name, const std::string& simulate,
                                const std::string& spectrum, const std::string& extra_stages = "",
                                const std::string& extra_sections = "") {
  const std::string path = dir.file(name + ".toml");
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fprintf(f, "[job]\nname = \"%s\"\nstages = [\"simulate\", \"preprocess\", \"spectrum\"%s]\nrecording = \"%s\"\n"
                  "results = \"%s\"\n[simulate]\n%s\n[spectrum]\n%s\n%s\n",
               name.c_str(), extra_stages.c_str(), dir.file(name + "_rec.h5").c_str(), dir.file(name + "_res.h5").c_str(),
               simulate.c_str(), spectrum.c_str(), extra_sections.c_str());
  std::fclose(f);
  return path;
}

inline h5::File open(const std::string& path) { return h5::File::open(path, h5::Access::read_only, ExitCode::internal); }

inline double scalar(const std::string& file, const std::string& dataset) {
  h5::File f = open(file);
  return h5::read_scalar(f, dataset);
}

inline std::string status_of(const std::string& file) {
  h5::File f = open(file);
  return h5::has_attribute(f, "/", "popcode_status") ? h5::read_string_attribute(f, "/", "popcode_status") : "";
}

// Every dataset below `group` (recursive), as absolute paths.
inline std::vector<std::string> datasets_under(const h5::File& f, const std::string& group) {
  std::vector<std::string> out;
  H5O_info_t self;
  if (H5Oget_info_by_name(f.id(), group.c_str(), &self, H5P_DEFAULT) >= 0 && self.type == H5O_TYPE_DATASET) return {group};
  struct Visit {
    std::string prefix;
    std::vector<std::string>* out;
  } v{group == "/" ? "" : group, &out};
  h5::Handle g(H5Oopen(f.id(), group.c_str(), H5P_DEFAULT));
  H5Ovisit(g.id(), H5_INDEX_NAME, H5_ITER_INC,
           [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
             auto* visit = static_cast<Visit*>(data);
             if (info->type == H5O_TYPE_DATASET) visit->out->push_back(visit->prefix + "/" + name);
             return 0;
           },
           &v);
  return out;
}

// Largest |a - b| / max|a| over each numeric dataset under `group`; fails the test above `rtol`.
inline void expect_same_results(const std::string& a, const std::string& b, const std::string& group, double rtol) {
  h5::File fa = open(a), fb = open(b);
  const auto names = datasets_under(fa, group);
  ASSERT_FALSE(names.empty()) << "no datasets under " << group << " in " << a;
  for (const std::string& name : names) {
    const auto sa = h5::shape_of(fa, name);
    if (sa.type_class != H5T_FLOAT && sa.type_class != H5T_INTEGER) continue;
    ASSERT_TRUE(h5::exists(fb, name)) << name << " missing from " << b;
    EXPECT_EQ(sa.dims, h5::shape_of(fb, name).dims) << name;
    const auto va = h5::read_all<double>(fa, name), vb = h5::read_all<double>(fb, name);
    ASSERT_EQ(va.size(), vb.size()) << name;
    double scale = 0, worst = 0;
    for (std::size_t i = 0; i < va.size(); ++i) {
      if (std::isnan(va[i]) || std::isnan(vb[i])) {
        EXPECT_EQ(std::isnan(va[i]), std::isnan(vb[i])) << name << "[" << i << "]";
        continue;
      }
      scale = std::max(scale, std::abs(va[i]));
      worst = std::max(worst, std::abs(va[i] - vb[i]));
    }
    EXPECT_LE(worst, rtol * scale) << name << ": max |diff| " << worst << " vs scale " << scale;
  }
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace popcode::e2e
