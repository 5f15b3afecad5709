// `popcode import` and `popcode inspect` (io/importers/import.hpp; formats in docs/import.md).
#include <fmt/format.h>

#include <cstdio>

#include "io/importers/import.hpp"
#include "src/cli.hpp"
#include "src/log.hpp"

namespace popcode {

int import_command(const Context& ctx, const std::string& source, const std::string& out, const ImportOptions& options) {
  const ImportSummary s = import_recording(ctx, source, out, options);
  if (ctx.root()) {
    std::printf("imported %s -> %s: %lld presentations x %lld neurons, %lld images, %lld spontaneous time points "
                "(%.1f MB in %.2f s)\n",
                source.c_str(), out.c_str(), static_cast<long long>(s.presentations), static_cast<long long>(s.neurons),
                static_cast<long long>(s.images), static_cast<long long>(s.spont), s.bytes / 1e6, s.seconds);
  }
  return 0;
}

int inspect_command(const Context& ctx, const std::string& source, const ImportOptions& options, bool json) {
  const std::string text = inspect_source(ctx, source, options, json);
  if (ctx.root()) std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace popcode
