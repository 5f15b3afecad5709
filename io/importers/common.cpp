// Helpers shared by the importers (kept apart from import.cpp so the format readers and their fuzz targets
// build without the MPI import driver).
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "io/importers/formats.hpp"
#include "io/recording.hpp"

namespace popcode {

std::vector<float> Importer::load_whole(const BulkInfo& bulk) {
  throw InternalError(fmt::format("{}: this importer cannot load a whole matrix", bulk.variable));
}

std::vector<float> Importer::load_images() { return {}; }

std::string shape_text(const std::vector<std::int64_t>& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s;
}

void require_same_length(const std::string& file, const std::string& what, std::int64_t n, const std::string& against,
                         std::int64_t expected) {
  if (n != expected) {
    throw InputError(fmt::format("{}: {} has {} entries but {} has {} presentations", file, what, n, against, expected));
  }
}

std::vector<std::int64_t> dense_stimulus_ids(const std::vector<std::int64_t>& keys, const std::vector<std::int64_t>& gray,
                                             std::vector<std::int32_t>& ids) {
  std::map<std::int64_t, std::int32_t> index;
  for (std::int64_t k : keys)
    if (std::find(gray.begin(), gray.end(), k) == gray.end()) index.emplace(k, 0);
  std::vector<std::int64_t> distinct;
  distinct.reserve(index.size());
  for (auto& [key, id] : index) {
    id = static_cast<std::int32_t>(distinct.size());
    distinct.push_back(key);
  }
  ids.resize(keys.size());
  for (std::size_t p = 0; p < keys.size(); ++p) {
    const auto it = index.find(keys[p]);
    ids[p] = it == index.end() ? kGrayScreenId : it->second;
  }
  return distinct;
}

}  // namespace popcode
