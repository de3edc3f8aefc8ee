#include "rass/nn/lora.hpp"

#include <algorithm>
#include <cmath>

#include <torch/nn/functional/conv.h>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

void LoraLayer::add_adapter(const std::string& name, int64_t r, double alpha, bool gaussian) {
  if (r < 1) throw Error(ExitCode::usage, "LoRA rank must be >= 1");
  if (name.empty() || name.find('.') != std::string::npos)
    throw Error(ExitCode::usage, "LoRA adapter name '" + name + "' must be non-empty and without '.'");
  if (adapters.count(name)) delete_adapter(name);
  LoraAdapter a;
  a.rank = r;
  a.alpha = alpha;
  const auto opts = base_weight().options().requires_grad(false);
  torch::Tensor A = torch::empty(a_shape(r), opts), B = torch::zeros(b_shape(r), opts);
  {
    torch::NoGradGuard no_grad;
    if (gaussian) torch::nn::init::normal_(A, 0.0, 1.0 / double(r));
    else torch::nn::init::kaiming_uniform_(A, std::sqrt(5.0));
  }
  torch::nn::Module& self = as_module();
  if (!lora_A_) {
    lora_A_ = self.register_module("lora_A", std::make_shared<torch::nn::Module>());
    lora_B_ = self.register_module("lora_B", std::make_shared<torch::nn::Module>());
  }
  // PEFT's lora_A[name] / lora_B[name] are bias-free Linear or Conv2d layers: one "weight" each.
  auto holder_a = std::make_shared<torch::nn::Module>(), holder_b = std::make_shared<torch::nn::Module>();
  a.A = holder_a->register_parameter("weight", A);
  a.B = holder_b->register_parameter("weight", B);
  lora_A_->register_module(name, holder_a);
  lora_B_->register_module(name, holder_b);
  adapters[name] = a;
}

void LoraLayer::delete_adapter(const std::string& name) {
  auto it = adapters.find(name);
  if (it == adapters.end()) return;
  if (it->second.merged) unmerge(name);
  lora_A_->unregister_module(name);
  lora_B_->unregister_module(name);
  adapters.erase(it);
  if (adapters.empty()) {  // the layer's module tree is the plain one again
    as_module().unregister_module("lora_A");
    as_module().unregister_module("lora_B");
    lora_A_.reset();
    lora_B_.reset();
  }
}

void LoraLayer::merge(const std::string& name) {
  auto it = adapters.find(name);
  if (it == adapters.end() || !it->second.live()) return;
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

bool LoraLayer::has_live_adapter() const {
  for (const auto& [name, a] : adapters)
    if (a.live()) return true;
  return false;
}

torch::Tensor LoraLayer::lora_out(const torch::Tensor& x, torch::Tensor y) const {
  for (const auto& [name, a] : adapters) {
    if (!a.live()) continue;
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

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = at::linear(x, weight, bias);  // the bias fused into the product (rass/nn/linear.hpp)
  return adapters.empty() ? y : lora_out(x, y);
}

torch::Tensor LoraLinearImpl::delta(const LoraAdapter& a) const { return torch::matmul(a.B, a.A); }
torch::Tensor LoraLinearImpl::apply_a(const LoraAdapter& a, const torch::Tensor& x) const { return at::linear(x, a.A); }
torch::Tensor LoraLinearImpl::apply_b(const LoraAdapter& a, const torch::Tensor& h) const { return at::linear(h, a.B); }

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

bool lora_target_matches(const std::string& path, const std::string& target) {
  return path == target ||
         (path.size() > target.size() && path.compare(path.size() - target.size(), target.size(), target) == 0 &&
          path[path.size() - target.size() - 1] == '.');
}

size_t add_lora(torch::nn::Module& root, const std::string& name, int64_t rank, double alpha,
                const std::vector<std::string>& targets, bool gaussian) {
  size_t n = 0;
  for (auto& [path, layer] : lora_layers(root))
    for (const auto& t : targets)
      if (lora_target_matches(path, t)) {
        layer->add_adapter(name, rank, alpha, gaussian);
        ++n;
        break;
      }
  return n;
}

void delete_lora(torch::nn::Module& root, const std::string& name) {
  for (auto& [path, layer] : lora_layers(root)) layer->delete_adapter(name);
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

namespace {
bool all_finite(const torch::Tensor& w) { return torch::isfinite(w).all().item<bool>(); }

// Finite LoRA values can overflow in their product (3e19 x 3e19): the merged
// weights would turn every later output into NaN, found (if at all) only
// after the work. Weights that were finite before must stay so.
[[noreturn]] void merged_overflow(const std::string& path) {
  throw Error(ExitCode::bad_input, "merging makes the weights of layer " + path +
                                       " non-finite (overflow): the LoRA's values, alpha or scale are too large");
}
}  // namespace

void merge_lora(torch::nn::Module& root, const std::string& name) {
  for (auto& [path, layer] : lora_layers(root)) {
    const auto it = layer->adapters.find(name);
    if (it == layer->adapters.end() || !it->second.live()) continue;
    const bool finite = all_finite(layer->base_weight());
    layer->merge(name);
    if (finite && !all_finite(layer->base_weight())) merged_overflow(path);
  }
}

void unmerge_lora(torch::nn::Module& root, const std::string& name) {
  for (auto& [path, layer] : lora_layers(root)) layer->unmerge(name);
}

size_t merge_and_unload_lora(torch::nn::Module& root) {
  size_t n = 0;
  torch::NoGradGuard no_grad;
  for (auto& [path, layer] : lora_layers(root)) {
    std::vector<std::string> names;
    const bool finite = !layer->adapters.empty() && all_finite(layer->base_weight());
    for (auto& [name, a] : layer->adapters) {
      names.push_back(name);
      if (!a.live()) continue;
      torch::Tensor& w = layer->base_weight();
      if (w.scalar_type() == torch::kFloat || w.scalar_type() == torch::kDouble)
        w.add_(layer->delta(a).to(w.scalar_type()), a.scale());  // in place: no copy of the weight
      else
        w.copy_((w.to(torch::kFloat) + layer->delta(a).to(torch::kFloat) * a.scale()).to(w.scalar_type()));
      ++n;
    }
    if (finite && !all_finite(layer->base_weight())) merged_overflow(path);
    for (const auto& name : names) {
      layer->adapters.at(name).merged = false;  // folded in for good: deleting must not subtract it
      layer->delete_adapter(name);
    }
  }
  return n;
}

bool is_lora_parameter(const std::string& name, std::string* adapter) {
  // [<path>.]lora_{A,B}.<adapter>.weight
  static const std::string suffix = ".weight";
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  const std::string head = name.substr(0, name.size() - suffix.size());  // [<path>.]lora_A.<adapter>
  const size_t dot = head.rfind('.');
  if (dot == std::string::npos || dot + 1 == head.size()) return false;
  const std::string container = head.substr(0, dot);
  const size_t start = container.rfind('.') == std::string::npos ? 0 : container.rfind('.') + 1;
  const std::string last = container.substr(start);
  if (last != "lora_A" && last != "lora_B") return false;
  if (adapter) *adapter = head.substr(dot + 1);
  return true;
}

torch::OrderedDict<std::string, torch::Tensor> mark_only_lora_as_trainable(torch::nn::Module& root,
                                                                            const std::vector<std::string>& adapters) {
  for (auto& p : root.named_parameters(true)) {
    std::string adapter;
    bool train = is_lora_parameter(p.key(), &adapter);
    if (train && !adapters.empty()) train = std::find(adapters.begin(), adapters.end(), adapter) != adapters.end();
    p.value().set_requires_grad(train);
  }
  return trainable_parameters(root);
}

torch::OrderedDict<std::string, torch::Tensor> trainable_parameters(torch::nn::Module& root) {
  torch::OrderedDict<std::string, torch::Tensor> out;
  for (auto& p : root.named_parameters(true))
    if (p.value().requires_grad()) out.insert(p.key(), p.value());
  return out;
}

}  // namespace rass::nn
