#pragma once
// Error types and the exit codes they map to. Every user-facing failure is one of these, thrown with a
// message that names the file, dataset, key or value involved, what was expected and what was found.
//
// Exit codes (documented in README.md and `popcode --help`):
//   0  success
//   1  internal error (a bug, or a library call that failed for no reason the user can fix)
//   2  usage or job error (bad command line, unknown or mistyped job key, missing input file)
//   3  bad input data (unreadable or malformed recording, NaN/Inf where not allowed, inconsistent shapes)
#include <stdexcept>
#include <string>

namespace popcode {

enum class ExitCode : int { ok = 0, internal = 1, usage = 2, bad_input = 3 };

// Base class. `collective` marks an error that every rank of the communicator raises together (after an
// agreement such as Context::agree), so the program can shut MPI down cleanly instead of aborting.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& what, bool collective = false)
      : std::runtime_error(what), code_(code), collective_(collective) {}
  ExitCode code() const { return code_; }
  bool collective() const { return collective_; }

 private:
  ExitCode code_;
  bool collective_;
};

class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what, bool collective = false)
      : Error(ExitCode::usage, what, collective) {}
};

class InputError : public Error {
 public:
  explicit InputError(const std::string& what, bool collective = false)
      : Error(ExitCode::bad_input, what, collective) {}
};

class InternalError : public Error {
 public:
  explicit InternalError(const std::string& what, bool collective = false)
      : Error(ExitCode::internal, what, collective) {}
};

// Throws the Error subclass that matches `code` (UsageError for usage, InputError for bad_input, ...).
[[noreturn]] inline void throw_error(ExitCode code, const std::string& what, bool collective = false) {
  switch (code) {
    case ExitCode::usage: throw UsageError(what, collective);
    case ExitCode::bad_input: throw InputError(what, collective);
    default: throw InternalError(what, collective);
  }
}

}  // namespace popcode
