// Helpers shared by the .npy / .npz / pickle unit tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "src/errors.hpp"

namespace popcode::testing {

// A file of the committed NumPy fixtures (tests/fixtures/numpy/, made by make_fixtures.py).
inline std::string numpy_fixture(const std::string& file) {
  return std::string(POPCODE_SOURCE_DIR) + "/tests/fixtures/numpy/" + file;
}

inline std::vector<unsigned char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The message of the InputError that f() throws ("" and a test failure if it throws none).
template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError";
  return "";
}

}  // namespace popcode::testing
