// Settings of the Real-ESRGAN second-order degradation model and the presets
// built on it. Defaults are the reference's (REFERENCE.md 1,
// options/train_realesrgan_x4plus.yml); every field is a rass-degrade flag.
#pragma once
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/degrade/resize.hpp"

namespace rass::degrade {

struct Range {
  double lo = 0, hi = 0;
};
// "lo,hi" -> Range; throws Error(usage) naming `flag`.
Range parse_range(const std::string& text, const std::string& flag);
std::vector<double> parse_doubles(const std::string& text, const std::string& flag);

// One order (first or second) of the model.
struct OrderConfig {
  std::vector<double> kernel_prob{0.45, 0.25, 0.12, 0.03, 0.12, 0.03};  // iso aniso giso ganiso piso paniso
  double sinc_prob = 0.1;
  Range blur_sigma{0.2, 3.0};
  Range betag{0.5, 4.0};
  Range betap{1.0, 2.0};
  double blur_prob = 1.0;                          // second order: second_blur_prob 0.8
  std::vector<double> resize_prob{0.2, 0.7, 0.1};  // up, down, keep
  Range resize_range{0.15, 1.5};
  double gaussian_noise_prob = 0.5;  // else Poisson
  Range noise_range{1, 30};          // sigma, 0-255 units
  Range poisson_scale{0.05, 3.0};
  double gray_noise_prob = 0.4;
  Range jpeg_range{30, 95};
};

// Stage names that --stages can switch off.
const std::vector<std::string>& stage_names();

// A single named degradation (RobustSeg-style robustness tests), severity 1-5.
struct NamedDegradation {
  std::string name;  // blur, noise, jpeg, downsample, ... ("" = the full pipeline)
  int severity = 3;
  std::string frost_dir;  // frost: the folder of ImageNet-C's frost pictures
};

struct PipelineConfig {
  std::string preset = "rass";
  OrderConfig first;
  OrderConfig second;
  std::vector<int> kernel_sizes{7, 9, 11, 13, 15, 17, 19, 21};
  double final_sinc_prob = 0.8;
  std::vector<ResizeMode> resize_modes{ResizeMode::area, ResizeMode::bilinear, ResizeMode::bicubic};
  int scale = 1;                 // LQ size = HQ size // scale
  bool lq_at_hq_size = false;    // resize the LQ back to the HQ size (LQSeg presets)
  // GleSAM's training data (preset "glesam"; not flags): `scale` sets only
  // the second resize's size, the final resize goes straight back to the
  // HQ size (sinc and JPEG at that size), and the second blur uses the first
  // order's kernel (its code's cv2.filter2D(out, -1, kernel)); the second
  // kernel is drawn all the same.
  bool glesam_final = false;
  // Non-empty: each image's scale drawn uniformly from this list (its own
  // keyed stream; the record holds the one drawn). GleSAM: 1,2,3,3,4,4,4,4.
  // --scale N fixes it again.
  std::vector<int> scale_choices;
  ResizeMode upsample_mode = ResizeMode::bicubic;
  bool usm = false;              // Real-ESRGAN training sharpens the GT before degrading
  std::set<std::string> disabled;  // stage names switched off
  NamedDegradation named;
};

// The second order's defaults differ from the first's.
OrderConfig second_order_defaults();
// Preset names: realesrgan-x4, rass, lqseg-1, lqseg-2, lqseg-3, glesam, blur, noise, jpeg, downsample.
const std::vector<std::string>& preset_names();
// The presets that apply one named degradation at --severity 1..5 (blur,
// noise, jpeg, downsample and the corruptions of corruptions.hpp), and the
// same as one comma-separated line for messages.
const std::vector<std::string>& single_degradation_names();
std::string single_degradation_list();
// Throws Error(usage) for an unknown name.
PipelineConfig make_preset(const std::string& name, int severity = 3);
// Applies a --stages value: a list of names to keep ("blur,noise") or, with a
// leading '-' per item, to drop ("-noise,-jpeg2"). Groups: blur, resize, noise,
// jpeg, sinc, second (all second-order stages).
void apply_stages(PipelineConfig& cfg, const std::string& spec);
// Checks probabilities and ranges; throws Error(usage) naming the setting.
void validate(const PipelineConfig& cfg);
// Every setting, for --print-config and for logs of a dataset build.
nlohmann::ordered_json config_to_json(const PipelineConfig& cfg);

}  // namespace rass::degrade
