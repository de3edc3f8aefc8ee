// Linear and Conv2d layers that carry PEFT-style LoRA adapters.
//
// The base parameters keep torch's names ("weight", "bias"), so a checkpoint
// without LoRA loads unchanged; adapters are not registered submodules, so
// they never appear as missing tensors. Each adapter is PEFT's lora_A
// (in -> r; for Conv2d the layer's kernel, stride and padding) and lora_B
// (r -> out; 1x1 for Conv2d), scaled by alpha / r * user scale:
//   y = base(x) + scale * B(A(x)),
// several named adapters per layer, each enabled or disabled, merged into the
// base weight (W += scale * B A) and unmerged again.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace rass::nn {

struct LoraAdapter {
  torch::Tensor A, B;  // lora_A.weight, lora_B.weight
  int64_t rank = 0;
  double alpha = 0;
  double user_scale = 1.0;
  bool enabled = true;
  bool merged = false;
  double scale() const { return alpha / double(rank) * user_scale; }
};

// Common part of LoraLinear and LoraConv2d.
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
  // Adds adapter `name` (rank r, alpha): A Kaiming-uniform and B zero (PEFT's
  // default), or both Gaussian (PEFT's "gaussian": A ~ N(0, 1/r), B zero).
  void add_adapter(const std::string& name, int64_t r, double alpha, bool gaussian = false);
  void merge(const std::string& name);
  void unmerge(const std::string& name);
  torch::Tensor lora_out(const torch::Tensor& x, torch::Tensor y);
  // Adapters are not registered tensors, so Module::to would leave them behind.
  void move_adapters(c10::optional<torch::Device> device, c10::optional<torch::Dtype> dtype);

 protected:
  virtual torch::Tensor apply_a(const LoraAdapter& a, const torch::Tensor& x) const = 0;
  virtual torch::Tensor apply_b(const LoraAdapter& a, const torch::Tensor& h) const = 0;
};

struct LoraLinearImpl : torch::nn::Module, LoraLayer {
  LoraLinearImpl(int64_t in, int64_t out, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;
  torch::Tensor weight, bias;
  int64_t in_features() const override { return weight.size(1); }
  int64_t out_features() const override { return weight.size(0); }
  std::vector<int64_t> a_shape(int64_t r) const override { return {r, weight.size(1)}; }
  std::vector<int64_t> b_shape(int64_t r) const override { return {weight.size(0), r}; }
  torch::Tensor delta(const LoraAdapter& a) const override;
  torch::Tensor& base_weight() override { return weight; }

 protected:
  torch::Tensor apply_a(const LoraAdapter& a, const torch::Tensor& x) const override;
  torch::Tensor apply_b(const LoraAdapter& a, const torch::Tensor& h) const override;
};
TORCH_MODULE(LoraLinear);

struct LoraConv2dImpl : torch::nn::Module, LoraLayer {
  LoraConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;
  torch::Tensor weight, bias;
  int64_t stride, padding;
  int64_t in_features() const override { return weight.size(1); }
  int64_t out_features() const override { return weight.size(0); }
  std::vector<int64_t> a_shape(int64_t r) const override { return {r, weight.size(1), weight.size(2), weight.size(3)}; }
  std::vector<int64_t> b_shape(int64_t r) const override { return {weight.size(0), r, 1, 1}; }
  torch::Tensor delta(const LoraAdapter& a) const override;
  torch::Tensor& base_weight() override { return weight; }

 protected:
  torch::Tensor apply_a(const LoraAdapter& a, const torch::Tensor& x) const override;
  torch::Tensor apply_b(const LoraAdapter& a, const torch::Tensor& h) const override;
};
TORCH_MODULE(LoraConv2d);

// Every LoRA-capable layer under `root`, by its state-dict path ("down_blocks.0.resnets.0.conv1").
std::vector<std::pair<std::string, LoraLayer*>> lora_layers(torch::nn::Module& root);
// Adds adapter `name` to the layers whose path ends with one of `targets`
// (PEFT's target_modules matching: "to_q" matches "...attn1.to_q"). Returns the count.
size_t add_lora(torch::nn::Module& root, const std::string& name, int64_t rank, double alpha,
                const std::vector<std::string>& targets, bool gaussian = false);
void set_lora_enabled(torch::nn::Module& root, const std::string& name, bool enabled);
void set_lora_scale(torch::nn::Module& root, const std::string& name, double scale);
void merge_lora(torch::nn::Module& root, const std::string& name);
void unmerge_lora(torch::nn::Module& root, const std::string& name);

}  // namespace rass::nn
