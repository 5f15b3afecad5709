// The data-parallel training loop (see trainer.hpp for the sampling, loss scaling, batchnorm and
// checkpoint contracts).
#include "solvers/train/trainer.hpp"

#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "src/log.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

volatile std::sig_atomic_t g_signal = 0;
extern "C" void note_signal(int sig) { g_signal = sig; }

// Installs the trainer's SIGTERM/SIGUSR1 handlers for the lifetime of one train_model call. A signal that
// arrives after the last agreed check (during the final checkpoint, or as the call returns) has not
// stopped training; it is not dropped: once the old handlers are back it is raised again, so the process
// ends as it would have outside training, after this run's finished checkpoint is on disk. (Before, the
// next fold's scope cleared the flag and the job ran on, and Slurm's SIGUSR1 warning was lost.)
class SignalScope {
 public:
  SignalScope() {
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = note_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term_);
    sigaction(SIGUSR1, &sa, &old_usr1_);
  }
  ~SignalScope() {
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGUSR1, &old_usr1_, nullptr);
    const int pending = g_signal;
    g_signal = 0;
    if (pending != 0 && !acted_on_) std::raise(pending);
  }
  // Training stopped on the signal; the caller re-raises it (reraise_training_signal) after its own records.
  void acted_on() { acted_on_ = true; }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  bool acted_on_ = false;
  struct sigaction old_term_ {}, old_usr1_ {};
};

std::vector<std::int64_t> epoch_order(std::uint64_t seed, std::int64_t epoch, std::int64_t n) {
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  const CounterRng rng(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i + 1), Stream::train_order,
                                                       static_cast<std::uint32_t>(epoch), static_cast<std::uint32_t>(i),
                                                       static_cast<std::uint32_t>(epoch >> 32)));
    std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
  }
  return perm;
}

bool has_batchnorm(torch::nn::Module& model) {
  for (const auto& m : model.modules(/*include_self=*/true))
    if (m->name().find("BatchNorm") != std::string::npos) return true;
  return false;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& model, const TrainOptions& o) {
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(
        model.parameters(), torch::optim::AdamOptions(o.learning_rate).weight_decay(o.weight_decay));
  if (o.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        model.parameters(), torch::optim::SGDOptions(o.learning_rate).momentum(o.momentum).weight_decay(o.weight_decay));
  throw UsageError(fmt::format("optimizer = \"{}\": expected \"adam\" or \"sgd\"", o.optimizer));
}

void set_learning_rate(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

torch::Tensor to_tensor(const std::vector<double>& v) {
  return torch::from_blob(const_cast<double*>(v.data()), {static_cast<std::int64_t>(v.size())}, torch::kFloat64).clone();
}
std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Everything a resumed run needs beyond the model and optimizer.
struct LoopState {
  std::int64_t step = 0, epoch = 0, step_in_epoch = 0;
  double epoch_loss_sum = 0, epoch_weight_sum = 0;
  std::int64_t since_improvement = 0, decays = 0;
  double lr = 0;
  bool finished = false;            // the run ended (all epochs, or early stopping); nothing left to train
  std::vector<torch::Tensor> best;  // parameters then buffers of the best epoch (empty: none yet)
};

std::vector<torch::Tensor> snapshot(torch::nn::Module& model) {
  std::vector<torch::Tensor> s;
  for (auto& p : model.parameters()) s.push_back(p.detach().clone());
  for (auto& b : model.buffers()) s.push_back(b.detach().clone());
  return s;
}
void restore(torch::nn::Module& model, const std::vector<torch::Tensor>& s) {
  torch::NoGradGuard no_grad;
  std::size_t i = 0;
  for (auto& p : model.parameters()) p.copy_(s.at(i++));
  for (auto& b : model.buffers()) b.copy_(s.at(i++));
}

torch::Tensor generator_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
void set_generator_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

void write_checkpoint(const DataParallel& dp, torch::nn::Module& model, torch::optim::Optimizer& opt,
                      const LoopState& st, const TrainHistory& h, const TrainOptions& o) {
  const Context& ctx = dp.context();
  // Every rank's generator state, gathered on rank 0 (they are all the same size).
  const torch::Tensor mine = generator_state().contiguous();
  const auto bytes = static_cast<int>(mine.numel());
  torch::Tensor all = torch::empty({ctx.root() ? ctx.size() : 0, mine.numel()}, torch::kUInt8);
  mpi_check(MPI_Gather(mine.data_ptr(), bytes, MPI_BYTE, ctx.root() ? all.data_ptr() : nullptr, bytes, MPI_BYTE, 0,
                       ctx.comm()),
            "MPI_Gather(generator states)");
  std::string error;
  if (ctx.root()) {
    try {
      torch::serialize::OutputArchive a;
      a.write("identity", c10::IValue(o.checkpoint_identity));
      a.write("ranks", c10::IValue(static_cast<std::int64_t>(ctx.size())));
      a.write("generators", all);
      torch::serialize::OutputArchive m, op;
      model.save(m);
      opt.save(op);
      a.write("model", m);
      a.write("optimizer", op);
      const std::vector<std::int64_t> ints = {st.step, st.epoch, st.step_in_epoch, st.since_improvement, st.decays,
                                              h.best_epoch, h.skipped_samples, static_cast<std::int64_t>(st.best.size()),
                                              st.finished ? 1 : 0, h.stopped_early ? 1 : 0};
      a.write("ints", torch::tensor(ints, torch::kInt64));
      a.write("reals", to_tensor({st.epoch_loss_sum, st.epoch_weight_sum, st.lr, h.best_validation}));
      a.write("epoch_loss", to_tensor(h.epoch_loss));
      a.write("validation", to_tensor(h.validation));
      a.write("learning_rate", to_tensor(h.learning_rate));
      a.write("step_loss", to_tensor(h.step_loss));
      for (std::size_t i = 0; i < st.best.size(); ++i) a.write(fmt::format("best_{}", i), st.best[i].to(torch::kCPU));
      const std::string tmp = fmt::format("{}.tmp-{}", o.checkpoint_path, getpid());
      a.save_to(tmp);
      std::filesystem::rename(tmp, o.checkpoint_path);
    } catch (const std::exception& e) {
      error = fmt::format("cannot write the training checkpoint {}: {}", o.checkpoint_path, e.what());
    }
  }
  ctx.agree(!error.empty(), error, ExitCode::bad_input);
}

// Returns true when a checkpoint was loaded.
bool read_checkpoint(const DataParallel& dp, torch::nn::Module& model, torch::optim::Optimizer& opt, LoopState& st,
                     TrainHistory& h, const TrainOptions& o) {
  const Context& ctx = dp.context();
  namespace fs = std::filesystem;
  if (o.checkpoint_path.empty() || !fs::exists(o.checkpoint_path)) return false;
  torch::serialize::InputArchive a;
  std::string problem;
  try {
    a.load_from(o.checkpoint_path);
    c10::IValue identity, ranks;
    a.read("identity", identity);
    a.read("ranks", ranks);
    if (identity.toStringRef() != o.checkpoint_identity)
      problem = "it was written by a run with other options or data";
    else if (ranks.toInt() != ctx.size())
      problem = fmt::format("it was written by {} ranks and this run has {}", ranks.toInt(), ctx.size());
  } catch (const std::exception& e) {
    problem = fmt::format("it cannot be read ({})", e.what());
  }
  if (ctx.any(!problem.empty())) {
    if (ctx.root())
      log::warn("{}: ignoring the checkpoint {}: {}; training starts afresh", o.label, o.checkpoint_path,
                problem.empty() ? "another rank could not read it" : problem);
    return false;
  }
  torch::serialize::InputArchive m, op;
  a.read("model", m);
  a.read("optimizer", op);
  model.load(m);
  opt.load(op);
  // A fresh tensor per key: reading into a tensor that already holds a loaded storage fails.
  auto get = [&a](const std::string& key) {
    torch::Tensor t;
    a.read(key, t);
    return t;
  };
  set_generator_state(get("generators")[ctx.rank()].clone());
  const torch::Tensor ints = get("ints");
  const auto* iv = ints.data_ptr<std::int64_t>();
  st.step = iv[0];
  st.epoch = iv[1];
  st.step_in_epoch = iv[2];
  st.since_improvement = iv[3];
  st.decays = iv[4];
  h.best_epoch = iv[5];
  h.skipped_samples = iv[6];
  const std::vector<double> rv = to_vector(get("reals"));
  st.epoch_loss_sum = rv[0];
  st.epoch_weight_sum = rv[1];
  st.lr = rv[2];
  h.best_validation = rv[3];
  h.epoch_loss = to_vector(get("epoch_loss"));
  h.validation = to_vector(get("validation"));
  h.learning_rate = to_vector(get("learning_rate"));
  h.step_loss = to_vector(get("step_loss"));
  st.best.clear();
  for (std::int64_t i = 0; i < iv[7]; ++i) st.best.push_back(get(fmt::format("best_{}", i)).clone());
  st.finished = iv[8] != 0;
  h.stopped_early = iv[9] != 0;
  set_learning_rate(opt, st.lr);
  return true;
}

// Mean of `metric` over the global validation set.
double evaluate(const DataParallel& dp, Model& model, const ShardedSamples& val, const SampleLoss& metric,
                std::int64_t batch) {
  double local = 0;
  if (val.inputs.defined() && val.inputs.size(0) > 0) {
    const torch::Tensor out = predict(model, val.inputs, batch);
    local = metric(out, val.targets).to(torch::kFloat64).sum().item<double>();
  }
  return dp.context().sum(local) / static_cast<double>(val.global_count);
}

bool improved(double value, double best, bool higher) {
  if (!std::isfinite(value)) return false;
  if (!std::isfinite(best)) return true;
  return higher ? value > best : value < best;
}

}  // namespace

torch::Tensor predict(Model& model, const torch::Tensor& inputs, std::int64_t batch) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.module->is_training();
  model.module->eval();
  std::vector<torch::Tensor> parts;
  for (std::int64_t b = 0; b < inputs.size(0); b += batch)
    parts.push_back(model.forward(inputs.slice(0, b, std::min(b + batch, inputs.size(0)))));
  if (was_training) model.module->train();
  return parts.empty() ? torch::Tensor() : torch::cat(parts);
}

void reraise_training_signal(const TrainHistory& history) {
  if (history.signal != 0) std::raise(history.signal);
}

TrainHistory train_model(DataParallel& dp, Model& model, const ShardedSamples& train,
                         const ShardedSamples& validation, const SampleLoss& loss, const SampleLoss& metric_in,
                         const TrainOptions& o) {
  const Context& ctx = dp.context();
  const auto t0 = std::chrono::steady_clock::now();
  torch::nn::Module& net = *model.module;
  const std::int64_t n = train.global_count;
  const std::int64_t local_n = train.inputs.defined() ? train.inputs.size(0) : 0;
  ctx.agree(n < 1 || o.batch_size < 1 || o.epochs < 1,
            fmt::format("{}: nothing to train ({} samples, batch {}, {} epochs)", o.label, n, o.batch_size, o.epochs),
            ExitCode::bad_input);
  const bool bn = has_batchnorm(net);
  const bool have_val = validation.global_count > 0;
  const SampleLoss metric = metric_in ? metric_in : loss;

  // Same start on every rank, then rank-specific generators for dropout.
  dp.broadcast(net);
  torch::manual_seed(o.seed * 1000003ULL + static_cast<std::uint64_t>(ctx.rank()) + 1);
  auto opt = make_optimizer(net, o);
  TrainHistory h;
  LoopState st;
  st.lr = o.learning_rate;
  if (read_checkpoint(dp, net, *opt, st, h, o)) {
    h.resumed_from_step = st.step;
    log::info("{}: resumed from {} at step {} (epoch {}, step {} of it)", o.label, o.checkpoint_path, st.step,
              st.epoch + 1, st.step_in_epoch);
  }
  dp.checksum(net, fmt::format("the start (step {})", st.step));

  const std::int64_t steps_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  const std::int64_t log_every = o.log_every_epochs > 0 ? o.log_every_epochs : std::max<std::int64_t>(1, o.epochs / 4);
  std::vector<std::int64_t> slot(static_cast<std::size_t>(n), -1);  // global sample -> local row
  for (std::int64_t i = 0; i < local_n; ++i) slot[static_cast<std::size_t>(train.global_offset + i)] = i;
  auto weight = [&](std::int64_t g) { return train.weights.empty() ? 1.0 : train.weights[static_cast<std::size_t>(g)]; };

  SignalScope signals;
  std::int64_t processed = 0;
  net.train();
  bool stop = st.finished;  // a finished run resumed: only the final bookkeeping is left
  for (; st.epoch < o.epochs && !stop; ++st.epoch) {
    const std::vector<std::int64_t> perm = epoch_order(o.seed, st.epoch, n);
    for (; st.step_in_epoch < steps_per_epoch; ++st.step_in_epoch) {
      const std::int64_t b0 = st.step_in_epoch * o.batch_size, b1 = std::min(n, b0 + o.batch_size);
      double norm = 0;
      std::vector<std::int64_t> rows;
      std::vector<double> w;
      for (std::int64_t k = b0; k < b1; ++k) {
        const std::int64_t g = perm[static_cast<std::size_t>(k)];
        norm += weight(g);
        const std::int64_t r = slot[static_cast<std::size_t>(g)];
        if (r >= 0) {
          rows.push_back(r);
          w.push_back(weight(g));
        }
      }
      if (bn && rows.size() == 1) {
        h.skipped_samples += 1;
        rows.clear();
        w.clear();
      }
      opt->zero_grad();
      double local_loss = 0;
      if (!rows.empty()) {
        const torch::Tensor idx = torch::tensor(rows, torch::kInt64).to(train.inputs.device());
        const torch::Tensor out = model.forward(train.inputs.index_select(0, idx));
        const torch::Tensor per = loss(out, train.targets.index_select(0, idx));
        const torch::Tensor wt = torch::tensor(w, torch::kFloat64).to(per.device(), per.scalar_type());
        const torch::Tensor l = (per * wt).sum() / norm;
        l.backward();
        local_loss = l.item<double>();
      }
      dp.allreduce_gradients(net);
      opt->step();
      if (bn) dp.average_buffers(net);
      const double batch_loss = ctx.sum(local_loss);
      h.step_loss.push_back(batch_loss);
      st.epoch_loss_sum += batch_loss * norm;
      st.epoch_weight_sum += norm;
      processed += b1 - b0;
      ++st.step;
      if (o.checksum_every > 0 && st.step % o.checksum_every == 0) dp.checksum(net, fmt::format("step {}", st.step));
      // Agreed stop request: a signal on any rank, or the test hook.
      std::int64_t sig = g_signal;
      sig = ctx.max(sig);
      const bool by_count = o.stop_after_steps > 0 && st.step >= o.stop_after_steps;
      if (sig != 0 || by_count || (o.checkpoint_every > 0 && st.step % o.checkpoint_every == 0)) {
        if (!o.checkpoint_path.empty()) {
          LoopState saved = st;
          ++saved.step_in_epoch;  // the step just done is complete; a resume starts at the next one
          write_checkpoint(dp, net, *opt, saved, h, o);
        }
        if (sig != 0 || by_count) {
          signals.acted_on();
          h.interrupted = true;
          h.signal = static_cast<int>(sig);
          log::info("{}: stopped at step {} ({}); {}", o.label, st.step,
                    sig != 0 ? fmt::format("signal {}", sig) : std::string("stop_after_steps"),
                    o.checkpoint_path.empty() ? std::string("no checkpoint path, progress is lost")
                                              : fmt::format("checkpoint {}", o.checkpoint_path));
          stop = true;
          break;
        }
      }
    }
    if (stop) break;
    // End of epoch: curves, validation, schedule, early stopping.
    h.epoch_loss.push_back(st.epoch_loss_sum / st.epoch_weight_sum);
    h.learning_rate.push_back(st.lr);
    double v = std::numeric_limits<double>::quiet_NaN();
    if (have_val) v = evaluate(dp, model, validation, metric, o.batch_size);
    h.validation.push_back(v);
    if (have_val) {
      if (improved(v, h.best_validation, o.higher_is_better)) {
        h.best_validation = v;
        h.best_epoch = st.epoch;
        st.since_improvement = 0;
        if (o.restore_best) st.best = snapshot(net);
      } else {
        ++st.since_improvement;
      }
    }
    if (ctx.root() && ((st.epoch + 1) % log_every == 0 || st.epoch + 1 == o.epochs))
      log::info("{}: epoch {}/{}: loss {:.5g}{}, lr {:.3g}", o.label, st.epoch + 1, o.epochs, h.epoch_loss.back(),
                have_val ? fmt::format(", validation {:.5g}", v) : std::string(), st.lr);
    if (o.schedule == "step" && (st.epoch + 1) % o.schedule_every == 0) {
      st.lr *= o.schedule_factor;
      set_learning_rate(*opt, st.lr);
    } else if (o.schedule == "plateau" && have_val && st.since_improvement >= o.schedule_every &&
               st.decays < o.schedule_max_decays) {
      st.lr *= o.schedule_factor;
      ++st.decays;
      st.since_improvement = 0;
      set_learning_rate(*opt, st.lr);
      log::info("{}: no validation improvement for {} epochs, learning rate now {:.3g}", o.label, o.schedule_every, st.lr);
    }
    st.step_in_epoch = 0;
    st.epoch_loss_sum = 0;
    st.epoch_weight_sum = 0;
    if (o.early_stopping_patience > 0 && have_val && st.since_improvement >= o.early_stopping_patience) {
      h.stopped_early = true;
      log::info("{}: early stop after epoch {} (best epoch {}, validation {:.5g})", o.label, st.epoch + 1,
                h.best_epoch + 1, h.best_validation);
      ++st.epoch;
      break;
    }
  }
  h.steps = st.step;
  h.epochs_done = static_cast<std::int64_t>(h.epoch_loss.size());
  if (!h.interrupted && !st.finished && !o.checkpoint_path.empty()) {
    // The finished state, so a job interrupted later (in another fold or stage) does not train this again.
    st.finished = true;
    write_checkpoint(dp, net, *opt, st, h, o);
  }
  if (!h.interrupted && o.restore_best && !st.best.empty()) restore(net, st.best);
  dp.checksum(net, fmt::format("the end (step {})", st.step));
  h.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  h.samples_per_second = h.seconds > 0 ? static_cast<double>(processed) / h.seconds : 0;
  return h;
}

}  // namespace popcode
