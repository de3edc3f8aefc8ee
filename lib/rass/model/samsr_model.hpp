// A ResShift-family x4 super-resolution model folder for rass-samsr: SAMSR
// (seed 002), SinSR or ResShift, which share one network (REFERENCE.md
// section 6).
//
//   samsr.json                what this folder is (see SamsrFolderConfig)
//   unet.safetensors          UNetModelSwin under its released names
//   autoencoder.safetensors   the VQ-f4 autoencoder (autoencoder_vq_f4.pth)
//   sam/                      SAMSR only: a SAM ViT-B folder (rass-sam's) for
//                             the masks of its noise; --sam DIR overrides it
// scripts/convert_samsr.py writes it from the released .pth files.
//
// ResShift's chain, in the latent z of the bicubically x4-upsampled
// low-resolution image y (both in [-1, 1]):
//   sqrt(eta_t) = etas_start * b^((t / (T-1))^p (T-1)), b = (etas_end / etas_start)^(1/(T-1)),
//   etas_start = min(min_noise_level / kappa, min_noise_level[, sqrt(0.001)]);
//   x_T = z_y + kappa sqrt(eta_T) noise;  the network sees x_t / sqrt(eta_t kappa^2 + 1),
//   the step index t and y, and predicts x_0.
// One step (SinSR, SAMSR): the prediction at t = T-1 is the result. Several
// (ResShift): x_{t-1} = (eta_{t-1}/eta_t) x_t + (alpha_t/eta_t) x_0 +
// sqrt(kappa^2 eta_{t-1} alpha_t / eta_t) noise, the last step without noise,
// on the schedule respaced to the steps asked for (timesteps
// int(T/S * k), the network seeing the original indices).
//
// SAMSR's changes, at one step only (its released sampler restarts every
// step from the prior, so more steps are refused):
// - masks: SAM's automatic mask generator (its defaults) on the latent z_y
//   shown as an 8-bit image: min-max scaled over the image, truncated to
//   uint8, channels reversed (its RGB -> BGR conversion before a generator
//   that expects RGB); binary masks at the latent's size, and the background
//   (the pixels no mask covers) as one more mask;
// - noise: an independent N(0, 1) per mask, averaged over the masks covering
//   each pixel, then standardised per channel (unbiased std, at least 1e-6);
// - per pixel W = masks covering it / the most any pixel has; at t = T-1
//   kappa' = kappa (1 - W / 5) and sqrt(eta') = sqrt(eta_T) (1 + W / 5):
//   x_T = z_y + kappa' sqrt(eta') noise. The network's input scale keeps the
//   unmodified eta_T.
// Output: the decoded x_0 cropped, clamped to [-1, 1], (x + 1) / 2, and
// rounded to 8 bits. Inputs are reflect-padded to a multiple of the
// network's size multiple (64 for the released model); larger than
// chop_size they are cut into chop_size tiles at chop_stride, each restored
// on its own (own masks and noise), and averaged where they overlap
// (ImageSpliterTh).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/nn/resshift_unet.hpp"
#include "rass/nn/vq_autoencoder.hpp"

namespace rass::model {

class SamModel;

// samsr.json. Example (the released SAMSR; every other field defaults to
// the released configs/SamSR.yaml):
//   {"architecture": "resshift", "method": "samsr"}
// "method": samsr (SAM noise, one step), sinsr (Gaussian noise, one step),
// resshift (Gaussian noise, `steps` steps by default).
struct SamsrFolderConfig {
  std::string path;
  std::string method = "samsr";
  nn::ResShiftUNetConfig unet;
  nn::VqAutoencoderConfig autoencoder;
  int64_t steps = 15;  // the chain the model was trained on
  double kappa = 2.0, etas_end = 0.99, min_noise_level = 0.04, power = 0.3;
  double scale_factor = 1.0;  // latent scale
  // etas_start also at most sqrt(0.001), as SAMSR's and SinSR's code computes
  // it; ResShift's current code leaves that term out (the default for method
  // resshift). Equal for the 15-step configs (kappa 2, min_noise_level 0.04:
  // 0.02 either way); ResShift v3's (min_noise_level 0.2) starts at 0.1.
  bool cap_etas_start = true;
  bool normalize_input = true;
  int64_t sf = 4;
  double weight_divisor = 5.0;  // SAMSR's W / 5
  // SAMSR's mask generator: SamAutomaticMaskGenerator's defaults, as the
  // released code builds it ("sam": {"points_per_side", "pred_iou_thresh",
  // "stability_thresh", "nms_thresh"} in samsr.json change them).
  int sam_points_per_side = 32;
  double sam_pred_iou_thresh = 0.88, sam_stability_thresh = 0.95, sam_nms_thresh = 0.7;
  bool sam_noise() const { return method == "samsr"; }
  int default_steps() const { return method == "resshift" ? int(steps) : 1; }
};
SamsrFolderConfig read_samsr_config(const std::string& dir);

// The network of a folder with `config` (dir/unet.safetensors, shapes
// checked against the config: Error(bad_input) naming the file), float32 on the CPU.
nn::ResShiftUNet load_samsr_unet(const SamsrFolderConfig& config, const std::string& dir);

// The exponential schedule's sqrt(eta_t), t = 0..T-1, in float64.
std::vector<double> resshift_sqrt_etas(const SamsrFolderConfig& c);
// The respaced timesteps for `steps` of the T: int(T / steps * k), k < steps.
std::vector<int64_t> resshift_respaced(int64_t T, int64_t steps);

// SAMSR's noise and weights from binary masks [M, h, w] (float 0/1, the
// background mask last): W [1, 1, h, w] and noise [1, 3, h, w] drawn from
// `gen` (one [3, h, w] draw per mask, in order).
struct SamsrNoise {
  torch::Tensor noise, weight;
};
SamsrNoise samsr_noise_from_masks(const torch::Tensor& masks, at::Generator& gen);

// The latent as the 8-bit image SAMSR shows SAM: [3, h, w] float ->
// h x w RGB whose channels are the latent's reversed.
Image samsr_latent_image(const torch::Tensor& z);

struct SamsrModelOptions {
  std::string dir, sam_dir;  // sam_dir: "" = the folder's sam/
  std::string device = "cpu", dtype = "fp32";
  std::string noise = "auto";  // auto (the method's), sam, gaussian
  int steps = 0;               // 0 = the method's
  // Set: the network is not read (dir may lack unet.safetensors); it starts
  // from ResShift's initialisation drawn with this seed (nn/resshift_init.hpp).
  std::optional<uint64_t> init_seed;
};

// Noise given instead of drawn (tests): the prior's [1, 3, h, w], SAMSR's
// weight W [1, 1, h, w] (with SAM noise), and each later step's noise of
// ResShift's chain in order.
struct SamsrInjected {
  torch::Tensor noise, weight;
  std::vector<torch::Tensor> chain;
};

// What restore() may hand back besides the image.
struct SamsrExtras {
  int masks = 0;  // SAM masks of the image (all tiles), background masks not counted
};

class SamsrModel {
 public:
  explicit SamsrModel(const SamsrModelOptions& opt);
  ~SamsrModel();
  // x4 restoration of an 8-bit RGB image; `seed_key`'s generator draws the noise.
  Image restore(const Image& rgb, uint64_t seed, const std::string& key, int chop_size, int chop_stride,
                SamsrExtras* extras = nullptr) const;
  // One tile [1, 3, h, w] in [-1, 1] (h, w multiples of size_multiple()) ->
  // [1, 3, 4h, 4w] in [-1, 1], unclamped. Noise is drawn from `gen` unless
  // `injected` gives it.
  torch::Tensor restore_tile(const torch::Tensor& y, at::Generator& gen, SamsrExtras* extras = nullptr,
                             const SamsrInjected* injected = nullptr) const;
  // The latent z_y of y [1, 3, h, w] in [-1, 1]: VQ encoding of its bicubic x4.
  torch::Tensor encode_lq(const torch::Tensor& y) const;
  // The latent of x [B, 3, H, W] in [-1, 1] as it is (no upsampling): VQ
  // encoding times the latent scale, float32.
  torch::Tensor encode(const torch::Tensor& x) const;
  // The masks SAMSR's noise uses, for z [1, 3, h, w]: [M + 1, h, w] (background last).
  torch::Tensor sam_masks(const torch::Tensor& z) const;
  int64_t size_multiple() const { return unet->size_multiple(); }

  SamsrFolderConfig config;
  bool sam_noise = true;
  int steps = 1;
  std::vector<double> sqrt_etas;
  nn::ResShiftUNet unet{nullptr};
  nn::VqAutoencoder vq{nullptr};
  std::unique_ptr<SamModel> sam;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
};

}  // namespace rass::model
