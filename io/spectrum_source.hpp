#pragma once
// Reads a 1-D spectrum given as "file.h5:/path/to/dataset" or "file.npy" (used by `popcode powerlaw`).
#include <string>
#include <vector>

namespace popcode {

// Throws UsageError for a malformed specification, InputError for an unreadable or non-1-D source.
std::vector<double> load_spectrum(const std::string& spec);

}  // namespace popcode
