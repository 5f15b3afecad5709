#include "io/spectrum_source.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "io/h5.hpp"
#include "io/npy.hpp"
#include "src/errors.hpp"

namespace popcode {
namespace {
bool vector_like(const std::vector<std::int64_t>& shape) {
  return std::count_if(shape.begin(), shape.end(), [](std::int64_t d) { return d != 1; }) <= 1;
}
}  // namespace

std::vector<double> load_spectrum(const std::string& spec) {
  if (spec.size() > 4 && spec.substr(spec.size() - 4) == ".npy") {
    NpyArray a = read_npy(spec);
    if (!vector_like(a.shape)) {
      throw InputError(fmt::format("{}: expected a 1-D spectrum, found shape ({})", spec, fmt::join(a.shape, ", ")));
    }
    return a.values;
  }
  const auto sep = spec.find(":/");
  if (sep == std::string::npos) {
    throw UsageError(fmt::format("spectrum '{}': expected file.h5:/dataset or file.npy", spec));
  }
  const std::string file = spec.substr(0, sep), dataset = spec.substr(sep + 1);
  h5::File f = h5::File::open(file, h5::Access::read_only, ExitCode::bad_input);
  const auto shape = h5::shape_of(f, dataset);
  if (shape.type_class != H5T_FLOAT && shape.type_class != H5T_INTEGER) {
    throw InputError(fmt::format("{}: {}: expected numbers, found {}", file, dataset, shape.describe()));
  }
  if (!vector_like(shape.dims)) {
    throw InputError(fmt::format("{}: {}: expected a 1-D spectrum, found {}", file, dataset, shape.describe()));
  }
  return h5::read_all<double>(f, dataset);
}

}  // namespace popcode
