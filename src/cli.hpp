#pragma once
// The command line (CLI11): `popcode run`, one subcommand per stage, `powerlaw` and `info`.
#include <string>
#include <vector>

#include "io/importers/import.hpp"
#include "src/context.hpp"

namespace popcode {

// Parses and runs the command. Collective. Returns the exit code for non-exception outcomes (help: 0,
// parse errors: 2); failures are thrown as popcode::Error.
int run_cli(const Context& ctx, int argc, char** argv);

// `popcode powerlaw` (src/powerlaw_command.cpp): prints alpha=<value> for a spectrum.
int powerlaw_command(const Context& ctx, const std::string& spectrum, const std::string& range);

// `popcode summarize` (src/summarize_command.cpp): a CSV row per results file.
int summarize_command(const Context& ctx, const std::vector<std::string>& files, const std::string& out);

// `popcode import` / `popcode inspect` (src/import_command.cpp).
int import_command(const Context& ctx, const std::string& source, const std::string& out, const ImportOptions& options);
int inspect_command(const Context& ctx, const std::string& source, const ImportOptions& options, bool json);

}  // namespace popcode
