#pragma once
// Multilayer perceptrons for the decoders, built from libtorch layers (torch::nn::Sequential).
//
// make_mlp(inputs, {h1, h2, ...}, outputs): Linear(inputs, h1) [BatchNorm1d(h1)] ReLU [Dropout(p)] ... Linear(hk, outputs).
// With no hidden sizes it is one Linear layer: the logistic (softmax) or linear regression baseline.
// The seed article's category decoder is hidden = {16384, 4096, 1024, 128}, dropout 0.5, batchnorm on.
// Weights use libtorch's default initialisation (Kaiming-uniform, as PyTorch), drawn from the global torch
// generator, so a fixed torch::manual_seed gives a fixed model.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace popcode {

struct MlpOptions {
  std::vector<std::int64_t> hidden;  // hidden layer widths, input to output
  double dropout = 0.0;              // after each hidden activation (0: none)
  bool batchnorm = false;            // BatchNorm1d after each hidden Linear, before the ReLU
};

torch::nn::Sequential make_mlp(std::int64_t inputs, std::int64_t outputs, const MlpOptions& options);

// Number of trainable scalars.
std::int64_t parameter_count(torch::nn::Module& model);

}  // namespace popcode
