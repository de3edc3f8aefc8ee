// Activation checkpointing, as torch.utils.checkpoint's reentrant form
// (diffusers' enable_gradient_checkpointing, OSEDiff's --gradient_checkpointing):
// the forward of a block runs without keeping its activations; the backward
// runs it again, with the autocast state of the forward, and backpropagates
// through that. Memory of the block's inner activations for a second forward.
#pragma once
#include <functional>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace rass::nn {

using CheckpointFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;
using CheckpointFnN = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>& inputs)>;

// fn(inputs) with its activations recomputed in the backward pass. `fn` must
// be deterministic (no dropout: the generator is not replayed) and is kept
// until the backward pass. Unlike torch.utils.checkpoint's reentrant form,
// the output is attached to the graph whenever `trainable` (the block has
// parameters that require a gradient), even if no input requires one, so a
// frozen stem before a trained block does not cut the block's gradients.
// Without grad mode (inference) it is fn(inputs). Not supported (refused
// with an exception in the backward): double backward (create_graph), a
// second backward (retain_graph), and torch::autograd::grad or backward
// with `inputs` that name the block's parameters (the node has no edges to
// them: they get their gradients by accumulation, as in PyTorch's reentrant
// form, which has the same limit). `fn` must not capture non-leaf tensors
// that require a gradient; inputs must not change in place before the
// backward. The first forward runs with grad mode on too (its graph
// dropped when the block ends, as PyTorch's non-reentrant checkpoint drops
// what it would save), so it takes the kernels the replay takes, not the
// inference ones (the fused GroupNorm, the upsampler's phase convolution):
// the loss sees the activations the gradient belongs to. One block's
// activations live at a time, in the forward as in the replay.
torch::Tensor checkpoint(const CheckpointFn& fn, const std::vector<torch::Tensor>& inputs, bool trainable);

// The same for a block with several outputs (a block and the attention maps
// it was asked to record): every output is an output of one node, so a loss
// on any of them backpropagates through the block's replay, which
// recomputes them all (a gradient for each output that has one). `fn` must
// return as many tensors, of the same shapes, each time.
std::vector<torch::Tensor> checkpoint_outputs(const CheckpointFnN& fn, const std::vector<torch::Tensor>& inputs,
                                              bool trainable);

// Whether any parameter of `m` (recursively) requires a gradient.
bool has_trainable_parameters(const torch::nn::Module& m);

}  // namespace rass::nn
