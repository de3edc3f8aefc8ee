// Linear and Conv2d layers that carry PEFT-style LoRA adapters.
//
// The base parameters keep torch's names ("weight", "bias"), so a checkpoint
// without LoRA loads unchanged. Each adapter is PEFT's lora_A (in -> r; for
// Conv2d the layer's kernel, stride and padding) and lora_B (r -> out; 1x1
// for Conv2d), scaled by alpha / r * user scale:
//   y = base(x) + scale * B(A(x)),
// several named adapters per layer, each enabled or disabled, merged into the
// base weight (W += scale * B A) and unmerged again.
//
// The adapters are registered parameters under PEFT's names: adapter `name`
// of the layer at path P is "P.lora_A.<name>.weight" and "P.lora_B.<name>.weight"
// (PEFT's own model has the same names, its base weight as
// "P.base_layer.weight"; save_pretrained drops the adapter name:
// "P.lora_A.weight"). So parameters(), named_parameters(), state-dict saving
// (torch::save, a safetensors writer over named_parameters()), loading and
// Module::to see them with no special case. A merged adapter keeps its
// parameters (as PEFT does). New adapter parameters require grad; the base
// parameters are left as they are until mark_only_lora_as_trainable.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

namespace rass::nn {

struct LoraAdapter {
  // The registered parameters lora_A.<name>.weight and lora_B.<name>.weight
  // (handles to the same tensors: Module::to and in-place loads keep them).
  torch::Tensor A, B;
  int64_t rank = 0;
  double alpha = 0;
  double user_scale = 1.0;
  bool enabled = true;
  bool merged = false;
  double scale() const { return alpha / double(rank) * user_scale; }
  // Whether it adds a path of its own to the layer's output (not folded into the weight).
  bool live() const { return enabled && !merged; }
};

// Common part of LoraLinear and LoraConv2d. The adapter settings (scale,
// enabled, merged) are model configuration, changed between calls, never by
// forward: forward only reads them, so concurrent forwards are safe.
struct LoraLayer {
  virtual ~LoraLayer() = default;
  std::map<std::string, LoraAdapter> adapters;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // Shapes of A and B for rank r.
  virtual std::vector<int64_t> a_shape(int64_t r) const = 0;
  virtual std::vector<int64_t> b_shape(int64_t r) const = 0;
  // B A as a tensor of the base weight's shape.
  virtual torch::Tensor delta(const LoraAdapter& a) const = 0;
  virtual torch::Tensor& base_weight() = 0;
  // Adds adapter `name` (rank r, alpha) as registered parameters: A
  // Kaiming-uniform and B zero (PEFT's default), or with `gaussian` A ~ N(0, 1/r)
  // and B zero (PEFT's "gaussian"). An adapter of the same name is replaced.
  void add_adapter(const std::string& name, int64_t r, double alpha, bool gaussian = false);
  // Removes adapter `name` and its parameters (unmerging it first if merged).
  void delete_adapter(const std::string& name);
  void merge(const std::string& name);
  void unmerge(const std::string& name);
  // y + the unmerged, enabled adapters' outputs on x.
  torch::Tensor lora_out(const torch::Tensor& x, torch::Tensor y) const;
  // Whether lora_out adds anything: an enabled adapter not merged into the weight.
  bool has_live_adapter() const;

 protected:
  // The torch::nn::Module side of the layer (where the adapters are registered).
  virtual torch::nn::Module& as_module() = 0;
  virtual torch::Tensor apply_a(const LoraAdapter& a, const torch::Tensor& x) const = 0;
  virtual torch::Tensor apply_b(const LoraAdapter& a, const torch::Tensor& h) const = 0;

 private:
  // The "lora_A" / "lora_B" containers (registered while the layer has an
  // adapter), each holding one submodule per adapter with a "weight" parameter.
  std::shared_ptr<torch::nn::Module> lora_A_, lora_B_;
};

struct LoraLinearImpl : torch::nn::Module, LoraLayer {
  LoraLinearImpl(int64_t in, int64_t out, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t in_features() const override { return weight.size(1); }
  int64_t out_features() const override { return weight.size(0); }
  std::vector<int64_t> a_shape(int64_t r) const override { return {r, weight.size(1)}; }
  std::vector<int64_t> b_shape(int64_t r) const override { return {weight.size(0), r}; }
  torch::Tensor delta(const LoraAdapter& a) const override;
  torch::Tensor& base_weight() override { return weight; }

 protected:
  torch::nn::Module& as_module() override { return *this; }
  torch::Tensor apply_a(const LoraAdapter& a, const torch::Tensor& x) const override;
  torch::Tensor apply_b(const LoraAdapter& a, const torch::Tensor& h) const override;
};
TORCH_MODULE(LoraLinear);

struct LoraConv2dImpl : torch::nn::Module, LoraLayer {
  LoraConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t stride, padding;
  int64_t in_features() const override { return weight.size(1); }
  int64_t out_features() const override { return weight.size(0); }
  std::vector<int64_t> a_shape(int64_t r) const override { return {r, weight.size(1), weight.size(2), weight.size(3)}; }
  std::vector<int64_t> b_shape(int64_t r) const override { return {weight.size(0), r, 1, 1}; }
  torch::Tensor delta(const LoraAdapter& a) const override;
  torch::Tensor& base_weight() override { return weight; }

 protected:
  torch::nn::Module& as_module() override { return *this; }
  torch::Tensor apply_a(const LoraAdapter& a, const torch::Tensor& x) const override;
  torch::Tensor apply_b(const LoraAdapter& a, const torch::Tensor& h) const override;
};
TORCH_MODULE(LoraConv2d);

// Every LoRA-capable layer under `root`, by its state-dict path ("down_blocks.0.resnets.0.conv1").
std::vector<std::pair<std::string, LoraLayer*>> lora_layers(torch::nn::Module& root);
// PEFT's target_modules match: `path` is `target` or ends with "." + target.
bool lora_target_matches(const std::string& path, const std::string& target);
// Adds adapter `name` to the layers whose path ends with one of `targets`
// (PEFT's target_modules matching: "to_q" matches "...attn1.to_q"). Returns the count.
size_t add_lora(torch::nn::Module& root, const std::string& name, int64_t rank, double alpha,
                const std::vector<std::string>& targets, bool gaussian = false);
// Removes adapter `name` from every layer (PEFT's delete_adapter).
void delete_lora(torch::nn::Module& root, const std::string& name);
void set_lora_enabled(torch::nn::Module& root, const std::string& name, bool enabled);
void set_lora_scale(torch::nn::Module& root, const std::string& name, double scale);
// Merging (here and in merge_and_unload_lora) throws Error(bad_input) naming
// the layer when finite weights become non-finite (an overflow).
void merge_lora(torch::nn::Module& root, const std::string& name);
void unmerge_lora(torch::nn::Module& root, const std::string& name);
// PEFT's merge_and_unload: folds every enabled, unmerged adapter of every
// layer into its base weight (W += scale * B A, computed in float32 whatever
// the weight's dtype) and removes all adapters, leaving the plain model.
// Returns the number of (layer, adapter) pairs merged.
size_t merge_and_unload_lora(torch::nn::Module& root);

// Whether a parameter name (as named_parameters() gives it) is a LoRA
// adapter's: "<path>.lora_A.<adapter>.weight" or lora_B; `adapter` receives
// the adapter's name.
bool is_lora_parameter(const std::string& name, std::string* adapter = nullptr);
// For training (PEFT's mark_only_lora_as_trainable): freezes every parameter
// of `root` (requires_grad false) except the LoRA parameters of `adapters`
// (of every adapter when empty), which require grad. Returns
// trainable_parameters(root).
torch::OrderedDict<std::string, torch::Tensor> mark_only_lora_as_trainable(torch::nn::Module& root,
                                                                            const std::vector<std::string>& adapters = {});
// The parameters that require grad, by name (what an optimizer is given).
torch::OrderedDict<std::string, torch::Tensor> trainable_parameters(torch::nn::Module& root);

}  // namespace rass::nn
