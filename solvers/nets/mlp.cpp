// Multilayer perceptrons (see mlp.hpp).
#include "solvers/nets/mlp.hpp"

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

std::int64_t parameter_count(torch::nn::Module& model) {
  std::int64_t n = 0;
  for (const auto& p : model.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace popcode
