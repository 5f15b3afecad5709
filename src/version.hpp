#pragma once
// Build identity, generated at build time by cmake/version.cmake.
namespace popcode {
const char* version_string();
const char* git_revision();
}  // namespace popcode
