// Activation checkpointing (lib/rass/nn/activation_checkpoint.cpp, the UNet's
// set_gradient_checkpointing): the same outputs and the same gradients as the
// plain forward and backward, for full fine-tuning and for LoRA behind a
// frozen stem (where torch.utils.checkpoint's reentrant form would lose the
// gradients), the attention maps a capture asks for kept in the graph
// through their block's replay, and a smaller graph (the saved activations).
#include "torch_doctest.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <torch/csrc/autograd/function.h>

#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/activation_checkpoint.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/upsample_conv.hpp"
#include "rass/nn/vae.hpp"

using namespace rass;

namespace {

const std::string kCkDir = std::string(RASS_FIXTURES) + "/nn";

nn::UNet2DCondition tiny_unet() {
  nn::UNet2DCondition unet(model::read_unet_config(kCkDir + "/unet_tiny/config.json"));
  auto weights = SafeTensorsFile::open(kCkDir + "/unet_tiny/diffusion_pytorch_model.safetensors");
  model::load_state_dict(*unet, *weights);
  return unet;
}

struct Inputs {
  torch::Tensor x, t, ctx;
};
Inputs tiny_inputs() {
  auto io = SafeTensorsFile::open(kCkDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  return {get("sample"), get("timesteps"), get("context")};
}

// Output and every trainable tensor's gradient of loss = sum(out * w) (a
// fixed random weighting, so every output element matters).
struct Run {
  torch::Tensor out, x_grad;
  std::map<std::string, torch::Tensor> grads;
};
Run run(nn::UNet2DCondition& unet, const Inputs& in, bool x_grad, nn::UNetCaptures* cap = nullptr) {
  for (auto& p : unet->parameters()) p.mutable_grad() = torch::Tensor();
  torch::Tensor x = in.x.clone().requires_grad_(x_grad);
  Run r;
  r.out = unet->forward(x, in.t, in.ctx, cap);
  torch::manual_seed(9);
  torch::Tensor loss = (r.out * torch::randn_like(r.out)).sum();
  if (cap)
    for (const auto& a : cap->attention) loss = loss + a.probs.square().sum();
  loss.backward();
  if (x_grad) r.x_grad = x.grad().clone();
  for (const auto& p : unet->named_parameters())
    if (p.value().requires_grad()) r.grads[p.key()] = p.value().grad().defined() ? p.value().grad().clone() : torch::Tensor();
  return r;
}

void check_same(const Run& a, const Run& b) {
  CHECK((a.out - b.out).abs().max().item<double>() <= 1e-6);
  if (a.x_grad.defined()) CHECK((a.x_grad - b.x_grad).abs().max().item<double>() <= 1e-6);
  REQUIRE(a.grads.size() == b.grads.size());
  size_t nonzero = 0;
  for (const auto& [name, g] : a.grads) {
    CAPTURE(name);
    const auto& h = b.grads.at(name);
    REQUIRE(g.defined() == h.defined());
    if (!g.defined()) continue;
    CHECK((g - h).abs().max().item<double>() <= 1e-5 * (1 + g.abs().max().item<double>()));
    nonzero += g.abs().max().item<double>() > 0;
  }
  CHECK(nonzero > a.grads.size() / 2);  // the comparison is of real gradients
}

// The nodes of the autograd graph reachable from `roots` (what the forward
// leaves for the backward: the saved activations hang on them).
size_t graph_size(std::vector<torch::autograd::Node*> roots) {
  std::set<torch::autograd::Node*> seen;
  while (!roots.empty()) {
    auto* n = roots.back();
    roots.pop_back();
    if (!n || !seen.insert(n).second) continue;
    for (const auto& e : n->next_edges()) roots.push_back(e.function.get());
  }
  return seen.size();
}

}  // namespace

TEST_CASE("gradient checkpointing: full fine-tuning gives the plain run's outputs and gradients") {
  auto unet = tiny_unet();
  const Inputs in = tiny_inputs();
  const Run plain = run(unet, in, true);
  unet->set_gradient_checkpointing(true);
  const Run ck = run(unet, in, true);
  check_same(plain, ck);
  // Inference is untouched: no graph, the same output.
  torch::NoGradGuard ng;
  CHECK((unet->forward(in.x, in.t, in.ctx) - plain.out).abs().max().item<double>() <= 1e-6);
}

TEST_CASE("gradient checkpointing: LoRA behind a frozen stem still gets every gradient") {
  auto unet = tiny_unet();
  for (auto& p : unet->parameters()) p.requires_grad_(false);
  torch::manual_seed(5);
  // Adapters on the resnets' convolutions and the attention projections; the
  // stem (conv_in) and the input carry no gradient.
  REQUIRE(nn::add_lora(*unet, "default", 4, 4.0, {"conv1", "conv2", "to_q", "to_k", "to_v", "to_out.0"}) > 0);
  {
    torch::NoGradGuard ng;  // B starts at zero: give the adapters an effect
    for (auto& [path, layer] : nn::lora_layers(*unet))
      if (layer->adapters.count("default")) layer->adapters.at("default").B.normal_(0, 0.05);
  }
  const Inputs in = tiny_inputs();
  const Run plain = run(unet, in, false);
  unet->set_gradient_checkpointing(true);
  const Run ck = run(unet, in, false);
  check_same(plain, ck);
  // The first resnet's adapters sit right after the frozen stem.
  const auto& first = ck.grads.at("down_blocks.0.resnets.0.conv1.lora_A.default.weight");
  REQUIRE(first.defined());
  CHECK(first.abs().max().item<double>() > 0);
}

TEST_CASE("gradient checkpointing: captured attention maps keep their graph; saved activations shrink, maps or not") {
  auto unet = tiny_unet();
  const Inputs in = tiny_inputs();
  nn::UNetCaptures cap_a, cap_b;
  cap_a.cross_attention = cap_b.cross_attention = true;
  const Run plain = run(unet, in, true, &cap_a);
  unet->set_gradient_checkpointing(true);
  const Run ck = run(unet, in, true, &cap_b);
  check_same(plain, ck);
  REQUIRE(cap_a.attention.size() == cap_b.attention.size());
  REQUIRE(!cap_b.attention.empty());
  for (size_t i = 0; i < cap_b.attention.size(); ++i) {
    CAPTURE(cap_a.attention[i].path);
    CHECK(cap_b.attention[i].probs.requires_grad());
    CHECK(cap_a.attention[i].path == cap_b.attention[i].path);  // each map under its own layer's name
    CHECK(torch::equal(cap_a.attention[i].probs, cap_b.attention[i].probs));
  }

  // The graph the forward leaves for the backward (what holds the saved
  // activations): its nodes, walked from the output and, with a capture,
  // from every captured map (the maps are outputs of their block's
  // checkpoint, so their attention blocks keep no inner activations either).
  auto graph_nodes = [&](bool on, bool capture) {
    unet->set_gradient_checkpointing(on);
    torch::Tensor x = in.x.clone().requires_grad_(true);
    nn::UNetCaptures cap;
    cap.cross_attention = capture;
    torch::Tensor out = unet->forward(x, in.t, in.ctx, capture ? &cap : nullptr);
    std::vector<torch::autograd::Node*> roots{out.grad_fn().get()};
    for (const auto& a : cap.attention) roots.push_back(a.probs.grad_fn().get());
    return graph_size(roots);
  };
  const size_t nodes_plain = graph_nodes(false, false), nodes_ck = graph_nodes(true, false);
  const size_t nodes_plain_cap = graph_nodes(false, true), nodes_ck_cap = graph_nodes(true, true);
  MESSAGE("autograd nodes: plain " << nodes_plain << ", checkpointed " << nodes_ck << "; with the maps captured "
                                   << nodes_plain_cap << " and " << nodes_ck_cap);
  CHECK(nodes_ck * 4 < nodes_plain);
  CHECK(nodes_ck_cap * 4 < nodes_plain_cap);
  CHECK(nodes_ck_cap == nodes_ck);  // the maps add outputs to the blocks' nodes, no nodes
}

TEST_CASE("gradient checkpointing: the VAE's encoder and decoder, trained or only passed through") {
  nn::AutoencoderKL vae(model::read_vae_config(kCkDir + "/vae_tiny/config.json"));
  model::load_state_dict(*vae, *SafeTensorsFile::open(kCkDir + "/vae_tiny/diffusion_pytorch_model.safetensors"));
  auto io = SafeTensorsFile::open(kCkDir + "/vae_tiny_io.safetensors");
  const torch::Tensor x0 = model::to_tensor(*io->find("x"), io->path());
  // loss = sum(decode(encode(x).mean) * w); the gradients of every VAE tensor
  // (the vae stage) or, frozen, of the latent alone (scr's image-space losses).
  struct VaeRun {
    torch::Tensor out, z_grad;
    std::map<std::string, torch::Tensor> grads;
    size_t nodes = 0;
  };
  auto run_vae = [&](bool ckpt, bool train) {
    vae->set_gradient_checkpointing(ckpt);
    for (auto& p : vae->parameters()) {
      p.requires_grad_(train);
      p.mutable_grad() = torch::Tensor();
    }
    VaeRun r;
    torch::Tensor z = vae->encode(x0).mean;
    if (!train) z = z.detach().requires_grad_(true);
    r.out = vae->decode(z);
    r.nodes = graph_size({r.out.grad_fn().get()});
    torch::manual_seed(3);
    (r.out * torch::randn_like(r.out)).sum().backward();
    if (!train) r.z_grad = z.grad().clone();
    for (const auto& p : vae->named_parameters())
      if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
    return r;
  };
  // The upsampler's inference kernel (the phase convolution) forced at this
  // tiny size: its sums differ from the training path's at float rounding,
  // and a checkpointed forward must take the training path (the replay's).
  struct PhasesGuard {
    nn::UpsamplePhases was = nn::upsample_phases();
    ~PhasesGuard() { nn::set_upsample_phases(was); }
  } phases_guard;  // restored however the case ends
  nn::set_upsample_phases(nn::UpsamplePhases::force);
  for (bool train : {true, false}) {
    CAPTURE(train);
    const VaeRun plain = run_vae(false, train), ck = run_vae(true, train);
    {
      torch::NoGradGuard ng;  // the premise: inference takes another kernel here
      CHECK(!torch::equal(vae->decode(vae->encode(x0).mean), plain.out));
    }
    CHECK(torch::equal(plain.out, ck.out));  // the forward takes the replay's (training) kernels
    REQUIRE(plain.grads.size() == ck.grads.size());
    CHECK(plain.grads.size() == (train ? vae->parameters().size() : 0));
    for (const auto& [name, g] : plain.grads) {
      CAPTURE(name);
      CHECK((g - ck.grads.at(name)).abs().max().item<double>() <= 1e-5 * (1 + g.abs().max().item<double>()));
    }
    if (!train) {
      CHECK(plain.z_grad.abs().max().item<double>() > 0);
      CHECK((plain.z_grad - ck.z_grad).abs().max().item<double>() <= 1e-5 * (1 + plain.z_grad.abs().max().item<double>()));
    }
    MESSAGE("VAE autograd nodes (train " << train << "): plain " << plain.nodes << ", checkpointed " << ck.nodes);
    CHECK(ck.nodes * 3 < plain.nodes);
  }
  vae->set_gradient_checkpointing(false);
}

TEST_CASE("checkpoint(): a block without trainable parameters and inputs without gradients is a plain call") {
  torch::Tensor a = torch::ones({2});
  auto y = nn::checkpoint([](const std::vector<torch::Tensor>& v) { return v[0] * 2; }, {a}, false);
  CHECK(!y.requires_grad());
  CHECK(y.sum().item<float>() == 4.0f);
  // With a trainable block the output joins the graph even though its input does not.
  torch::Tensor w = torch::full({2}, 3.0f).requires_grad_(true);
  auto z = nn::checkpoint([w](const std::vector<torch::Tensor>& v) { return v[0] * w; }, {a}, true);
  REQUIRE(z.requires_grad());
  z.sum().backward();
  CHECK(torch::equal(w.grad(), torch::ones({2})));
}

TEST_CASE("checkpoint_outputs(): several outputs, a loss on some of them, views and aliases made outputs of their own") {
  // f(a) = {a * w, (a * w).exp(), a (the input itself), view of the first}
  torch::Tensor w = torch::tensor({0.5f, -1.0f, 2.0f}).requires_grad_(true);
  torch::Tensor a0 = torch::tensor({1.0f, 2.0f, 3.0f});
  auto f = [w](const std::vector<torch::Tensor>& v) {
    torch::Tensor p = v[0] * w;
    return std::vector<torch::Tensor>{p, p.exp(), v[0], p.view({3, 1})};
  };
  auto grads_of = [&](bool ck, bool use_first, bool use_second) {
    w.mutable_grad() = torch::Tensor();
    torch::Tensor a = a0.clone().requires_grad_(true);
    const auto y = ck ? nn::checkpoint_outputs(f, {a}, true) : f({a});
    REQUIRE(y.size() == 4);
    torch::Tensor loss = (y[2] * 3).sum() + (y[3] * y[3]).sum();
    if (use_first) loss = loss + (y[0] * torch::tensor({1.0f, 2.0f, 3.0f})).sum();
    if (use_second) loss = loss + y[1].sum();
    loss.backward();
    return std::make_pair(a.grad().clone(), w.grad().clone());
  };
  for (int mask = 0; mask < 4; ++mask) {
    CAPTURE(mask);
    const auto plain = grads_of(false, mask & 1, mask & 2), ck = grads_of(true, mask & 1, mask & 2);
    CHECK(torch::allclose(plain.first, ck.first, 1e-6, 1e-6));
    CHECK(torch::allclose(plain.second, ck.second, 1e-6, 1e-6));
  }
  {
    // The input returned as an output and a view of the first output are
    // tensors of their own (an in-place change of one must not reach the
    // input the node keeps for its replay, nor another output).
    torch::Tensor a = a0.clone().requires_grad_(true);
    const auto y = nn::checkpoint_outputs(f, {a}, true);
    CHECK(!y[2].is_alias_of(a));
    CHECK(!y[3].is_alias_of(y[0]));
    CHECK(!y[3].is_view());
  }
  // By hand, the second output alone: d/dw exp(a w) = a exp(a w); d/da = w exp(a w).
  w.mutable_grad() = torch::Tensor();
  torch::Tensor a = a0.clone().requires_grad_(true);
  nn::checkpoint_outputs(f, {a}, true)[1].sum().backward();
  CHECK(torch::allclose(w.grad(), a0 * (a0 * w.detach()).exp(), 1e-6, 1e-6));
  CHECK(torch::allclose(a.grad(), w.detach() * (a0 * w.detach()).exp(), 1e-6, 1e-6));
}
