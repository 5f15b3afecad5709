// Multilayer perceptrons (see mlp.hpp).
#include "solvers/nets/mlp.hpp"

#include <fmt/format.h>

#include <charconv>

#include "src/errors.hpp"

namespace popcode {

torch::nn::Sequential make_mlp(std::int64_t inputs, std::int64_t outputs, const MlpOptions& options) {
  torch::nn::Sequential net;
  std::int64_t width = inputs;
  for (const std::int64_t h : options.hidden) {
    net->push_back(torch::nn::Linear(width, h));
    if (options.batchnorm) net->push_back(torch::nn::BatchNorm1d(h));
    net->push_back(torch::nn::ReLU());
    if (options.dropout > 0) net->push_back(torch::nn::Dropout(options.dropout));
    width = h;
  }
  net->push_back(torch::nn::Linear(width, outputs));
  return net;
}

std::vector<std::int64_t> parse_layer_sizes(const std::string& text, const std::string& key) {
  std::vector<std::int64_t> sizes;
  if (text.empty() || text == "none") return sizes;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    std::string item = text.substr(at, comma - at);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v < 1)
      throw UsageError(fmt::format("{} = \"{}\": \"{}\" is not a positive layer width (expected e.g. \"1024,128\" or \"none\")",
                                   key, text, item));
    sizes.push_back(v);
    at = comma + 1;
  }
  return sizes;
}

std::int64_t parameter_count(torch::nn::Module& model) {
  std::int64_t n = 0;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace popcode
