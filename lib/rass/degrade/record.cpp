#include "rass/degrade/record.hpp"

#include <algorithm>
#include <cmath>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/core/version.hpp"
#include "rass/core/file.hpp"
#include "rass/degrade/corruptions.hpp"
#include "rass/degrade/frost.hpp"
#include "rass/degrade/planes.hpp"
#include "rass/io/image_io.hpp"

namespace rass::degrade {

using json = nlohmann::ordered_json;

namespace {

// ImageNet-C severities (Hendrycks & Dietterich 2019) for the named degradations.
constexpr double kBlurSigma[5] = {1, 2, 3, 4, 6};                  // gaussian_blur
constexpr double kNoiseSigma[5] = {0.08, 0.12, 0.18, 0.26, 0.38};  // gaussian_noise, [0,1] units
constexpr double kJpegQuality[5] = {25, 18, 15, 10, 7};            // jpeg_compression
constexpr double kDownFactor[5] = {2, 3, 4, 6, 8};                 // our own: area down, bicubic up

// ImageNet-C severities of the single corruptions (imagecorruptions 1.1.2).
constexpr double kContrast[5] = {0.4, 0.3, 0.2, 0.1, 0.05};
constexpr double kBrightness[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
constexpr double kMotionBlur[5][2] = {{10, 3}, {15, 5}, {15, 8}, {15, 12}, {20, 15}};  // radius, sigma
constexpr double kFog[5][2] = {{1.5, 2}, {2, 2}, {2.5, 1.7}, {2.5, 1.5}, {3, 1.4}};     // strength, decay
constexpr double kSnow[5][7] = {{0.1, 0.3, 3, 0.5, 10, 4, 0.8},                            // mean, std, zoom,
                                {0.2, 0.3, 2, 0.5, 12, 4, 0.7},                            // threshold, radius,
                                {0.55, 0.3, 4, 0.9, 12, 8, 0.7},                           // sigma, blend
                                {0.55, 0.3, 4.5, 0.85, 12, 8, 0.65},
                                {0.55, 0.3, 2.5, 0.85, 12, 12, 0.55}};
constexpr double kShotPhotons[5] = {60, 25, 12, 5, 3};
constexpr double kImpulseAmount[5] = {0.03, 0.06, 0.09, 0.17, 0.27};
constexpr double kSpeckle[5] = {0.15, 0.2, 0.35, 0.45, 0.6};
constexpr double kDefocus[5][2] = {{3, 0.1}, {4, 0.5}, {6, 0.5}, {8, 0.5}, {10, 0.5}};  // radius, alias blur
constexpr double kZoom[5][2] = {{1.11, 0.01}, {1.16, 0.01}, {1.21, 0.02}, {1.26, 0.02}, {1.31, 0.03}};  // arange stop, step
constexpr double kGlass[5][3] = {{0.7, 1, 2}, {0.9, 2, 1}, {1, 2, 3}, {1.1, 3, 2}, {1.5, 4, 2}};  // sigma, delta, passes
constexpr double kPixelate[5] = {0.6, 0.5, 0.4, 0.3, 0.25};
constexpr double kSaturate[5][2] = {{0.3, 0}, {0.1, 0}, {2, 0}, {5, 0.1}, {20, 0.2}};
constexpr double kSpatter[5][6] = {{0.65, 0.3, 4, 0.69, 0.6, 0},  // mean, std, sigma, threshold,
                                   {0.65, 0.3, 3, 0.68, 0.6, 0},  // gain, mud
                                   {0.65, 0.3, 2, 0.68, 0.5, 0},
                                   {0.65, 0.3, 1, 0.65, 1.5, 1},
                                   {0.67, 0.4, 1, 0.65, 1.5, 1}};
constexpr double kFrost[5][2] = {{1, 0.4}, {0.8, 0.6}, {0.7, 0.7}, {0.65, 0.7}, {0.6, 0.75}};  // strength, weight
constexpr double kElasticAlpha[5] = {250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12};
// Our own severities (no reference is public): low light dims and darkens the
// tones, then adds sensor noise (0-255 units); rain's streak density, length,
// opacity and the darkening of the scene grow together.
constexpr double kLowLight[5][3] = {{1.5, 0.7, 2}, {1.8, 0.6, 3}, {2.1, 0.5, 4}, {2.4, 0.4, 5}, {2.7, 0.3, 6}};
constexpr double kRain[5][4] = {{0.001, 10, 0.5, 0.9},  // density, length, opacity, darken
                                {0.0015, 15, 0.55, 0.85},
                                {0.002, 20, 0.6, 0.8},
                                {0.003, 25, 0.65, 0.75},
                                {0.004, 30, 0.7, 0.7}};

int named_blur_size(double sigma) { return 2 * int(4 * sigma + 0.5) + 1; }  // skimage truncate=4

KernelParams sample_kernel(const PipelineConfig& cfg, const OrderConfig& o, Rng& rng) {
  KernelParams k;
  k.size = cfg.kernel_sizes[rng.below(cfg.kernel_sizes.size())];
  if (rng.uniform() < o.sinc_prob) {
    k.type = KernelType::sinc;
    k.cutoff = k.size < 13 ? rng.uniform(M_PI / 3, M_PI) : rng.uniform(M_PI / 5, M_PI);
    return k;
  }
  k.type = mixed_kernel_types()[rng.choice(o.kernel_prob)];
  k.sigma_x = rng.uniform(o.blur_sigma.lo, o.blur_sigma.hi);
  const bool iso = k.type == KernelType::iso || k.type == KernelType::generalized_iso || k.type == KernelType::plateau_iso;
  if (iso) {
    k.sigma_y = k.sigma_x;
    k.theta = 0;
  } else {
    k.sigma_y = rng.uniform(o.blur_sigma.lo, o.blur_sigma.hi);
    k.theta = rng.uniform(-M_PI, M_PI);
  }
  const bool generalized = k.type == KernelType::generalized_iso || k.type == KernelType::generalized_aniso;
  const bool plateau = k.type == KernelType::plateau_iso || k.type == KernelType::plateau_aniso;
  if (generalized || plateau) {
    const Range& b = generalized ? o.betag : o.betap;
    k.beta = rng.uniform() < 0.5 ? rng.uniform(b.lo, 1) : rng.uniform(1, b.hi);
  }
  return k;
}

Op blur_op(const std::string& stage, const KernelParams& k) {
  Op op;
  op.kind = OpKind::blur;
  op.stage = stage;
  op.kernel = k;
  return op;
}

Op resize_op(const std::string& stage, ResizeMode mode, int w, int h) {
  Op op;
  op.kind = OpKind::resize;
  op.stage = stage;
  op.mode = mode;
  op.width = std::max(w, 1);
  op.height = std::max(h, 1);
  return op;
}

// The random resize of one order: direction, factor and mode.
struct ResizeDraw {
  std::string direction;
  double factor;
  ResizeMode mode;
};
ResizeDraw sample_resize(const PipelineConfig& cfg, const OrderConfig& o, Rng& rng) {
  static const char* dirs[3] = {"up", "down", "keep"};
  ResizeDraw d;
  size_t which = rng.choice(o.resize_prob);
  d.direction = dirs[which];
  d.factor = which == 0 ? rng.uniform(1, o.resize_range.hi) : which == 1 ? rng.uniform(o.resize_range.lo, 1) : 1.0;
  d.mode = cfg.resize_modes[rng.below(cfg.resize_modes.size())];
  return d;
}

Op sample_noise(const OrderConfig& o, const std::string& stage, uint64_t seed, const std::string& key, Rng& rng) {
  Op op;
  op.stage = stage;
  op.seed = stream_seed(seed, key, stage);
  if (rng.uniform() < o.gaussian_noise_prob) {
    op.kind = OpKind::gaussian_noise;
    op.sigma = rng.uniform(o.noise_range.lo, o.noise_range.hi);
  } else {
    op.kind = OpKind::poisson_noise;
    op.scale = rng.uniform(o.poisson_scale.lo, o.poisson_scale.hi);
  }
  op.gray = rng.uniform() < o.gray_noise_prob;
  return op;
}

Op jpeg_op(const std::string& stage, double q) {
  Op op;
  op.kind = OpKind::jpeg;
  op.stage = stage;
  op.quality = q;
  return op;
}

Op corruption_op(OpKind kind, const std::string& stage, std::vector<double> values, uint64_t seed,
                 const std::string& key) {
  Op op;
  op.kind = kind;
  op.stage = stage;
  op.values = std::move(values);
  if (corruption_is_random(kind)) op.seed = stream_seed(seed, key, stage);
  return op;
}

// The single corruptions of corruptions.hpp at severity index s (0..4); the
// angles the reference draws per image come from the "params" stream.
void sample_corruption(Record& rec, const std::string& n, int s, uint64_t seed, const std::string& key,
                       const std::string& frost_dir) {
  Rng rng(seed, key, "params");
  auto add = [&](OpKind kind, std::vector<double> values) {
    rec.ops.push_back(corruption_op(kind, n, std::move(values), seed, key));
  };
  if (n == "contrast") {
    add(OpKind::contrast, {kContrast[s]});
  } else if (n == "brightness") {
    add(OpKind::brightness, {kBrightness[s]});
  } else if (n == "motion-blur") {
    add(OpKind::motion_blur, {kMotionBlur[s][0], kMotionBlur[s][1], rng.uniform(-45, 45)});
  } else if (n == "fog") {
    add(OpKind::fog, {kFog[s][0], kFog[s][1]});
  } else if (n == "snow") {
    const double* c = kSnow[s];
    add(OpKind::snow, {c[0], c[1], c[2], c[3], c[4], c[5], c[6], rng.uniform(-135, -45)});
  } else if (n == "shot-noise") {
    add(OpKind::shot_noise, {kShotPhotons[s]});
  } else if (n == "impulse-noise") {
    add(OpKind::impulse_noise, {kImpulseAmount[s]});
  } else if (n == "speckle-noise") {
    add(OpKind::speckle_noise, {kSpeckle[s]});
  } else if (n == "defocus-blur") {
    add(OpKind::defocus_blur, {kDefocus[s][0], kDefocus[s][1]});
  } else if (n == "zoom-blur") {
    add(OpKind::zoom_blur, {kZoom[s][0], kZoom[s][1]});
  } else if (n == "glass-blur") {
    add(OpKind::glass_blur, {kGlass[s][0], kGlass[s][1], kGlass[s][2]});
  } else if (n == "pixelate") {
    add(OpKind::pixelate, {kPixelate[s]});
  } else if (n == "saturate") {
    add(OpKind::saturate, {kSaturate[s][0], kSaturate[s][1]});
  } else if (n == "spatter") {
    const double* c = kSpatter[s];
    add(OpKind::spatter, {c[0], c[1], c[2], c[3], c[4], c[5]});
  } else if (n == "frost") {
    if (frost_dir.empty())
      throw Error(ExitCode::usage, "-p frost needs ImageNet-C's frost pictures: --frost-dir DIR (or RASS_FROST_DIR), "
                                   "the frost/ folder of the imagecorruptions package");
    // The reference's draws: randint(5) (frost6.jpg is never drawn), then
    // the crop's row and column in the rescaled picture.
    const int picture = int(rng.below(kFrostPicturesDrawn));
    const std::string path = path_join(frost_dir, frost_file_name(picture));
    const FrostPicture& pic = frost_picture(path);
    int rw = 0, rh = 0;
    frost_rescaled_size(pic.image.width, pic.image.height, rec.in_width, rec.in_height, rw, rh, path);
    const double crop_y = double(rng.below(uint64_t(rh - rec.in_height)));
    const double crop_x = double(rng.below(uint64_t(rw - rec.in_width)));
    add(OpKind::frost, {kFrost[s][0], kFrost[s][1], double(picture), crop_y, crop_x});
    rec.ops.back().resource = path;
    rec.ops.back().resource_hash = pic.hash;
  } else if (n == "elastic") {
    add(OpKind::elastic, {kElasticAlpha[s]});
  } else if (n == "low-light") {
    add(OpKind::low_light, {kLowLight[s][0], kLowLight[s][1]});
    Op noise;
    noise.kind = OpKind::gaussian_noise;
    noise.stage = "low-light-noise";
    noise.sigma = kLowLight[s][2];
    noise.seed = stream_seed(seed, key, noise.stage);
    rec.ops.push_back(noise);
  } else if (n == "rain") {
    const double* c = kRain[s];
    add(OpKind::rain, {c[0], c[1], 90 + rng.uniform(-20, 20), c[2], c[3]});
  } else {
    throw Error(ExitCode::usage, "unknown single degradation '" + n + "'");
  }
}

Record sample_named(const PipelineConfig& cfg, Record rec, uint64_t seed, const std::string& key) {
  const int s = cfg.named.severity - 1;
  const std::string& n = cfg.named.name;
  if (n == "blur") {
    KernelParams k;
    k.type = KernelType::gaussian;
    k.sigma_x = k.sigma_y = kBlurSigma[s];
    k.size = named_blur_size(kBlurSigma[s]);
    rec.ops.push_back(blur_op("blur", k));
  } else if (n == "noise") {
    Op op;
    op.kind = OpKind::gaussian_noise;
    op.stage = "noise";
    op.sigma = kNoiseSigma[s] * 255.0;
    op.seed = stream_seed(seed, key, "noise");
    rec.ops.push_back(op);
  } else if (n == "jpeg") {
    rec.ops.push_back(jpeg_op("jpeg", kJpegQuality[s]));
  } else if (n == "downsample") {
    const double f = kDownFactor[s];
    rec.ops.push_back(resize_op("downsample", ResizeMode::area, int(rec.in_width / f), int(rec.in_height / f)));
    rec.ops.push_back(resize_op("upsample", ResizeMode::bicubic, rec.in_width, rec.in_height));
  } else {
    sample_corruption(rec, n, s, seed, key, cfg.named.frost_dir);
  }
  rec.out_width = rec.in_width;
  rec.out_height = rec.in_height;
  return rec;
}

}  // namespace

int min_input_side(const PipelineConfig& cfg) {
  if (cfg.named.name == "blur") return named_blur_size(kBlurSigma[cfg.named.severity - 1]);
  if (cfg.named.name == "downsample") return int(kDownFactor[cfg.named.severity - 1]);
  if (!cfg.named.name.empty()) return 1;
  // Only kernels that can be applied count: with every blur off (by
  // probability 0 or --stages) any image of at least `scale` px is taken.
  const bool blur1 = cfg.first.blur_prob > 0 && !cfg.disabled.count("blur1");
  const bool blur2 = cfg.second.blur_prob > 0 && !cfg.disabled.count("blur2");
  const bool sinc = cfg.final_sinc_prob > 0 && !cfg.disabled.count("final_sinc");
  int k = 1;
  if (blur1 || blur2 || sinc)
    for (int s : cfg.kernel_sizes) k = std::max(k, s);
  return std::max(k, cfg.scale);
}

Record sample_record(const PipelineConfig& cfg, uint64_t seed, const std::string& key, int w, int h, int channels) {
  Record rec;
  rec.preset = cfg.preset;
  rec.seed = seed;
  rec.key = key;
  rec.in_width = w;
  rec.in_height = h;
  rec.channels = channels;
  rec.scale = cfg.scale;
  if (!cfg.named.name.empty()) return sample_named(cfg, rec, seed, key);
  // A scale drawn per image (GleSAM) comes from a stream of its own, so the
  // pipeline's draws below stay those of a fixed scale.
  const int scale = cfg.scale_choices.empty()
                        ? cfg.scale
                        : cfg.scale_choices[size_t(Rng(seed, key, "scale-choice").below(cfg.scale_choices.size()))];
  rec.scale = scale;

  Rng rng(seed, key, "params");
  // Kernels first, as the reference's dataset does, then the model's draws in order.
  const KernelParams k1 = sample_kernel(cfg, cfg.first, rng);
  const KernelParams k2 = sample_kernel(cfg, cfg.second, rng);
  const bool final_sinc = rng.uniform() < cfg.final_sinc_prob;
  KernelParams ks;
  ks.type = KernelType::sinc;
  ks.size = cfg.kernel_sizes[rng.below(cfg.kernel_sizes.size())];
  ks.cutoff = rng.uniform(M_PI / 3, M_PI);

  const ResizeDraw r1 = sample_resize(cfg, cfg.first, rng);
  const Op n1 = sample_noise(cfg.first, "noise1", seed, key, rng);
  const double q1 = rng.uniform(cfg.first.jpeg_range.lo, cfg.first.jpeg_range.hi);
  const bool blur2 = rng.uniform() < cfg.second.blur_prob;
  const ResizeDraw r2 = sample_resize(cfg, cfg.second, rng);
  const Op n2 = sample_noise(cfg.second, "noise2", seed, key, rng);
  const bool resize_first = rng.uniform() < 0.5;
  const ResizeMode final_mode = cfg.resize_modes[rng.below(cfg.resize_modes.size())];
  const double q2 = rng.uniform(cfg.second.jpeg_range.lo, cfg.second.jpeg_range.hi);

  auto on = [&](const std::string& stage) {
    if (!cfg.disabled.count(stage)) return true;
    rec.skipped.push_back({stage, "disabled"});
    return false;
  };
  if (cfg.usm && on("usm")) {
    Op op;
    op.kind = OpKind::usm;
    op.stage = "usm";
    rec.ops.push_back(op);
  }
  // The reference blurs every first order (RealESRGANModel.feed_data draws no
  // probability for it); --blur-prob below 1 draws from its own stream, so the
  // reference's draws above stay as they are.
  const bool blur1 = cfg.first.blur_prob >= 1 || Rng(seed, key, "blur1").uniform() < cfg.first.blur_prob;
  if (!blur1) rec.skipped.push_back({"blur1", "probability"});
  else if (on("blur1")) rec.ops.push_back(blur_op("blur1", k1));
  if (on("resize1")) {
    // F.interpolate(scale_factor=f): size floor(n * f), coordinates scaled by 1/f.
    Op op = resize_op("resize1", r1.mode, int(std::floor(w * r1.factor)), int(std::floor(h * r1.factor)));
    op.direction = r1.direction;
    op.factor = r1.factor;
    op.use_factor = true;
    rec.ops.push_back(op);
  }
  if (on("noise1")) rec.ops.push_back(n1);
  if (on("jpeg1")) rec.ops.push_back(jpeg_op("jpeg1", q1));
  if (!blur2) rec.skipped.push_back({"blur2", "probability"});
  else if (on("blur2")) rec.ops.push_back(blur_op("blur2", cfg.glesam_final ? k1 : k2));
  if (on("resize2")) {
    // F.interpolate(size=(int(ori_h / scale * f), int(ori_w / scale * f))).
    Op op = resize_op("resize2", r2.mode, int(double(w) / scale * r2.factor), int(double(h) / scale * r2.factor));
    op.direction = r2.direction;
    op.factor = r2.factor;
    rec.ops.push_back(op);
  }
  if (on("noise2")) rec.ops.push_back(n2);

  const Op final_resize = cfg.glesam_final ? resize_op("final_resize", final_mode, w, h)
                                           : resize_op("final_resize", final_mode, w / scale, h / scale);
  const bool sinc_on = final_sinc && on("final_sinc");
  if (!final_sinc) rec.skipped.push_back({"final_sinc", "probability"});
  const bool jpeg2_on = on("jpeg2");
  rec.final_order = resize_first ? "resize_sinc_then_jpeg" : "jpeg_then_resize_sinc";
  if (!resize_first && jpeg2_on) rec.ops.push_back(jpeg_op("jpeg2", q2));
  rec.ops.push_back(final_resize);
  if (sinc_on) rec.ops.push_back(blur_op("final_sinc", ks));
  if (resize_first && jpeg2_on) rec.ops.push_back(jpeg_op("jpeg2", q2));

  rec.out_width = final_resize.width;
  rec.out_height = final_resize.height;
  if (cfg.lq_at_hq_size && scale != 1 && !cfg.glesam_final) {
    rec.ops.push_back(resize_op("to_hq_size", cfg.upsample_mode, w, h));
    rec.out_width = w;
    rec.out_height = h;
  }
  return rec;
}

Image apply_record(const Image& hq, const Record& rec, const std::string& name) {
  if (hq.channels != rec.channels)
    throw_bad_input(name, "image has " + std::to_string(hq.channels) + " channel(s) but the record was made for " +
                              std::to_string(rec.channels));
  if (hq.width != rec.in_width || hq.height != rec.in_height)
    throw_bad_input(name, "image is " + std::to_string(hq.width) + "x" + std::to_string(hq.height) +
                              " but the record was made for " + std::to_string(rec.in_width) + "x" +
                              std::to_string(rec.in_height));
  check_record_sizes(rec, name);  // before any pixel buffer is allocated
  Planes p = to_planes(hq);
  apply_ops(p, rec.ops, filter_algo_for(rec.version));
  return to_image8(p);
}

FilterAlgo filter_algo_for(int record_version) {
  return record_version >= 2 ? FilterAlgo::direct_large : FilterAlgo::opencv;
}

json record_to_json(const Record& rec) {
  json j;
  j["tool"] = "rass-degrade";
  j["version"] = version();
  j["record_version"] = rec.version;
  j["preset"] = rec.preset;
  j["seed"] = rec.seed;
  j["key"] = rec.key;
  j["input"] = {{"width", rec.in_width}, {"height", rec.in_height}, {"channels", rec.channels}};
  j["output"] = {{"width", rec.out_width}, {"height", rec.out_height}, {"channels", rec.channels}};
  j["scale"] = rec.scale;
  if (!rec.final_order.empty()) j["final_order"] = rec.final_order;
  j["ops"] = json::array();
  for (const Op& op : rec.ops) j["ops"].push_back(op_to_json(op));
  j["skipped"] = json::array();
  for (const Skipped& s : rec.skipped) j["skipped"].push_back({{"stage", s.stage}, {"reason", s.reason}});
  return j;
}

namespace {

[[noreturn]] void bad_record(const std::string& name, const std::string& what) {
  throw_bad_input(name, "invalid degradation record: " + what);
}

int record_int(const json& j, const char* key, const std::string& where, const std::string& name, int64_t lo,
               int64_t hi) {
  if (!j.contains(key)) bad_record(name, where + key + ": missing");
  const json& v = j.at(key);
  if (!v.is_number_integer()) bad_record(name, where + key + ": expected an integer, got " + v.dump());
  // JSON reads non-negative integers as unsigned: compare them to both bounds too.
  const bool out = v.is_number_unsigned()
                       ? v.get<uint64_t>() > uint64_t(hi) || (lo > 0 && v.get<uint64_t>() < uint64_t(lo))
                       : v.get<int64_t>() < lo || v.get<int64_t>() > hi;
  if (out) bad_record(name, where + key + ": " + v.dump() + " is outside [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  return int(v.get<int64_t>());
}

std::string record_text(const json& j, const char* key, const std::string& name) {
  if (!j.contains(key)) return "";
  if (!j.at(key).is_string()) bad_record(name, std::string(key) + ": expected a string, got " + j.at(key).dump());
  return j.at(key).get<std::string>();
}

// width x height against the pixel limit, naming the record field.
void check_declared_size(const std::string& name, const std::string& field, int64_t w, int64_t h) {
  const uint64_t limit = max_pixels();
  const uint64_t pixels = uint64_t(w) * uint64_t(h);
  if (limit != 0 && pixels > limit)
    throw_bad_input(name, field + " is " + std::to_string(w) + "x" + std::to_string(h) + " = " +
                              std::to_string(pixels) + " pixels, over the pixel limit of " + std::to_string(limit) +
                              " (raise it with --max-pixels N or RASS_MAX_PIXELS=N, 0 = no limit)");
}

}  // namespace

void resolve_frost_pictures(Record& rec, const std::string& frost_dir) {
  for (Op& op : rec.ops)
    if (op.kind == OpKind::frost && !frost_dir.empty() && op.values.size() > 2)
      op.resource = path_join(frost_dir, frost_file_name(int(op.values[2])));
}

void check_record_sizes(const Record& rec, const std::string& name) {
  check_declared_size(name, "input", rec.in_width, rec.in_height);
  int64_t w = rec.in_width, h = rec.in_height;
  for (size_t i = 0; i < rec.ops.size(); ++i) {
    const Op& op = rec.ops[i];
    if (op.kind == OpKind::fog && fog_map_side(int(w), int(h), rec.channels) > kMaxFogMapSide)
      throw_bad_input(name, "ops[" + std::to_string(i) + "] (fog): ImageNet-C's fog draws a square map of the " +
                                "longest side's next power of two, " + std::to_string(fog_map_side(int(w), int(h), rec.channels)) +
                                " here, more than " + std::to_string(kMaxFogMapSide) + "; crop or tile the image");
    if (op.kind != OpKind::resize) continue;
    const std::string field = "ops[" + std::to_string(i) + "] (" + op.stage + ") size";
    if (op.use_factor) {
      // F.interpolate(scale_factor=f) makes floor(n * f) (at least 1, as sample_record writes).
      const int64_t ew = std::max<int64_t>(1, int64_t(std::floor(double(w) * op.factor)));
      const int64_t eh = std::max<int64_t>(1, int64_t(std::floor(double(h) * op.factor)));
      if (ew != op.width || eh != op.height)
        bad_record(name, field + ": " + std::to_string(op.width) + "x" + std::to_string(op.height) + " but factor " +
                             std::to_string(op.factor) + " of " + std::to_string(w) + "x" + std::to_string(h) +
                             " gives " + std::to_string(ew) + "x" + std::to_string(eh));
    }
    check_declared_size(name, field, op.width, op.height);
    w = op.width;
    h = op.height;
  }
  if (w != rec.out_width || h != rec.out_height)
    bad_record(name, "output: declares " + std::to_string(rec.out_width) + "x" + std::to_string(rec.out_height) +
                         " but its ops produce " + std::to_string(w) + "x" + std::to_string(h));
}

Record record_from_json(const json& j, const std::string& name) {
  if (!j.is_object()) bad_record(name, "expected a JSON object");
  Record rec;
  // record_version: absent in records before version 1 (read as 1, the same format).
  if (j.contains("record_version")) {
    const json& v = j.at("record_version");
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      bad_record(name, "record_version: expected a non-negative integer, got " + v.dump());
    if (v.get<int64_t>() > kRecordVersion)
      bad_record(name, "record_version " + v.dump() + " is newer than this rass-degrade reads (" +
                           std::to_string(kRecordVersion) + "); use a newer rass");
    rec.version = std::max(1, int(v.get<int64_t>()));  // 0 is 1's format
  } else {
    rec.version = 1;
  }
  const std::string tool = record_text(j, "tool", name);
  if (!tool.empty() && tool != "rass-degrade") bad_record(name, "tool: '" + tool + "' (not rass-degrade)");
  rec.preset = record_text(j, "preset", name);
  if (j.contains("seed")) {
    const json& v = j.at("seed");
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
      bad_record(name, "seed: expected an integer 0..2^64-1, got " + v.dump());
    rec.seed = v.get<uint64_t>();
  }
  rec.key = record_text(j, "key", name);
  for (const char* part : {"input", "output"})
    if (!j.contains(part) || !j.at(part).is_object()) bad_record(name, std::string(part) + ": missing or not an object");
  const json& in = j.at("input");
  const json& out = j.at("output");
  rec.in_width = record_int(in, "width", "input.", name, 1, 65535);
  rec.in_height = record_int(in, "height", "input.", name, 1, 65535);
  rec.channels = in.contains("channels") ? record_int(in, "channels", "input.", name, 1, 3) : 3;
  if (rec.channels == 2) bad_record(name, "input.channels: 2 (expected 1 or 3)");
  rec.out_width = record_int(out, "width", "output.", name, 1, 65535);
  rec.out_height = record_int(out, "height", "output.", name, 1, 65535);
  if (out.contains("channels") && record_int(out, "channels", "output.", name, 1, 3) != rec.channels)
    bad_record(name, "output.channels: differs from input.channels");
  rec.scale = j.contains("scale") ? record_int(j, "scale", "", name, 1, 65535) : 1;
  rec.final_order = record_text(j, "final_order", name);
  if (!rec.final_order.empty() && rec.final_order != "resize_sinc_then_jpeg" &&
      rec.final_order != "jpeg_then_resize_sinc")
    bad_record(name, "final_order: '" + rec.final_order + "' (expected resize_sinc_then_jpeg or jpeg_then_resize_sinc)");
  if (!j.contains("ops") || !j.at("ops").is_array()) bad_record(name, "ops: missing or not an array");
  const json& ops = j.at("ops");
  // The pipeline writes at most a dozen ops; each op's cost is bounded by its
  // fields' ranges, and this bounds their number (200 edited-in motion blurs
  // of radius 100 ran for 20 minutes on a 4000x3000 image).
  constexpr size_t kMaxRecordOps = 32;
  if (ops.size() > kMaxRecordOps)
    bad_record(name, "ops: " + std::to_string(ops.size()) + " ops, more than the " + std::to_string(kMaxRecordOps) +
                         " a record may hold");
  for (size_t i = 0; i < ops.size(); ++i) {
    try {
      rec.ops.push_back(op_from_json(ops[i], "ops[" + std::to_string(i) + "]"));
    } catch (const Error& e) {
      bad_record(name, e.what());
    } catch (const std::exception& e) {  // nlohmann type errors the strict readers missed
      bad_record(name, "ops[" + std::to_string(i) + "]: " + e.what());
    }
  }
  if (j.contains("skipped")) {
    const json& sk = j.at("skipped");
    if (!sk.is_array()) bad_record(name, "skipped: not an array");
    for (size_t i = 0; i < sk.size(); ++i) {
      const std::string where = "skipped[" + std::to_string(i) + "]";
      if (!sk[i].is_object()) bad_record(name, where + ": expected an object");
      const std::string stage = record_text(sk[i], "stage", name), reason = record_text(sk[i], "reason", name);
      if (reason != "probability" && reason != "disabled")
        bad_record(name, where + " reason: '" + reason + "' (expected probability or disabled)");
      rec.skipped.push_back({stage, reason});
    }
  }
  check_record_sizes(rec, name);
  return rec;
}

}  // namespace rass::degrade
