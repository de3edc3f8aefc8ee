// A degradation is recorded as a list of concrete operations with every
// sampled value filled in. Applying the list to the HQ image regenerates the
// LQ image exactly, which is what --replay does: the record is the recipe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/degrade/filter.hpp"
#include "rass/degrade/kernels.hpp"
#include "rass/degrade/planes.hpp"
#include "rass/degrade/resize.hpp"

namespace rass::degrade {

enum class OpKind {
  blur, usm, resize, gaussian_noise, poisson_noise, jpeg,
  // The single corruptions of corruptions.hpp (their values in Op::values).
  contrast, brightness, motion_blur, fog, snow, shot_noise, impulse_noise, low_light, rain,
  speckle_noise, defocus_blur, zoom_blur, glass_blur, pixelate, saturate, elastic, spatter, frost
};
const char* op_kind_name(OpKind k);

struct Op {
  OpKind kind = OpKind::blur;
  std::string stage;  // "blur1", "resize1", "noise1", "jpeg1", "blur2", ..., "final_sinc"
  // blur
  KernelParams kernel;
  // usm sharpening (Real-ESRGAN's USMSharp on the GT before degrading)
  int usm_radius = 50;
  double usm_weight = 0.5, usm_threshold = 10;
  // resize
  ResizeMode mode = ResizeMode::bilinear;
  std::string direction;      // "up", "down", "keep" or "" (fixed-size resizes)
  double factor = 0;          // sampled factor; also torch's scale_factor when use_factor
  bool use_factor = false;    // resize by scale_factor (coordinate scale 1/factor)
  int width = 0, height = 0;  // output size
  // noise
  double sigma = 0;  // gaussian, 0-255 units
  double scale = 0;  // poisson
  bool gray = false;
  uint64_t seed = 0;  // the noise field's stream seed
  // jpeg
  double quality = 0;  // sampled; the encoder gets int(quality) like cv2.imencode
  // single corruptions: the values of corruption_fields(kind), in order (the
  // random ones also use `seed`)
  std::vector<double> values;
  // frost: the path of its picture (the record holds its index; the tool
  // joins it to --frost-dir, see resolve_frost_pictures in record.hpp).
  std::string resource;
  std::string resource_hash;  // frost: its picture's bytes_hash, in the record ("picture_hash")
};

// A record field of a single corruption: its name and bounds.
struct OpField {
  const char* name;
  double lo, hi;
  bool integer = false;
};
// A single corruption's op: its kind, its name in records, its fields and
// whether it draws from `seed`. One table (ops.cpp) for names, parsing,
// writing and checking.
struct CorruptionSpec {
  OpKind kind;
  const char* name;
  std::vector<OpField> fields;
  bool seeded;
};
const std::vector<CorruptionSpec>& corruption_specs();
const CorruptionSpec* corruption_spec(OpKind k);  // nullptr for the pipeline's own ops
// Its fields (empty for the pipeline's own ops), and whether it is seeded.
const std::vector<OpField>& corruption_fields(OpKind k);
bool corruption_is_random(OpKind k);

// Bounds of the values a record may hold (PipelineConfig's settings are kept
// within them, so every record rass-degrade writes can be replayed).
constexpr int kMaxRecordKernelSize = 201;        // blur kernel side, USM radius
constexpr double kMaxRecordSigma = 100;          // blur sigma_x, sigma_y (pixels)
constexpr double kMinRecordSigma = 1e-3;         // smaller sigmas underflow the kernel (1/sigma^2 overflows)
constexpr double kMaxRecordBeta = 100;           // generalized / plateau beta
constexpr double kMaxRecordResizeFactor = 100;   // random resize factor
constexpr double kMaxRecordNoiseSigma = 1000;    // Gaussian noise sigma, 0-255 units
constexpr double kMaxRecordPoissonScale = 1000;  // Poisson noise scale

nlohmann::ordered_json op_to_json(const Op& op);
// Checks every field (type, finite, range: odd kernel sizes 1..201, sigmas in
// (0, 100], theta in [-pi, pi], sinc cutoff in (0, pi], betas in (0, 100],
// resize sizes 1..65535 and factors in (0, 100] consistent with the direction,
// noise sigma 0..1000 and scale 0..1000, hex seeds, JPEG quality in [1, 101)).
// Throws Error(bad_input) "<where> <field>: <what>"; the caller adds the file.
Op op_from_json(const nlohmann::ordered_json& j, const std::string& where = "op");

// Applies one op. `img` must have 1 or 3 channels in [0, 1].
// `filter` is the record version's 2-D filter (filter.hpp).
void apply_op(Planes& img, const Op& op, FilterAlgo filter = FilterAlgo::direct_large);
// Applies all ops in order, then the final quantisation clamp(round(255 x))/255
// is left to the caller (to_image8).
void apply_ops(Planes& img, const std::vector<Op>& ops, FilterAlgo filter = FilterAlgo::direct_large);

// JPEG round trip at integer quality through libjpeg-turbo (clamp and round to
// 8 bits first, decode back to [0, 1]).
void jpeg_roundtrip(Planes& img, int quality);
// Real-ESRGAN USMSharp: blur with a radius x radius Gaussian (OpenCV sigma rule),
// sharpen by weight, soft mask where |residual|*255 > threshold.
void usm_sharpen(Planes& img, int radius, double weight, double threshold);

}  // namespace rass::degrade
