#include "rass/nn/lora.hpp"

#include <cmath>

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

void LoraLayer::add_adapter(const std::string& name, int64_t r, double alpha, bool gaussian) {
  if (r < 1) throw Error(ExitCode::usage, "LoRA rank must be >= 1");
  torch::NoGradGuard no_grad;
  LoraAdapter a;
  a.rank = r;
  a.alpha = alpha;
  const auto opts = base_weight().options().requires_grad(false);
  a.A = torch::empty(a_shape(r), opts);
  if (gaussian) torch::nn::init::normal_(a.A, 0.0, 1.0 / double(r));
  else torch::nn::init::kaiming_uniform_(a.A, std::sqrt(5.0));
  a.B = torch::zeros(b_shape(r), opts);
  adapters[name] = a;
}

void LoraLayer::merge(const std::string& name) {
  auto it = adapters.find(name);
  if (it == adapters.end() || it->second.merged || !it->second.enabled) return;
  torch::NoGradGuard no_grad;
  base_weight().add_(delta(it->second).to(base_weight().scalar_type()) * it->second.scale());
  it->second.merged = true;
}

void LoraLayer::unmerge(const std::string& name) {
  auto it = adapters.find(name);
  if (it == adapters.end() || !it->second.merged) return;
  torch::NoGradGuard no_grad;
  base_weight().sub_(delta(it->second).to(base_weight().scalar_type()) * it->second.scale());
  it->second.merged = false;
}

void LoraLayer::move_adapters(c10::optional<torch::Device> device, c10::optional<torch::Dtype> dtype) {
  torch::NoGradGuard no_grad;
  for (auto& [name, a] : adapters) {
    const auto d = device ? *device : a.A.device();
    const auto t = dtype ? *dtype : a.A.scalar_type();
    a.A = a.A.to(d, t);
    a.B = a.B.to(d, t);
  }
}

torch::Tensor LoraLayer::lora_out(const torch::Tensor& x, torch::Tensor y) {
  for (auto& [name, a] : adapters) {
    if (!a.enabled || a.merged) continue;
    y = y + apply_b(a, apply_a(a, x.to(a.A.scalar_type()))).to(y.scalar_type()) * a.scale();
  }
  return y;
}

LoraLinearImpl::LoraLinearImpl(int64_t in, int64_t out, bool with_bias) {
  weight = register_parameter("weight", torch::empty({out, in}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    bias = register_parameter("bias", torch::empty({out}));
    const double bound = 1.0 / std::sqrt(double(in));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

void LoraLinearImpl::to(torch::Device d, torch::Dtype t, bool nb) {
  torch::nn::Module::to(d, t, nb);
  move_adapters(d, t);
}
void LoraLinearImpl::to(torch::Dtype t, bool nb) {
  torch::nn::Module::to(t, nb);
  move_adapters(c10::nullopt, t);
}
void LoraLinearImpl::to(torch::Device d, bool nb) {
  torch::nn::Module::to(d, nb);
  move_adapters(d, c10::nullopt);
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = F::linear(x, weight, bias);
  return adapters.empty() ? y : lora_out(x, y);
}

torch::Tensor LoraLinearImpl::delta(const LoraAdapter& a) const { return torch::matmul(a.B, a.A); }
torch::Tensor LoraLinearImpl::apply_a(const LoraAdapter& a, const torch::Tensor& x) const { return F::linear(x, a.A); }
torch::Tensor LoraLinearImpl::apply_b(const LoraAdapter& a, const torch::Tensor& h) const { return F::linear(h, a.B); }

LoraConv2dImpl::LoraConv2dImpl(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool with_bias)
    : stride(s), padding(p) {
  weight = register_parameter("weight", torch::empty({out, in, k, k}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    bias = register_parameter("bias", torch::empty({out}));
    const double bound = 1.0 / std::sqrt(double(in * k * k));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

void LoraConv2dImpl::to(torch::Device d, torch::Dtype t, bool nb) {
  torch::nn::Module::to(d, t, nb);
  move_adapters(d, t);
}
void LoraConv2dImpl::to(torch::Dtype t, bool nb) {
  torch::nn::Module::to(t, nb);
  move_adapters(c10::nullopt, t);
}
void LoraConv2dImpl::to(torch::Device d, bool nb) {
  torch::nn::Module::to(d, nb);
  move_adapters(d, c10::nullopt);
}

torch::Tensor LoraConv2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = F::conv2d(x, weight, F::Conv2dFuncOptions().bias(bias).stride(stride).padding(padding));
  return adapters.empty() ? y : lora_out(x, y);
}

torch::Tensor LoraConv2dImpl::delta(const LoraAdapter& a) const {
  // delta[o, i, kh, kw] = sum_r B[o, r] A[r, i, kh, kw]
  const auto& A = a.A;
  return torch::matmul(a.B.flatten(1), A.flatten(1)).view(weight.sizes());
}
torch::Tensor LoraConv2dImpl::apply_a(const LoraAdapter& a, const torch::Tensor& x) const {
  return F::conv2d(x, a.A, F::Conv2dFuncOptions().stride(stride).padding(padding));
}
torch::Tensor LoraConv2dImpl::apply_b(const LoraAdapter& a, const torch::Tensor& h) const { return F::conv2d(h, a.B); }

std::vector<std::pair<std::string, LoraLayer*>> lora_layers(torch::nn::Module& root) {
  std::vector<std::pair<std::string, LoraLayer*>> out;
  for (const auto& item : root.named_modules("", false))
    if (auto* l = dynamic_cast<LoraLayer*>(item.value().get())) out.emplace_back(item.key(), l);
  return out;
}

static bool matches(const std::string& path, const std::string& target) {
  return path == target ||
         (path.size() > target.size() && path.compare(path.size() - target.size(), target.size(), target) == 0 &&
          path[path.size() - target.size() - 1] == '.');
}

size_t add_lora(torch::nn::Module& root, const std::string& name, int64_t rank, double alpha,
                const std::vector<std::string>& targets, bool gaussian) {
  size_t n = 0;
  for (auto& [path, layer] : lora_layers(root))
    for (const auto& t : targets)
      if (matches(path, t)) {
        layer->add_adapter(name, rank, alpha, gaussian);
        ++n;
        break;
      }
  return n;
}

void set_lora_enabled(torch::nn::Module& root, const std::string& name, bool enabled) {
  for (auto& [path, layer] : lora_layers(root)) {
    auto it = layer->adapters.find(name);
    if (it == layer->adapters.end()) continue;
    if (!enabled && it->second.merged) layer->unmerge(name);  // a merged adapter is switched off by unmerging it
    it->second.enabled = enabled;
  }
}

void set_lora_scale(torch::nn::Module& root, const std::string& name, double scale) {
  for (auto& [path, layer] : lora_layers(root)) {
    auto it = layer->adapters.find(name);
    if (it == layer->adapters.end()) continue;
    if (it->second.merged) throw Error(ExitCode::usage, "cannot rescale merged LoRA adapter '" + name + "'; unmerge it first");
    it->second.user_scale = scale;
  }
}

void merge_lora(torch::nn::Module& root, const std::string& name) {
  for (auto& [path, layer] : lora_layers(root)) layer->merge(name);
}

void unmerge_lora(torch::nn::Module& root, const std::string& name) {
  for (auto& [path, layer] : lora_layers(root)) layer->unmerge(name);
}

}  // namespace rass::nn
