// The latent-diffusion VQ autoencoder ResShift, SinSR and SAMSR work in
// (ldm/models/autoencoder.py VQModelTorch over ldm/modules/diffusionmodules/
// model.py Encoder/Decoder and vqvae/quantize.py VectorQuantizer2; released
// as autoencoder_vq_f4.pth). Module names equal that checkpoint's keys
// (encoder.down.0.block.0.norm1.weight, quantize.embedding.weight, ...).
//
//   encode(x) = quant_conv(Encoder(x))                      (not quantised)
//   decode(h) = Decoder(post_quant_conv(nearest codebook entry of h))
// GroupNorm eps 1e-6; the encoder's downsampling pads right and bottom by
// one and convolves with stride 2; single-head attention in the middle
// block always, and in the levels of attn_resolutions (none in the released f4).
#pragma once
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

namespace rass::nn {

struct VqAutoencoderConfig {
  int64_t in_channels = 3, out_ch = 3, ch = 128, z_channels = 3, embed_dim = 3, n_embed = 8192;
  std::vector<int64_t> ch_mult{1, 2, 4};
  int64_t num_res_blocks = 2;
  int64_t resolution = 256;
  std::vector<int64_t> attn_resolutions{};
  int64_t factor() const { return int64_t(1) << (int64_t(ch_mult.size()) - 1); }
};

struct LdmResnetBlockImpl : torch::nn::Module {
  LdmResnetBlockImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, nin_shortcut{nullptr};
};
TORCH_MODULE(LdmResnetBlock);

struct LdmAttnBlockImpl : torch::nn::Module {
  explicit LdmAttnBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(LdmAttnBlock);

// One level of the encoder (down.i) or decoder (up.i): block.j, attn.j and
// its downsample.conv / upsample.conv.
struct LdmLevelImpl : torch::nn::Module {
  torch::nn::ModuleList block{nullptr}, attn{nullptr};
  torch::nn::Conv2d resample{nullptr};
};
TORCH_MODULE(LdmLevel);

struct LdmMidImpl : torch::nn::Module {
  explicit LdmMidImpl(int64_t ch);
  torch::Tensor forward(const torch::Tensor& x);
  LdmResnetBlock block_1{nullptr}, block_2{nullptr};
  LdmAttnBlock attn_1{nullptr};
};
TORCH_MODULE(LdmMid);

struct LdmEncoderImpl : torch::nn::Module {
  explicit LdmEncoderImpl(const VqAutoencoderConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down{nullptr};
  LdmMid mid{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(LdmEncoder);

struct LdmDecoderImpl : torch::nn::Module {
  explicit LdmDecoderImpl(const VqAutoencoderConfig& c);
  torch::Tensor forward(const torch::Tensor& z);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up{nullptr};
  LdmMid mid{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(LdmDecoder);

struct VqAutoencoderImpl : torch::nn::Module {
  explicit VqAutoencoderImpl(const VqAutoencoderConfig& c);
  // [B, 3, H, W] in [-1, 1] -> [B, embed_dim, H/f, W/f] (before quantisation).
  torch::Tensor encode(const torch::Tensor& x);
  // Each pixel's nearest codebook entry (squared distance as the reference
  // computes it, |z|^2 + |e|^2 - 2 z.e, in float32 whatever the dtype; the
  // first on ties), returned as z + (e - z) in z's dtype as the reference's
  // straight-through form gives it.
  torch::Tensor quantize_latent(const torch::Tensor& h);
  // quantise, post_quant_conv, decoder: [B, out_ch, H*f, W*f].
  torch::Tensor decode(const torch::Tensor& h);
  VqAutoencoderConfig config;
  LdmEncoder encoder{nullptr};
  LdmDecoder decoder{nullptr};
  torch::nn::Embedding codebook{nullptr};  // quantize.embedding
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(VqAutoencoder);

}  // namespace rass::nn
