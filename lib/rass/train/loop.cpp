#include "rass/train/loop.hpp"

#include <cmath>

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include "rass/core/error.hpp"

namespace rass::train {

double learning_rate(const LoopConfig& c, int64_t step) {
  if (c.schedule == "poly") return c.lr * std::pow(1.0 - double(step) / double(c.steps), c.poly_power);
  return c.lr;
}

TrainSummary run_training(Stage& stage, const LoopConfig& c) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> mults;
  std::vector<torch::Tensor> all;
  for (auto& g : stage.param_groups()) {
    std::vector<torch::Tensor> ps;
    for (auto& [name, t] : g.params) ps.push_back(t), all.push_back(t);
    auto opt = std::make_unique<torch::optim::AdamWOptions>(c.lr * g.lr_mult);
    opt->betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(g.weight_decay < 0 ? c.weight_decay : g.weight_decay);
    groups.emplace_back(ps, std::move(opt));
    mults.push_back(g.lr_mult);
  }
  torch::optim::AdamW optim(groups, torch::optim::AdamWOptions(c.lr));
  TrainSummary s;
  for (int64_t step = 0; step < c.steps; ++step) {
    for (size_t i = 0; i < optim.param_groups().size(); ++i)
      static_cast<torch::optim::AdamWOptions&>(optim.param_groups()[i].options()).lr(learning_rate(c, step) * mults[i]);
    StepContext ctx;
    ctx.step = step;
    ctx.global_batch = ctx.local_batch = c.batch;
    optim.zero_grad();
    StepLoss l = stage.compute_loss(ctx);
    if (!l.loss.defined() || !std::isfinite(l.loss.item<double>()))
      throw_runtime(stage.name() + ": non-finite loss at step " + std::to_string(step));
    l.loss.backward();
    if (c.clip_grad_norm > 0) torch::nn::utils::clip_grad_norm_(all, c.clip_grad_norm);
    optim.step();
    s.losses.push_back(l.loss.item<double>());
    s.steps_done = step + 1;
  }
  return s;
}

}  // namespace rass::train
