#include "rass/nn/mask_former_head.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/mask2former_decoder.hpp"
#include "rass/nn/msdeform_pixel_decoder.hpp"

namespace rass::nn {

namespace {

struct Reader {
  const nlohmann::json& j;
  const std::string& source;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const { throw_bad_input(source, key + " " + what); }

  // Counts of layers, heads and points build modules before any weight is
  // checked: a config asking for a million layers must fail at once, not
  // after minutes of allocation. Widths stop at kMaxWidth, points at 64 and
  // levels at 16 (the released head: 256 wide, 4 points, 3 levels): a
  // conv_dim of 1000000 asked for terabytes, then failed as "out of memory".
  void integer(const char* key, int& v, int min, int64_t max = 1'000'000) const {
    if (!j.contains(key)) return;
    const auto& x = j.at(key);
    if (!x.is_number_integer()) fail(key, "must be an integer, not " + x.dump());
    const auto n = x.get<int64_t>();
    if (n < min || n > max)
      fail(key, "= " + x.dump() + " (must be " + std::to_string(min) + " to " + std::to_string(max) + ")");
    v = static_cast<int>(n);
  }
  void boolean(const char* key, bool& v) const {
    if (!j.contains(key)) return;
    if (!j.at(key).is_boolean()) fail(key, "must be true or false, not " + j.at(key).dump());
    v = j.at(key).get<bool>();
  }
  void list(const char* key, std::vector<int>& v) const {
    if (!j.contains(key)) return;
    const auto& x = j.at(key);
    if (!x.is_array() || x.empty()) fail(key, "must be a non-empty list of integers, not " + x.dump());
    v.clear();
    for (const auto& e : x) {
      if (!e.is_number_integer() || e.get<int64_t>() < 1 || e.get<int64_t>() > 1'000'000)
        fail(key, "must hold positive integers, not " + e.dump());
      v.push_back(e.get<int>());
    }
  }
};

constexpr int64_t kMaxWidth = 65536;  // as a diffusers config's widths (model/config.cpp)

bool power_of_two(int v) { return v > 0 && (v & (v - 1)) == 0; }

void check_divides(const std::string& source, const char* what, int d, const char* of, int v) {
  if (v % d != 0)
    throw_bad_input(source, std::string(what) + " " + std::to_string(d) + " does not divide " + of + " " +
                                std::to_string(v));
}

}  // namespace

MaskFormerHeadConfig read_mask_former_head_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw_bad_input(source, "the head config must be a JSON object");
  static const std::vector<std::string> known = {
      "num_classes", "num_queries", "hidden_dim", "nheads", "dim_feedforward", "dec_layers", "pre_norm",
      "enforce_input_project", "mask_dim", "conv_dim", "norm_groups", "common_stride", "enc_layers",
      "enc_dim_feedforward", "enc_nheads", "enc_n_points", "in_channels", "in_strides", "deformable_levels"};
  for (const auto& item : j.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      throw_bad_input(source, "unknown key '" + item.key() + "' in the head config");
  MaskFormerHeadConfig c;
  const Reader r{j, source};
  r.integer("num_classes", c.num_classes, 1, kMaxWidth);
  r.integer("num_queries", c.num_queries, 1, 100000);
  r.integer("hidden_dim", c.hidden_dim, 2, kMaxWidth);
  r.integer("nheads", c.nheads, 1, 1024);
  r.integer("dim_feedforward", c.dim_feedforward, 1, kMaxWidth);
  r.integer("dec_layers", c.dec_layers, 1, 100);
  r.boolean("pre_norm", c.pre_norm);
  r.boolean("enforce_input_project", c.enforce_input_project);
  r.integer("mask_dim", c.mask_dim, 1, kMaxWidth);
  r.integer("conv_dim", c.conv_dim, 2, kMaxWidth);
  r.integer("norm_groups", c.norm_groups, 1, kMaxWidth);
  r.integer("common_stride", c.common_stride, 1, 1024);
  r.integer("enc_layers", c.enc_layers, 1, 100);
  r.integer("enc_dim_feedforward", c.enc_dim_feedforward, 1, kMaxWidth);
  r.integer("enc_nheads", c.enc_nheads, 1, 1024);
  r.integer("enc_n_points", c.enc_n_points, 1, 64);
  r.list("in_channels", c.in_channels);
  r.list("in_strides", c.in_strides);
  r.integer("deformable_levels", c.deformable_levels, 1, 16);

  // Shapes the modules cannot be built from (heads splitting the width, the
  // sine embedding's two halves, GroupNorm groups) are the file's fault.
  check_divides(source, "nheads", c.nheads, "hidden_dim", c.hidden_dim);
  check_divides(source, "enc_nheads", c.enc_nheads, "conv_dim", c.conv_dim);
  check_divides(source, "norm_groups", c.norm_groups, "conv_dim", c.conv_dim);
  if (c.hidden_dim % 2 != 0) throw_bad_input(source, "hidden_dim must be even (the sine position embedding)");
  if (c.conv_dim % 2 != 0) throw_bad_input(source, "conv_dim must be even (the sine position embedding)");
  if (c.in_channels.size() != c.in_strides.size())
    throw_bad_input(source, "in_channels has " + std::to_string(c.in_channels.size()) + " entries but in_strides " +
                                std::to_string(c.in_strides.size()));
  for (size_t i = 0; i < c.in_strides.size(); ++i) {
    if (!power_of_two(c.in_strides[i])) throw_bad_input(source, "in_strides must be powers of two");
    if (i > 0 && c.in_strides[i] <= c.in_strides[i - 1]) throw_bad_input(source, "in_strides must increase");
  }
  if (!power_of_two(c.common_stride)) throw_bad_input(source, "common_stride must be a power of two");
  const int n = static_cast<int>(c.in_strides.size());
  if (c.deformable_levels > n)
    throw_bad_input(source, "deformable_levels " + std::to_string(c.deformable_levels) + " exceeds the " +
                                std::to_string(n) + " inputs");
  const int finest = c.in_strides[n - c.deformable_levels];
  if (finest < c.common_stride)
    throw_bad_input(source, "common_stride " + std::to_string(c.common_stride) +
                                " is coarser than the encoder's finest input (stride " + std::to_string(finest) + ")");
  const int64_t fpn = pixel_decoder_fpn_levels(c);
  // The FPN levels take the first inputs; they must be the ones the encoder
  // does not see, and the decoder needs 3 scales in all.
  if (fpn > n - c.deformable_levels)
    throw_bad_input(source, "common_stride " + std::to_string(c.common_stride) + " needs " + std::to_string(fpn) +
                                " inputs finer than the encoder's, there are " + std::to_string(n - c.deformable_levels));
  if (c.deformable_levels + fpn < 3)
    throw_bad_input(source, "the pixel decoder makes " + std::to_string(c.deformable_levels + fpn) +
                                " scales; the transformer decoder needs 3");
  return c;
}

nlohmann::json to_json(const MaskFormerHeadConfig& c) {
  return nlohmann::json{{"num_classes", c.num_classes},
                        {"num_queries", c.num_queries},
                        {"hidden_dim", c.hidden_dim},
                        {"nheads", c.nheads},
                        {"dim_feedforward", c.dim_feedforward},
                        {"dec_layers", c.dec_layers},
                        {"pre_norm", c.pre_norm},
                        {"enforce_input_project", c.enforce_input_project},
                        {"mask_dim", c.mask_dim},
                        {"conv_dim", c.conv_dim},
                        {"norm_groups", c.norm_groups},
                        {"common_stride", c.common_stride},
                        {"enc_layers", c.enc_layers},
                        {"enc_dim_feedforward", c.enc_dim_feedforward},
                        {"enc_nheads", c.enc_nheads},
                        {"enc_n_points", c.enc_n_points},
                        {"in_channels", c.in_channels},
                        {"in_strides", c.in_strides},
                        {"deformable_levels", c.deformable_levels}};
}

MaskFormerHeadImpl::MaskFormerHeadImpl(const MaskFormerHeadConfig& config) : config_(config) {
  pixel_decoder = register_module("pixel_decoder", std::make_shared<MSDeformAttnPixelDecoderImpl>(config));
  predictor = register_module("predictor", std::make_shared<MultiScaleMaskedTransformerDecoderImpl>(config));
}

MaskFormerOutput MaskFormerHeadImpl::forward(const std::vector<torch::Tensor>& features) {
  if (features.size() != config_.in_channels.size())
    throw Error(ExitCode::bad_input, "Mask2Former head: " + std::to_string(features.size()) + " feature maps, expected " +
                                         std::to_string(config_.in_channels.size()));
  for (size_t i = 0; i < features.size(); ++i) {
    const auto& f = features[i];
    if (f.dim() != 4 || f.size(1) != config_.in_channels[i] || f.size(0) != features[0].size(0))
      throw Error(ExitCode::bad_input, "Mask2Former head: res" + std::to_string(i + 2) + " is " +
                                           c10::str(f.sizes()) + ", expected [" + std::to_string(features[0].size(0)) +
                                           ", " + std::to_string(config_.in_channels[i]) + ", H, W]");
  }
  const PixelDecoderOutput px = pixel_decoder->forward_features(features);
  return predictor->forward(px.multi_scale_features, px.mask_features);
}

torch::Tensor semantic_inference(const torch::Tensor& pred_logits, const torch::Tensor& pred_masks) {
  using torch::indexing::Slice;
  const torch::Tensor cls = torch::softmax(pred_logits, -1).index({"...", Slice(torch::indexing::None, -1)});
  const torch::Tensor masks = pred_masks.sigmoid();
  const int64_t B = masks.size(0), Q = masks.size(1), H = masks.size(2), W = masks.size(3);
  // einsum "bqc,bqhw->bchw" as a batched product over the queries.
  return torch::bmm(cls.transpose(1, 2), masks.reshape({B, Q, H * W})).view({B, cls.size(2), H, W});
}

}  // namespace rass::nn
