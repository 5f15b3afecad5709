#pragma once
// Convolutional decoders of neurons binned on a spatial grid (Stringer et al. 2019 seed article's spatial
// CNN: neurons binned by cortical position into 63 x 63 x 11 cells), built from libtorch layers.
//
// Input: one flattened grid per sample, planes x rows x columns (C order). Three convolution blocks, then a
// dense head:
//   2d: planes are the input channels. Conv2d(planes, c1, 5, pad 2) [BatchNorm2d] ReLU MaxPool2d(2),
//       Conv2d(c1, c2, 3, pad 1) [BN] ReLU MaxPool2d(2), Conv2d(c2, c3, 3, pad 1) [BN] ReLU
//       AdaptiveAvgPool2d(4 x 4).
//   3d: one input channel over (planes, rows, columns). Conv3d(1, c1, (3, 5, 5), pad (1, 2, 2)) [BatchNorm3d]
//       ReLU MaxPool3d((1, 2, 2)), Conv3d(c1, c2, 3, pad 1) [BN] ReLU MaxPool3d(2, ceil), Conv3d(c2, c3, 3,
//       pad 1) [BN] ReLU AdaptiveAvgPool3d((2, 4, 4)).
//   head: Flatten [Dropout] Linear(.., h1) ReLU [Dropout] ... Linear(hk, outputs).
// Weights use libtorch's default initialisation from the global generator (torch::manual_seed fixes them).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace popcode {

struct GridShape {
  std::int64_t planes = 11, rows = 63, columns = 63;
  std::int64_t cells() const { return planes * rows * columns; }
};

struct CnnOptions {
  std::string kind = "2d";                          // 2d | 3d
  std::vector<std::int64_t> channels = {32, 64, 64};  // of the three convolution blocks
  std::vector<std::int64_t> hidden = {128};         // dense head
  double dropout = 0.5;
  bool batchnorm = true;
};

torch::nn::Sequential make_grid_cnn(const GridShape& grid, std::int64_t outputs, const CnnOptions& options);

}  // namespace popcode
