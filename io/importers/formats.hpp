#pragma once
// Constructors of the per-format importers (one .cpp each in io/importers/) and helpers they share.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/importers/import.hpp"

namespace popcode {

std::unique_ptr<Importer> make_mat_importer(const std::string& path, const ImportOptions& options);
std::unique_ptr<Importer> make_numpy_importer(const std::string& path, const ImportOptions& options);
std::unique_ptr<Importer> make_sensorium_importer(const std::string& path, const ImportOptions& options);
std::unique_ptr<Importer> make_nwb_importer(const std::string& path, const ImportOptions& options);

// Maps arbitrary stimulus keys (1-based MAT ids, Sensorium frame ids...) to dense ids 0..images-1 in
// increasing key order; keys listed in `gray` become kGrayScreenId. Returns the distinct keys in id order.
std::vector<std::int64_t> dense_stimulus_ids(const std::vector<std::int64_t>& keys, const std::vector<std::int64_t>& gray,
                                             std::vector<std::int32_t>& ids);

// "3 x 4" style shape text.
std::string shape_text(const std::vector<std::int64_t>& shape);

// Checks a stimulus/presentation count against the responses and throws InputError naming both variables.
void require_same_length(const std::string& file, const std::string& what, std::int64_t n, const std::string& against,
                         std::int64_t expected);

}  // namespace popcode
