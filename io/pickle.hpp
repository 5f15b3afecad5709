#pragma once
// A pickle reader for exactly one thing: the dict of arrays that np.save(dict) writes (a 0-d object array whose
// single element is the dict), as pickle protocols 2 to 5 encode it. This is a data decoder, not a Python
// unpickler: it never imports or calls anything. Globals are matched against a short whitelist of numpy's
// array-reconstruction functions (numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype,
// numpy.core.multiarray.scalar, numpy.core.numeric._frombuffer, each also under numpy._core for numpy 2) plus
// _codecs.encode and bytes (how protocol 2 spells a bytes object); any other global is refused by name.
//
// Dict values may be numpy arrays of the dtypes io/npy.hpp reads, numpy scalars and Python float/int/bool
// (returned as 0-d arrays: '<f8', '<i8', '|b1') and str or bytes (returned in `strings` with shape ()). Other
// values (nested dicts, lists, None, object arrays...) are an InputError naming the key and what was found.
//
// Limits, so that hostile input costs bounded time and memory: at most 1M stack entries, 1M memo entries and 4M
// objects, and the arrays returned may not take more than 64 MiB + 40 x the pickle size in memory (an honest
// pickle expands at most about 33-fold, for 'S1' strings; more means one array is stored under many keys).
#include <map>
#include <span>
#include <string>

#include "io/npy.hpp"

namespace popcode {

// `name` (usually the file name) starts every error message.
std::map<std::string, NpyArray> parse_pickled_dict(std::span<const unsigned char> pickle, const std::string& name);

}  // namespace popcode
