// `popcode powerlaw SPECTRUM [--range A:B]`: fits the Stringer et al. power law to a stored spectrum.
#include <fmt/format.h>

#include <cstdio>

#include "io/spectrum_source.hpp"
#include "solvers/powerlaw.hpp"
#include "src/cli.hpp"

namespace popcode {

int powerlaw_command(const Context& ctx, const std::string& spectrum, const std::string& range) {
  std::string out;
  on_root(ctx, [&] {
    const std::vector<double> ss = load_spectrum(spectrum);
    const auto [first, last] = range.empty() ? default_fit_range(static_cast<std::int64_t>(ss.size())) : parse_range(range);
    const PowerLawFit fit = fit_power_law(ss, first, last);
    out = fmt::format("alpha={:.17g}\nrange={}:{}\nintercept={:.17g}\nloglog_r2={:.17g}\n", fit.alpha, fit.first, fit.last,
                      fit.intercept, fit.loglog_r2);
  });
  if (ctx.root()) std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace popcode
