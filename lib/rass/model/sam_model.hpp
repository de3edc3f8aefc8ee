// A SAM model folder for rass-sam: Segment Anything v1, optionally with
// GleSAM's generative latent enhancement (seed 001; REFERENCE.md section 6),
// RobustSAM's or HQ-SAM's decoder; or Segment Anything 2 / 2.1 (nn/sam2.hpp).
//
//   sam.json          what this folder is (see SamFolderConfig)
//   sam.safetensors   image_encoder.*, prompt_encoder.*, mask_decoder.* under
//                     the released checkpoint's names (scripts/convert_sam.py;
//                     for GleSAM, its fine-tuned mask decoder in place of SAM's)
//   unet/ text_encoder/ tokenizer/ scheduler/   GleSAM only: the SD UNet with
//                     conv_in/conv_out replicated to the embedding's channels
//                     (rass-merge-lora expand-channels 64) and GleSAM's LoRA
//                     merged; the text encoder and tokenizer encode GleSAM's
//                     empty prompt once; scheduler/ gives alphas_cumprod.
//
// SamPredictor's steps, as the reference computes them: the image resized
// with its longest side to image_size by Pillow's bilinear filter (uint8,
// torchvision's resize of a PIL image), normalised by pixel_mean/std and
// zero-padded right and bottom to image_size x image_size; prompts scaled by
// (new / old) per axis; mask logits upsampled bilinearly to image_size,
// cropped to the resized image and upsampled to the input's size; > 0.
//
// GleSAM's enhancement of the image embedding z (every released script):
//   x = g z;  eps = UNet(x, T, CLIP(""));  z' = ((x - sqrt(1 - a_T) eps) / sqrt(a_T)) / g
// in float64 as get_x0_from_noise computes it, with T = 1 and g the
// feature weight of the folder (5 in the paper, 3 in the demo).
//
// SAM2ImagePredictor's steps differ: the image (as [0, 1] floats) resized to
// image_size x image_size, whatever its aspect, by torchvision's bilinear
// resize with antialiasing, normalised by ImageNet's mean and std; prompts
// scaled by (image_size / old) per axis in float32; the 4g x 4g logits
// upsampled bilinearly to the input's size at once; the low-resolution
// logits it returns clamped to [-32, 32].
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/core/sam_crops.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/sam_prompts.hpp"
#include "rass/nn/sam.hpp"
#include "rass/nn/sam2.hpp"
#include "rass/nn/unet.hpp"

namespace rass::model {

// sam.json. Example (GleSAM on ViT-L):
//   {"architecture": "sam", "variant": "vit_l",
//    "enhancer": {"feat_weight": 5, "timestep": 1, "prompt": ""}}
// Any SamConfig field may be given to override the variant's (a small test
// model gives them all). Without "enhancer" the folder is plain SAM.
// SAM 2 / 2.1: {"architecture": "sam2", "variant": "hiera_l"} (hiera_t,
// hiera_s, hiera_b+, hiera_l), or the Sam2Config fields image_size,
// embed_dim, num_heads, stages, global_att_blocks, window_spec,
// window_pos_embed_bkg_spatial_size, prompt_embed_dim.
struct SamFolderConfig {
  std::string path;  // sam.json
  std::string architecture = "sam";  // or "sam2"
  std::string variant;
  nn::SamConfig sam;    // SAM 2: its prompt encoder's and decoder's (sam2.heads)
  nn::Sam2Config sam2;  // architecture "sam2" only
  bool enhancer = false;
  double feat_weight = 5;
  int timestep = 1;
  std::string prompt;
};
// Error(bad_input) naming the file for a missing or malformed sam.json.
SamFolderConfig read_sam_config(const std::string& model_dir);
// The config's sizes against the weights' shapes (a few tensors per part, and
// every block's), before any module is built: Error(bad_input) naming both.
void check_sam_sizes(const SamFolderConfig& c, const SafeTensorsFile& file);

struct SamModelOptions {
  std::string dir;
  std::string enhance = "auto";  // auto (the folder's), on (refused without an enhancer), off
  std::string robust = "auto";   // RobustSAM's robust path: auto (a RobustSAM folder's), on (refused without), off
  std::string hq = "auto";       // HQ-SAM's HQ token: auto (an HQ-SAM folder's), on (refused without), off
  bool hq_token_only = false;    // HQ-SAM: the HQ token's mask alone (not added to SAM's)
  std::string device = "cpu", dtype = "fp32";
};

// What a decoder needs of an image beside its embedding (SamModel::embed):
// RobustSAM's robust or HQ-SAM's HQ features [1, D / 8, 256, 256] (`extra`,
// which a tensor converts to), or SAM 2's high-resolution features.
struct SamDecoderFeatures {
  SamDecoderFeatures() = default;
  SamDecoderFeatures(torch::Tensor t) : extra(std::move(t)) {}  // NOLINT(google-explicit-constructor)
  torch::Tensor extra;
  torch::Tensor s0, s1;  // SAM 2: conv_s0 [1, D / 8, 4g, 4g] and conv_s1 [1, D / 4, 2g, 2g] outputs
};

// One image made ready for the encoder.
struct SamInput {
  torch::Tensor pixels;  // [1, 3, S, S] on the model's device, normalised and padded
  int width = 0, height = 0;                // the input image
  int resized_width = 0, resized_height = 0;  // inside the S x S frame
};

// SamAutomaticMaskGenerator's settings, with its defaults.
struct SamEverythingOptions {
  int points_per_side = 32, points_per_batch = 64;
  double pred_iou_thresh = 0.88, stability_score_thresh = 0.95, stability_score_offset = 1.0, box_nms_thresh = 0.7;
  // Crop layers: layer i (1..crop_n_layers) runs the generator again on
  // (2^i)^2 overlapping crops, each embedded on its own, with
  // int(points_per_side / crop_n_points_downscale_factor^i) points per side.
  int crop_n_layers = 0, crop_n_points_downscale_factor = 1;
  double crop_nms_thresh = 0.7, crop_overlap_ratio = 512.0 / 1500.0;
  // > 0: holes and islands smaller than this (pixels) are removed, and
  // masks that changed are suppressed again (remove_small_regions). SAM 2:
  // holes and islands of at most this many low-resolution pixels, filled or
  // removed in the logits before scoring (fill_small_logit_regions).
  int64_t min_mask_region_area = 0;
  // SAM 2 (use_m2m): each mask decoded once more from its point and its own
  // low-resolution logits as the mask prompt, before the filters.
  bool use_m2m = false;
};
// One mask "segment everything" keeps.
struct SamMask {
  torch::Tensor mask;               // its low-resolution logits [1, 1, 256, 256] in its crop's frame, CPU float
                                    // (SAM 2: after its clean-up)
  std::array<int64_t, 4> box{};     // x_min, y_min, x_max, y_max of its pixels (inclusive), in the image
  double iou_pred = 0, stability = 0;
  std::array<double, 2> point{};    // the grid point that prompted it (input pixels)
  int64_t area = 0;
  std::array<int64_t, 4> crop{};    // the crop it came from: x0, y0, x1, y1 (exclusive); layer 0: the whole image
  // When the small-region clean-up changed the mask: its pixels inside
  // `box` ([y1 - y0 + 1, x1 - x0 + 1] bool; [0, 0] when nothing is left),
  // which then replace the logits'.
  torch::Tensor edited;
};

// What the decoder gave for a set of objects, at the input image's size.
struct SamPrediction {
  Image labels;                  // each pixel: the label of the object with the highest logit > 0, else `fill`
  std::vector<double> iou;       // per object: the predicted IoU of the mask used
  std::vector<int> chosen;       // per object: which mask token (0; or 1..3 with multimask)
  std::vector<int64_t> area;     // per object: pixels where its logit > 0 (before overlaps are settled)
  // With a ground-truth label map (the one the prompts came from), per
  // object: IoU and Dice of that mask against the pixels of its label, as
  // GleSAM's evaluation scores each prompted object (mask_iou, dice).
  std::vector<double> gt_iou, gt_dice;
  // ... and its pixel accuracy: the share of the image's pixels where mask and
  // label agree (GleSAM's PA).
  std::vector<double> gt_pa;
  // SAM 2, per object: its object-score logit (> 0: the decoder sees an
  // object there; the image predictor reports the mask either way).
  std::vector<double> object_score;
  torch::Tensor low_res;         // [B, 1, 256, 256] logits of the masks used (CPU float), when asked
  std::vector<SamMask> everything;  // --everything: the masks kept (their pixels dropped once painted)
};

// The instance map of "segment everything": mask k (0-based, in `masks`'
// order) has id k + 1, 0 where no mask is; masks are painted largest first,
// so a smaller mask inside a larger one stays visible (as SAM's notebooks
// draw them). 16-bit beyond 255 masks.
// `pixels(k)`: mask k's [H, W] bool pixels, asked for once per mask in
// painting order (so one full-size mask is held at a time).
Image sam_instance_map(const std::vector<SamMask>& masks, int width, int height,
                       const std::function<torch::Tensor(size_t)>& pixels);

// The text encoder's last hidden state [1, T, C] (CPU float32) for `prompt`,
// padded as CLIPTokenizer pads to min(77, its positions): `dir` holds
// tokenizer/ and text_encoder/ (a GleSAM folder or an SD folder). GleSAM
// conditions its UNet on the empty prompt's.
torch::Tensor glesam_prompt_context(const std::string& dir, const std::string& prompt);

// GleSAM's one denoising step of x = g z (get_x0_from_noise):
// eps = UNet(x, T, context); x0 = (x - sqrt(1 - a_T) eps) / sqrt(a_T) in
// float64, returned in float32. `context` [1, T, C] is expanded to the batch.
torch::Tensor glesam_x0(nn::UNet2DConditionImpl& unet, const torch::Tensor& x, const torch::Tensor& context, int timestep,
                        double alpha_bar);

class SamModel {
 public:
  explicit SamModel(const SamModelOptions& opt);

  // The resized (Pillow bilinear), normalised and padded image. `rgb` is 8-bit RGB.
  SamInput prepare(const Image& rgb) const;
  // The same frame resized as GleSAM's training encoder resizes it
  // (SAM_Encoder: ResizeLongestSide.apply_image_torch on the float image,
  // bilinear with antialiasing, no 8-bit rounding), normalised and padded.
  // SAM v1 only.
  SamInput prepare_float(const Image& rgb) const;
  // prepare()'s sizes for a width x height image, without its pixels.
  SamInput frame(int width, int height) const;
  // The image embedding [1, D, 64, 64] (enhanced when the enhancer is on;
  // SAM 2's with no_mem_embed added). With `decoder_features` and
  // RobustSAM's robust path or HQ-SAM's HQ token on, also the image's robust
  // or HQ features for predict() (left undefined otherwise); with SAM 2, its
  // high-resolution features, which its decoder always needs.
  torch::Tensor embed(const SamInput& in, SamDecoderFeatures* decoder_features = nullptr) const;
  // GleSAM's one-step enhancement of an embedding (the enhancer must be loaded).
  torch::Tensor enhance(const torch::Tensor& embedding) const;
  // Masks of `objects` (coordinates in the input image's pixels), decoded in
  // groups of `group` objects. With `multimask`, each object's mask is the
  // one of the three with the highest predicted IoU. `fill`: the label of
  // pixels no object covers.
  // `gt`: a label map of the input's size whose pixels of each object's
  // label are its true mask (SamPrediction::gt_iou), or null.
  // `decoder_features`: embed()'s, decoding with RobustSAM's robust tokens
  // and features (each object as the reference decodes one prompt) or with
  // HQ-SAM's HQ token; SAM 2's high-resolution features (required).
  // SAM 2 without `multimask`: the decoder's dynamic choice (token 0 when
  // stable, else the best of 1..3), which `chosen` reports.
  SamPrediction predict(const torch::Tensor& embedding, const std::vector<SamObject>& objects, const SamInput& in,
                        bool multimask, int fill, bool keep_low_res = false, int group = 16,
                        const Image* gt = nullptr, const SamDecoderFeatures& decoder_features = {}) const;

  // The prompts of objects [a, b) (each with as many points, and a box or
  // none alike) as the decoder takes them: coordinates scaled into the
  // model's frame as SamPredictor (or SAM2ImagePredictor) scales them.
  nn::SamPrompts prompt_tensors(const std::vector<SamObject>& objects, size_t a, size_t b, const SamInput& in) const;

  // SamAutomaticMaskGenerator.generate (SAM2AutomaticMaskGenerator's for
  // SAM 2, use_m2m as `o` says: its points scaled x / w * S in float32, its logits
  // upsampled straight to the crop's size, min_mask_region_area its
  // predictor's fill of small holes and sprinkles in the low-resolution
  // logits, fill_small_logit_regions, and no later clean-up). For each crop (the whole image,
  // then the crop layers'), embedded on its own: a grid of single-point
  // prompts (build_point_grid's points times the crop's size), three masks
  // each from logits at the crop's size; kept where the predicted IoU is
  // above pred_iou_thresh (when > 0), the stability score
  // (#logit > offset / #logit > -offset) at least its threshold (when > 0)
  // and no side of the box is within 20 pixels of a crop side that is not
  // the image's; then non-maximum suppression of their boxes (IoU of
  // (x1 - x0) * (y1 - y0) areas, torchvision's) by predicted IoU. With more
  // than one crop, the crops' masks are suppressed again at crop_nms_thresh,
  // smaller crops first; with min_mask_region_area, the clean-up and a last
  // suppression by "unchanged first". In the order the last suppression
  // keeps them; among equal scores, in the order they were found (torch's
  // sort leaves ties in an order of its own).
  std::vector<SamMask> everything(const Image& rgb, const SamEverythingOptions& o) const;
  // everything()'s refusals (RobustSAM's robust path): Error(usage).
  void check_everything() const;
  // A mask of everything() as [height, width] bool pixels of the image (CPU).
  torch::Tensor mask_pixels(const SamMask& m, int64_t width, int64_t height) const;
  // The instance map of everything()'s masks at the image's size.
  Image instance_map(const std::vector<SamMask>& masks, int width, int height) const;

  // postprocess_masks of one mask's logits [1, 1, 256, 256]: to S x S, cropped
  // to the resized image, to the input's size; [H, W] float on the CPU.
  torch::Tensor upsample_logits(const torch::Tensor& low, const SamInput& in) const;

  // everything()'s pass over one crop (_process_crop): `in` is the crop's
  // image, `embedding` its embedding, `width` x `height` the whole image's
  // size; boxes and points come back in the image's frame.
  // `decoder_features`: embed()'s (HQ-SAM's HQ features, or undefined).
  std::vector<SamMask> everything_crop(const torch::Tensor& embedding, const SamDecoderFeatures& decoder_features,
                                       const SamInput& in,
                                       const SamEverythingOptions& o, const SamCrop& crop, int points_per_side,
                                       int64_t width, int64_t height) const;

  SamFolderConfig config;
  bool enhancing = false;
  bool robust = false;  // RobustSAM's robust path (its eval.py's clear = False)
  bool hq = false;      // HQ-SAM's HQ token and features
  nn::Sam sam{nullptr};    // SAM v1 (and RobustSAM, HQ-SAM, GleSAM)
  nn::Sam2 sam2{nullptr};  // SAM 2 / 2.1 (architecture "sam2"): `sam` is then null
  bool is_sam2() const { return !sam2.is_empty(); }
  nn::UNet2DCondition unet{nullptr};  // GleSAM's enhancer, when on
  torch::Tensor context;              // its prompt's embedding [1, 77, D]
  double alpha_bar = 1;               // alphas_cumprod[timestep]
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  torch::ScalarType decoder_dtype = torch::kFloat;  // prompt encoder and mask decoder (fp32 for bf16 on the CPU)

 private:
  // SAM v1's input from resized pixels [1, 3, h, w] (0..255): normalised,
  // padded right and bottom to image_size, on the model's device and dtype.
  torch::Tensor normalised_padded(torch::Tensor x) const;
};

}  // namespace rass::model
