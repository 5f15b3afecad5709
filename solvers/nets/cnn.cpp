// Spatial-grid CNN decoders (see cnn.hpp).
#include "solvers/nets/cnn.hpp"

namespace popcode {

torch::nn::Sequential make_grid_cnn(const GridShape& g, std::int64_t outputs, const CnnOptions& o) {
  namespace nn = torch::nn;
  nn::Sequential net;
  const bool three = o.kind == "3d";
  const std::int64_t c1 = o.channels.at(0), c2 = o.channels.at(1), c3 = o.channels.at(2);
  if (three) {
    net->push_back(nn::Unflatten(nn::UnflattenOptions(1, {1, g.planes, g.rows, g.columns})));
    auto block = [&](std::int64_t in, std::int64_t out, std::vector<std::int64_t> k, std::vector<std::int64_t> pad) {
      net->push_back(nn::Conv3d(nn::Conv3dOptions(in, out, k).padding(pad)));
      if (o.batchnorm) net->push_back(nn::BatchNorm3d(out));
      net->push_back(nn::ReLU());
    };
    block(1, c1, {3, 5, 5}, {1, 2, 2});
    net->push_back(nn::MaxPool3d(nn::MaxPool3dOptions({1, 2, 2})));
    block(c1, c2, {3, 3, 3}, {1, 1, 1});
    net->push_back(nn::MaxPool3d(nn::MaxPool3dOptions(2).ceil_mode(true)));
    block(c2, c3, {3, 3, 3}, {1, 1, 1});
    net->push_back(nn::AdaptiveAvgPool3d(nn::AdaptiveAvgPool3dOptions({2, 4, 4})));
  } else {
    net->push_back(nn::Unflatten(nn::UnflattenOptions(1, {g.planes, g.rows, g.columns})));
    auto block = [&](std::int64_t in, std::int64_t out, std::int64_t k) {
      net->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, k).padding(k / 2)));
      if (o.batchnorm) net->push_back(nn::BatchNorm2d(out));
      net->push_back(nn::ReLU());
    };
    block(g.planes, c1, 5);
    net->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    block(c1, c2, 3);
    net->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    block(c2, c3, 3);
    net->push_back(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({4, 4})));
  }
  net->push_back(nn::Flatten());
  std::int64_t width = c3 * (three ? 32 : 16);
  for (const std::int64_t h : o.hidden) {
    if (o.dropout > 0) net->push_back(nn::Dropout(o.dropout));
    net->push_back(nn::Linear(width, h));
    net->push_back(nn::ReLU());
    width = h;
  }
  if (o.dropout > 0) net->push_back(nn::Dropout(o.dropout));
  net->push_back(nn::Linear(width, outputs));
  return net;
}

}  // namespace popcode
