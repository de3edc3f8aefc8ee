#include "rass/nn/activation_checkpoint.hpp"

#include <memory>
#include <utility>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/torch.h>

#include "rass/nn/autocast.hpp"

namespace rass::nn {

namespace {

using torch::autograd::variable_list;

// The backward node of one checkpointed call: recomputes the block with grad
// and backpropagates the incoming gradient through it (the parameters'
// gradients accumulate in place, as in PyTorch's reentrant checkpoint), and
// returns the inputs' gradients to the outer graph.
struct CheckpointBackward : torch::autograd::Node {
  CheckpointFnN fn;
  std::vector<torch::Tensor> inputs;  // detached: the values, without their history
  std::vector<bool> needs_grad;
  bool autocast = false;
  c10::ScalarType autocast_dtype = c10::kBFloat16;

  variable_list apply(variable_list&& grads) override {
    if (!fn)
      throw std::runtime_error("activation checkpoint: backward through a checkpointed block a second time "
                               "(its inputs were released after the first; retain_graph is not supported)");
    // The engine runs a node with grad mode on only for create_graph: the
    // recomputed gradients below carry no graph, so refuse rather than drop it.
    if (torch::GradMode::is_enabled())
      throw std::runtime_error("activation checkpoint: double backward (create_graph) is not supported");
    std::vector<torch::Tensor> x;
    x.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      x.push_back(needs_grad[i] ? inputs[i].detach().requires_grad_(true) : inputs[i]);
    std::vector<torch::Tensor> y;
    {
      torch::AutoGradMode grad_on(true);
      // CUDA autocast as it was in the forward, whatever it is now.
      // Autocast caches its low-precision copies of leaf weights until the
      // cache is cleared (an autocast scope's exit): copies made here, in the
      // backward pass, outlive the optimizer's in-place update and the next
      // forward would take the old weights. Cleared when the replay ends.
      struct Restore {
        bool autocast;
        bool was = cuda_autocast_enabled();
        c10::ScalarType was_dtype = current_cuda_autocast_dtype();
        ~Restore() {
          if (autocast) at::autocast::clear_cache();
          set_cuda_autocast_state(was, was_dtype);
        }
      } restore{autocast};
      set_cuda_autocast_state(autocast, autocast_dtype);
      y = fn(x);
    }
    if (y.size() != grads.size())
      throw std::runtime_error("activation checkpoint: the replay gave " + std::to_string(y.size()) +
                               " outputs, the forward " + std::to_string(grads.size()));
    // Outputs without an incoming gradient (a map no loss took) are left out.
    std::vector<torch::Tensor> ys, gs;
    for (size_t i = 0; i < y.size(); ++i)
      if (grads[i].defined() && y[i].requires_grad()) {
        ys.push_back(y[i]);
        gs.push_back(grads[i]);
      }
    if (!ys.empty()) torch::autograd::backward(ys, gs);
    variable_list out;
    for (size_t i = 0; i < x.size(); ++i) out.push_back(needs_grad[i] ? x[i].grad() : torch::Tensor());
    return out;
  }
  void release_variables() override {
    inputs.clear();
    fn = nullptr;
  }
};

}  // namespace

bool has_trainable_parameters(const torch::nn::Module& m) {
  for (const auto& p : m.parameters(true))
    if (p.requires_grad()) return true;
  return false;
}

std::vector<torch::Tensor> checkpoint_outputs(const CheckpointFnN& fn, const std::vector<torch::Tensor>& inputs,
                                              bool trainable) {
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  bool any_input = false;
  for (const auto& t : inputs) any_input = any_input || (t.defined() && t.requires_grad());
  if (!any_input && !trainable) return fn(inputs);
  auto node = std::shared_ptr<CheckpointBackward>(new CheckpointBackward(), torch::autograd::deleteNode);
  node->fn = fn;
  node->autocast = cuda_autocast_enabled();
  if (node->autocast) node->autocast_dtype = current_cuda_autocast_dtype();
  for (const auto& t : inputs) {
    node->inputs.push_back(t.defined() ? t.detach() : t);
    node->needs_grad.push_back(t.defined() && t.requires_grad());
  }
  node->set_next_edges(torch::autograd::collect_next_edges(inputs));
  std::vector<torch::Tensor> y;
  {
    // The forward runs as the replay will, with grad mode on, and its graph
    // is dropped when the block ends (as PyTorch's non-reentrant checkpoint
    // discards what the forward saves): the same kernels, so the same
    // values. Under no_grad the inference kernels (the fused GroupNorm, the
    // upsampler's phase convolution) gave the loss activations that differed
    // at float rounding from those the replay's gradient belongs to. One
    // block's activations live at a time, as in the replay.
    torch::AutoGradMode grad_on(true);
    y = fn(inputs);
  }
  for (size_t i = 0; i < y.size(); ++i) {
    if (!y[i].defined())
      throw std::runtime_error("activation checkpoint: output " + std::to_string(i) + " of the block is undefined");
    // A tensor of its own: an output sharing memory with an input (which the
    // node keeps for the replay) or with another output would let an
    // in-place change of one alter the other behind autograd's back, and a
    // view would keep its whole base alive. detach() drops the block's history.
    bool alias = y[i].is_view();
    for (const auto& t : inputs) alias = alias || (t.defined() && y[i].is_alias_of(t));
    for (size_t j = 0; j < i; ++j) alias = alias || y[i].is_alias_of(y[j]);
    y[i] = alias ? y[i].detach().clone() : y[i].detach();
  }
  torch::autograd::set_history(y, node);
  return y;
}

torch::Tensor checkpoint(const CheckpointFn& fn, const std::vector<torch::Tensor>& inputs, bool trainable) {
  return checkpoint_outputs([fn](const std::vector<torch::Tensor>& v) { return std::vector<torch::Tensor>{fn(v)}; },
                            inputs, trainable)
      .at(0);
}

}  // namespace rass::nn
