#include "src/provenance.hpp"

#include <fmt/format.h>
#include <hdf5.h>
#include <petscversion.h>
#include <slepcversion.h>

#include <algorithm>
#include <cstdlib>

#include "io/h5.hpp"
#include "src/blas_threads.hpp"
#include "src/timing.hpp"
#include "src/version.hpp"

namespace popcode {

std::vector<std::string> build_description() {
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  std::string mpi_line(mpi, static_cast<std::size_t>(len));
  mpi_line = mpi_line.substr(0, mpi_line.find_first_of("\n,"));
  return {
      fmt::format("popcode: {} (git {})", version_string(), git_revision()),
      fmt::format("compiler: {}", __VERSION__),
      fmt::format("MPI: {}", mpi_line),
      fmt::format("PETSc: {}.{}.{}", PETSC_VERSION_MAJOR, PETSC_VERSION_MINOR, PETSC_VERSION_SUBMINOR),
      fmt::format("SLEPc: {}.{}.{}", SLEPC_VERSION_MAJOR, SLEPC_VERSION_MINOR, SLEPC_VERSION_SUBMINOR),
      fmt::format("HDF5: {}.{}.{} (parallel)", H5_VERS_MAJOR, H5_VERS_MINOR, H5_VERS_RELEASE),
      fmt::format("BLAS: {}", blas_description()),
      fmt::format("options: torch={} cuda={} nccl={}", POPCODE_WITH_TORCH ? "on" : "off", POPCODE_WITH_CUDA ? "on" : "off",
                  POPCODE_WITH_NCCL ? "on" : "off"),
  };
}

Provenance::Provenance(const Context& ctx, const Job& job, std::string command_line)
    : job_text_(job.text), effective_job_(job.effective_toml()), command_line_(std::move(command_line)),
      start_(ctx.broadcast(timestamp_utc())), hosts_(ctx.hosts()) {
  for (const auto& o : job.overrides) overrides_ += o + "\n";
}

void Provenance::record(const Context& ctx, const std::string& stage, const std::string& status, const std::string& started) {
  const PhaseClock& clock = phase_clock();
  StageRecord r;
  r.name = stage;
  r.status = status;
  // Attributes written collectively must be identical on every rank: rank 0's clock decides.
  r.started = ctx.broadcast(started);
  r.finished = ctx.broadcast(timestamp_utc());
  r.wall = ctx.allgather(clock.wall_seconds());
  r.compute = ctx.allgather(clock.seconds(Phase::compute));
  r.comm = ctx.allgather(clock.seconds(Phase::comm));
  r.io = ctx.allgather(clock.seconds(Phase::io));
  r.peak_rss_bytes = ctx.allgather(static_cast<double>(peak_rss_bytes()));
  stages_.push_back(std::move(r));
}

void Provenance::write(const Context& ctx, const std::string& results, const std::string& status) const {
  h5::File f = h5::File::open_parallel(results, h5::Access::read_write, ctx.comm(), ExitCode::internal);
  h5::remove(f, "/provenance");
  h5::create_group(f, "/provenance");
  const std::string g = "/provenance";
  h5::write_attribute(f, g, "popcode_version", version_string());
  h5::write_attribute(f, g, "git_revision", git_revision());
  h5::write_attribute(f, g, "build", build_description());
  h5::write_attribute(f, g, "job_text", job_text_);
  h5::write_attribute(f, g, "effective_job", effective_job_);
  h5::write_attribute(f, g, "overrides", overrides_);
  h5::write_attribute(f, g, "command_line", command_line_);
  h5::write_attribute(f, g, "ranks", static_cast<std::int64_t>(ctx.size()));
  h5::write_attribute(f, g, "rank_hosts", hosts_);
  std::vector<std::string> unique = hosts_;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  h5::write_attribute(f, g, "hosts", unique);
  h5::write_attribute(f, g, "start_time", start_);
  h5::write_attribute(f, g, "end_time", ctx.broadcast(timestamp_utc()));
  h5::write_attribute(f, g, "status", status);
  for (const char* var : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NODELIST"}) {
    const char* local = std::getenv(var);
    const std::string value = ctx.broadcast(local ? std::string(local) : std::string());  // rank 0's environment
    if (!value.empty()) h5::write_attribute(f, g, var, value);
  }
  for (const StageRecord& r : stages_) {
    const std::string sg = g + "/stages/" + r.name;
    h5::create_group(f, sg);
    h5::write_attribute(f, sg, "status", r.status);
    h5::write_attribute(f, sg, "started", r.started);
    h5::write_attribute(f, sg, "finished", r.finished);
    const auto max_of = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); };
    h5::write_attribute(f, sg, "wall_s", max_of(r.wall));
    h5::write_attribute(f, sg, "compute_s", max_of(r.compute));
    h5::write_attribute(f, sg, "comm_s", max_of(r.comm));
    h5::write_attribute(f, sg, "io_s", max_of(r.io));
    h5::write_attribute(f, sg, "peak_rss_bytes_max", max_of(r.peak_rss_bytes));
    // Per-rank table: one row per rank.
    std::vector<double> table;
    for (std::size_t i = 0; i < r.wall.size(); ++i) {
      table.insert(table.end(), {r.wall[i], r.compute[i], r.comm[i], r.io[i], r.peak_rss_bytes[i]});
    }
    h5::write_all<double>(f, sg + "/per_rank", {static_cast<std::int64_t>(r.wall.size()), 5}, table);
    h5::write_attribute(f, sg + "/per_rank", "columns",
                        std::vector<std::string>{"wall_s", "compute_s", "comm_s", "io_s", "peak_rss_bytes"});
    h5::write_attribute(f, sg + "/per_rank", "description",
                        "per-rank wall time split into compute, communication and I/O, and peak resident memory");
  }
  f.close();
}

}  // namespace popcode
