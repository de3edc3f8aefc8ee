// LoRA surgery on weights: which UNet layers OSEDiff/RASS put LoRA on and in
// which adapter group, the best rank-r factors of a weight difference
// (truncated SVD, PEFT's A/B layout), GleSAM's channel replication, and
// saving several named adapters in one PEFT-named file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace rass::model {

// The layer paths of a UNet that OSEDiff's initialize_unet (and RASS's
// stage-2 unet_lora) give LoRA to, by their grouping: a parameter name
// "<path>.weight" without "bias" or "norm" that contains one of to_k, to_q,
// to_v, to_out.0, conv, conv1, conv2, conv_in, conv_shortcut, conv_out,
// proj_out, proj_in, ff.net.2, ff.net.0.proj as a substring goes to
// encoder when it contains "down_blocks" or "conv_in", else to decoder when
// it contains "up_blocks" or "conv_out", else to others (the mid block).
// `with_conv_out` false drops conv_out, as RASS stage 2 does. Only layers
// the module can carry LoRA on (nn::lora_layers) are candidates.
struct LoraTargetGroups {
  std::vector<std::string> encoder, decoder, others;
  size_t size() const { return encoder.size() + decoder.size() + others.size(); }
};
LoraTargetGroups osediff_targets(torch::nn::Module& unet, bool with_conv_out);

// The best rank-r approximation of a layer's weight difference as PEFT's
// factors with scale 1 (alpha = r): delta ~ B A. Linear: delta [out, in],
// A [r, in], B [out, r]. Conv2d: delta [out, in, kh, kw] is factored as the
// matrix [out, in*kh*kw]; A [r, in, kh, kw] (a conv with the layer's kernel),
// B [out, r, 1, 1]. Singular values split evenly (A = sqrt(S) V^T,
// B = U sqrt(S)). When the matrix has fewer than r singular values the
// extra rows of A and columns of B are zero, so every layer has rank r.
struct LowRankFactors {
  torch::Tensor A, B;      // float32, on the device of `delta`
  double energy_kept = 1;  // sum of the kept s_i^2 / sum of all s_i^2 (1 for a zero difference)
  double energy_total = 0;  // sum of all s_i^2 (the squared Frobenius norm of delta)
  int64_t effective_rank = 0;  // min(r, number of singular values)
};
LowRankFactors low_rank_factors(const torch::Tensor& delta, int64_t rank);

// GleSAM's channel replication (torch's Tensor.repeat, no rescale):
// conv_in's weight [o, i, k, k] -> [o, n*i, k, k] with input channel j using
// the original channel j mod i; conv_out's weight [o, ...] -> [n*o, ...] and
// bias [o] -> [n*o], output channel j being the original j mod o.
torch::Tensor repeat_input_channels(const torch::Tensor& weight, int64_t n);
torch::Tensor repeat_output_channels(const torch::Tensor& weight_or_bias, int64_t n);

// Writes the adapters `names` of every LoRA layer of `root` in one file under
// PEFT's in-model names, adapter names kept ("<path>.lora_A.<adapter>.weight"),
// float32, with `metadata` (which should carry lora_alpha). Throws
// Error(usage) when no layer has any of them.
void save_named_adapters(torch::nn::Module& root, const std::vector<std::string>& names, const std::string& path,
                         const std::map<std::string, std::string>& metadata);

}  // namespace rass::model
