// The data-parallel trainer at 1, 2 and 3 ranks: P ranks reproduce one rank holding every sample (same global
// batches), a run stopped and resumed from its checkpoint equals an uninterrupted run bit for bit, the
// replica checksum catches a diverged rank, and the gradient buckets do not change the sums.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>

#include "partition/block_layout.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"

namespace popcode {
namespace {

constexpr std::int64_t kSamples = 101, kFeatures = 12, kClasses = 3;

// The same data on every rank: features from a fixed torch seed, labels from a random linear teacher.
std::pair<torch::Tensor, torch::Tensor> dataset() {
  torch::manual_seed(1234);
  const torch::Tensor x = torch::randn({kSamples, kFeatures});
  const torch::Tensor teacher = torch::randn({kFeatures, kClasses});
  return {x, x.matmul(teacher).argmax(1)};
}

ShardedSamples shard(const Context& ctx, const torch::Tensor& x, const torch::Tensor& y, bool weighted) {
  const Range r = BlockLayout(x.size(0), ctx.size()).range(ctx.rank());
  ShardedSamples s;
  s.inputs = x.slice(0, r.begin, r.end);
  s.targets = y.slice(0, r.begin, r.end);
  s.global_count = x.size(0);
  s.global_offset = r.begin;
  if (weighted)
    for (std::int64_t i = 0; i < x.size(0); ++i) s.weights.push_back(1.0 + 0.5 * static_cast<double>(y[i].item<std::int64_t>()));
  return s;
}

SampleLoss cross_entropy() {
  return [](const torch::Tensor& out, const torch::Tensor& y) {
    return torch::nn::functional::cross_entropy(out, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  };
}

std::vector<torch::Tensor> parameters_of(const Model& m) {
  std::vector<torch::Tensor> v;
  for (const auto& p : m.module->parameters()) v.push_back(p.detach().clone());
  for (const auto& b : m.module->buffers()) v.push_back(b.detach().clone());
  return v;
}

struct Outcome {
  std::vector<torch::Tensor> params;
  TrainHistory history;
};

Outcome train_once(const Context& ctx, const MlpOptions& mo, const TrainOptions& to, bool weighted, bool validate,
               std::int64_t bucket_bytes = 25 << 20) {
  const auto [x, y] = dataset();
  torch::manual_seed(77);
  Model model = as_model(make_mlp(kFeatures, kClasses, mo));
  DataParallel dp(ctx, torch::Device(torch::kCPU), bucket_bytes);
  const ShardedSamples train = shard(ctx, x.slice(0, 0, 81), y.slice(0, 0, 81), weighted);
  ShardedSamples val;
  if (validate) val = shard(ctx, x.slice(0, 81), y.slice(0, 81), false);
  const SampleLoss metric = [](const torch::Tensor& out, const torch::Tensor& t) {
    return out.argmax(1).eq(t).to(torch::kFloat64);
  };
  Outcome r;
  r.history = train_model(dp, model, train, val, cross_entropy(), metric, to);
  r.params = parameters_of(model);
  return r;
}

double max_relative_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
    scale = std::max(scale, a[i].abs().max().item<double>());
  }
  return diff / scale;
}

bool bitwise_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

std::string temp_path(const Context& ctx, const std::string& name) {
  std::string dir = ctx.broadcast(ctx.root() ? std::filesystem::temp_directory_path().string() + "/popcode_train_" +
                                                   std::to_string(getpid())
                                             : std::string());
  if (ctx.root()) std::filesystem::create_directories(dir);
  ctx.barrier();
  return dir + "/" + name;
}

TEST(Trainer, RanksReproduceOneRankWithTheWholeBatch) {
  const Context world(MPI_COMM_WORLD);
  const Context self(MPI_COMM_SELF);
  MlpOptions mo;
  mo.hidden = {16, 8};
  TrainOptions to;
  to.epochs = 3;
  to.batch_size = 12;  // 81 training samples: 7 steps per epoch, the last one partial; 21 steps in all
  to.seed = 5;
  to.checksum_every = 1;
  for (const std::string opt : {"adam", "sgd"}) {
    to.optimizer = opt;
    to.learning_rate = opt == "adam" ? 1e-2 : 0.1;
    to.momentum = 0.9;
    const Outcome all = train_once(world, mo, to, /*weighted=*/true, /*validate=*/false);
    Outcome one;
    if (world.root()) one = train_once(self, mo, to, true, false);
    if (world.root()) {
      EXPECT_EQ(all.history.steps, 21);
      const double rel = max_relative_difference(one.params, all.params);
      EXPECT_LT(rel, 1e-5) << opt << " at " << world.size() << " ranks";
      ASSERT_EQ(one.history.step_loss.size(), all.history.step_loss.size());
      for (std::size_t s = 0; s < one.history.step_loss.size(); ++s)
        EXPECT_NEAR(one.history.step_loss[s], all.history.step_loss[s], 1e-5 * std::abs(one.history.step_loss[s])) << s;
      // The loss decreases: training does something.
      EXPECT_LT(all.history.epoch_loss.back(), 0.8 * all.history.epoch_loss.front());
    }
  }
}

TEST(Trainer, ResumedRunEqualsUninterruptedBitForBit) {
  const Context ctx(MPI_COMM_WORLD);
  MlpOptions mo;
  mo.hidden = {16};
  mo.dropout = 0.3;      // exercises the saved generators
  mo.batchnorm = true;   // exercises the averaged running statistics
  TrainOptions to;
  to.epochs = 4;
  to.batch_size = 12;
  to.seed = 9;
  to.early_stopping_patience = 10;
  to.higher_is_better = true;
  to.schedule = "step";
  to.schedule_every = 2;
  to.schedule_factor = 0.5;
  to.checksum_every = 1;
  const Outcome whole = train_once(ctx, mo, to, false, true);
  for (const std::int64_t stop_at : {3, 7, 10}) {  // inside epoch 1, at its end, inside epoch 2
    TrainOptions part = to;
    part.checkpoint_path = temp_path(ctx, "ckpt_" + std::to_string(stop_at) + ".pt");
    part.checkpoint_identity = "test";
    part.stop_after_steps = stop_at;
    const Outcome first = train_once(ctx, mo, part, false, true);
    EXPECT_TRUE(first.history.interrupted);
    EXPECT_EQ(first.history.steps, stop_at);
    part.stop_after_steps = 0;
    const Outcome second = train_once(ctx, mo, part, false, true);
    EXPECT_EQ(second.history.resumed_from_step, stop_at);
    EXPECT_FALSE(second.history.interrupted);
    EXPECT_TRUE(bitwise_equal(whole.params, second.params)) << "stopped at step " << stop_at;
    EXPECT_EQ(whole.history.step_loss, second.history.step_loss) << "stopped at step " << stop_at;
    EXPECT_EQ(whole.history.validation, second.history.validation);
    EXPECT_EQ(whole.history.learning_rate, second.history.learning_rate);
    // The finished run left a finished checkpoint: a third call trains nothing and returns the same result.
    const Outcome third = train_once(ctx, mo, part, false, true);
    EXPECT_EQ(third.history.resumed_from_step, whole.history.steps);
    EXPECT_TRUE(bitwise_equal(whole.params, third.params));
    EXPECT_EQ(whole.history.validation, third.history.validation);
    // A checkpoint of another identity is ignored: training starts afresh and runs every step.
    part.checkpoint_identity = "other";
    const Outcome fresh = train_once(ctx, mo, part, false, true);
    EXPECT_EQ(fresh.history.resumed_from_step, -1);
    EXPECT_TRUE(bitwise_equal(whole.params, fresh.params));
  }
}

volatile std::sig_atomic_t g_usr1_seen = 0;
extern "C" void record_usr1(int) { g_usr1_seen = 1; }

// A signal that arrives after the last agreed stop check (here raised by the validation metric of the last
// epoch, after that epoch's last step) did not stop training; it must not be dropped either: train_model
// returns normally and then hands the signal to the handler that was installed before it.
TEST(Trainer, SignalAfterTheLastCheckReachesThePreviousHandler) {
  const Context ctx(MPI_COMM_WORLD);
  const auto [x, y] = dataset();
  torch::manual_seed(77);
  MlpOptions mo;
  mo.hidden = {8};
  Model model = as_model(make_mlp(kFeatures, kClasses, mo));
  DataParallel dp(ctx, torch::Device(torch::kCPU), 25 << 20);
  const ShardedSamples train = shard(ctx, x.slice(0, 0, 81), y.slice(0, 0, 81), false);
  const ShardedSamples val = shard(ctx, x.slice(0, 81), y.slice(0, 81), false);
  ASSERT_GT(val.inputs.size(0), 0) << "every rank needs validation samples for this test";
  TrainOptions to;
  to.epochs = 3;
  to.batch_size = 27;
  int evaluations = 0;
  const SampleLoss metric = [&](const torch::Tensor& out, const torch::Tensor& t) {
    if (++evaluations == to.epochs) std::raise(SIGUSR1);
    return out.argmax(1).eq(t).to(torch::kFloat64);
  };
  struct sigaction sa {}, previous {};
  sa.sa_handler = record_usr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &previous);
  g_usr1_seen = 0;
  const TrainHistory h = train_model(dp, model, train, val, cross_entropy(), metric, to);
  const bool seen = g_usr1_seen != 0;
  sigaction(SIGUSR1, &previous, nullptr);
  EXPECT_EQ(evaluations, 3);
  EXPECT_FALSE(h.interrupted);
  EXPECT_EQ(h.steps, 9);
  EXPECT_TRUE(seen) << "the signal raised after the last check was dropped";
}

TEST(Trainer, BucketsDoNotChangeTheSums) {
  const Context ctx(MPI_COMM_WORLD);
  MlpOptions mo;
  mo.hidden = {16, 8};
  TrainOptions to;
  to.epochs = 1;
  to.batch_size = 10;
  const Outcome big = train_once(ctx, mo, to, false, false);
  const Outcome small = train_once(ctx, mo, to, false, false, /*bucket_bytes=*/64);  // one parameter per bucket
  EXPECT_TRUE(bitwise_equal(big.params, small.params));
}

TEST(Trainer, ChecksumCatchesADivergedReplica) {
  const Context ctx(MPI_COMM_WORLD);
  torch::manual_seed(3);
  torch::nn::Sequential net = make_mlp(4, 2, {});
  DataParallel dp(ctx, torch::Device(torch::kCPU));
  dp.broadcast(*net);
  EXPECT_NO_THROW(dp.checksum(*net, "after broadcast"));
  if (ctx.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  if (ctx.rank() == 1) {
    torch::NoGradGuard g;
    net->parameters()[0].view({-1})[0].add_(1e-6f);
  }
  EXPECT_THROW(dp.checksum(*net, "test"), InternalError);
}

}  // namespace
}  // namespace popcode
