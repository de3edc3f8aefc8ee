#include "rass/degrade/ops.hpp"

#include <cmath>
#include <cstdio>

#include "rass/core/error.hpp"
#include "rass/degrade/corruptions.hpp"
#include "rass/degrade/filter.hpp"
#include "rass/degrade/frost.hpp"
#include "rass/degrade/spatter.hpp"
#include "rass/degrade/noise.hpp"
#include "rass/io/image_io.hpp"

namespace rass::degrade {

using json = nlohmann::ordered_json;

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::blur: return "blur";
    case OpKind::usm: return "usm";
    case OpKind::resize: return "resize";
    case OpKind::gaussian_noise: return "gaussian_noise";
    case OpKind::poisson_noise: return "poisson_noise";
    case OpKind::jpeg: return "jpeg";
    default: break;  // a single corruption: its name is in corruption_spec
  }
  const CorruptionSpec* c = corruption_spec(k);
  return c ? c->name : "?";
}

const std::vector<CorruptionSpec>& corruption_specs() {
  // Bounds keep every value finite and every loop short; the presets' values
  // (record.cpp) lie well inside.
  static const std::vector<CorruptionSpec> specs = {
      {OpKind::contrast, "contrast", {{"factor", 0, 10}}, false},
      {OpKind::brightness, "brightness", {{"delta", -1, 1}}, false},
      {OpKind::motion_blur, "motion_blur",
       {{"radius", 0, 100, true}, {"sigma", kMinRecordSigma, kMaxRecordSigma}, {"angle", -360, 360}}, false},
      {OpKind::fog, "fog", {{"strength", 0, 100}, {"decay", 1, 16}}, true},
      {OpKind::snow, "snow",
       {{"mean", -10, 10},
        {"std", 0, 10},
        {"zoom", 1, 16},
        {"threshold", -10, 10},
        {"radius", 0, 100, true},
        {"sigma", kMinRecordSigma, kMaxRecordSigma},
        {"blend", 0, 1},
        {"angle", -360, 360}},
       true},
      {OpKind::shot_noise, "shot_noise", {{"photons", 1e-3, 1e6}}, true},
      {OpKind::impulse_noise, "impulse_noise", {{"amount", 0, 1}}, true},
      {OpKind::low_light, "low_light", {{"gamma", 0.1, 10}, {"gain", 0, 1}}, false},
      {OpKind::rain, "rain",
       {{"density", 0, 1}, {"length", 1, 1000, true}, {"angle", -360, 360}, {"opacity", 0, 1}, {"darken", 0, 1}},
       true},
      {OpKind::speckle_noise, "speckle_noise", {{"sigma", 0, 10}}, true},
      // A 61x61 disk at most (ImageNet-C: 21x21): the filter is not separable.
      {OpKind::defocus_blur, "defocus_blur", {{"radius", 1, 30, true}, {"alias_blur", kMinRecordSigma, 100}}, false},
      // At most 100 zooms: ceil((stop - 1) / step).
      {OpKind::zoom_blur, "zoom_blur", {{"stop", 1.001, 2}, {"step", 0.01, 1}}, false},
      {OpKind::glass_blur, "glass_blur", {{"sigma", 0.01, 10}, {"max_delta", 1, 20, true}, {"iterations", 1, 10, true}},
       true},
      {OpKind::pixelate, "pixelate", {{"factor", 0.001, 1}}, false},
      {OpKind::saturate, "saturate", {{"scale", 0, 100}, {"shift", -1, 1}}, false},
      {OpKind::elastic, "elastic", {{"alpha", 0, 1000}}, true},
      {OpKind::spatter, "spatter",
       {{"mean", -10, 10}, {"std", 0, 10}, {"sigma", 0.01, 20}, {"threshold", -10, 10}, {"gain", 0, 20},
        {"mud", 0, 1, true}},
       true},
      // The picture and its crop are drawn at sampling and held as values: no seed.
      {OpKind::frost, "frost",
       {{"strength", 0, 10},
        {"weight", 0, 10},
        {"picture", 0, kFrostPictures - 1, true},
        {"crop_y", 0, 1 << 20, true},
        {"crop_x", 0, 1 << 20, true}},
       false},
  };
  return specs;
}

const CorruptionSpec* corruption_spec(OpKind k) {
  for (const CorruptionSpec& c : corruption_specs())
    if (c.kind == k) return &c;
  return nullptr;
}

const std::vector<OpField>& corruption_fields(OpKind k) {
  static const std::vector<OpField> none;
  const CorruptionSpec* c = corruption_spec(k);
  return c ? c->fields : none;
}

bool corruption_is_random(OpKind k) {
  const CorruptionSpec* c = corruption_spec(k);
  return c && c->seeded;
}

static OpKind parse_op_kind(const std::string& s) {
  for (OpKind k : {OpKind::blur, OpKind::usm, OpKind::resize, OpKind::gaussian_noise, OpKind::poisson_noise,
                   OpKind::jpeg})
    if (s == op_kind_name(k)) return k;
  for (const CorruptionSpec& c : corruption_specs())
    if (s == c.name) return c.kind;
  throw Error(ExitCode::bad_input, "unknown op '" + s + "'");
}

// Seeds are written as hex strings: JSON numbers lose precision above 2^53.
static std::string hex64(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

json op_to_json(const Op& op) {
  json j;
  j["stage"] = op.stage;
  j["op"] = op_kind_name(op.kind);
  if (const std::vector<OpField>& fields = corruption_fields(op.kind); !fields.empty()) {
    for (size_t i = 0; i < fields.size(); ++i) {
      const double v = i < op.values.size() ? op.values[i] : 0.0;
      if (fields[i].integer)
        j[fields[i].name] = int64_t(v);
      else
        j[fields[i].name] = v;
    }
    if (corruption_is_random(op.kind)) j["seed"] = hex64(op.seed);
    if (op.kind == OpKind::frost) j["picture_hash"] = op.resource_hash;
    return j;
  }
  switch (op.kind) {
    case OpKind::blur: {
      const KernelParams& k = op.kernel;
      json kj = {{"type", kernel_type_name(k.type)}, {"size", k.size}};
      if (k.type == KernelType::sinc) {
        kj["cutoff"] = k.cutoff;
      } else {
        kj["sigma_x"] = k.sigma_x;
        kj["sigma_y"] = k.sigma_y;
        kj["theta"] = k.theta;
        if (k.type == KernelType::generalized_iso || k.type == KernelType::generalized_aniso ||
            k.type == KernelType::plateau_iso || k.type == KernelType::plateau_aniso)
          kj["beta"] = k.beta;
      }
      j["kernel"] = kj;
      break;
    }
    case OpKind::usm:
      j["radius"] = op.usm_radius;
      j["weight"] = op.usm_weight;
      j["threshold"] = op.usm_threshold;
      break;
    case OpKind::resize:
      j["mode"] = resize_mode_name(op.mode);
      if (!op.direction.empty()) j["direction"] = op.direction;
      if (op.factor != 0) j["factor"] = op.factor;
      j["use_factor"] = op.use_factor;
      j["width"] = op.width;
      j["height"] = op.height;
      break;
    case OpKind::gaussian_noise:
      j["sigma"] = op.sigma;
      j["gray"] = op.gray;
      j["seed"] = hex64(op.seed);
      break;
    case OpKind::poisson_noise:
      j["scale"] = op.scale;
      j["gray"] = op.gray;
      j["seed"] = hex64(op.seed);
      break;
    case OpKind::jpeg:
      j["quality"] = op.quality;
      j["quality_int"] = int(op.quality);
      break;
    default:
      break;
  }
  return j;
}

namespace {

// Strict readers of record fields: the right JSON type, finite, in range; a
// failure is bad input naming the field ("ops[3] (resize2) width: ...").
[[noreturn]] void bad_field(const std::string& where, const std::string& what) {
  throw Error(ExitCode::bad_input, where + ": " + what);
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const json& field(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) bad_field(where, std::string("missing field '") + key + "'");
  return j.at(key);
}

double number_in(const json& j, const char* key, const std::string& where, double lo, double hi,
                 bool lo_open = false, bool hi_open = false) {
  const json& v = field(j, key, where);
  const std::string f = where + " " + key;
  if (!v.is_number()) bad_field(f, "expected a number, got " + v.dump());
  const double d = v.get<double>();
  const bool ok = std::isfinite(d) && (lo_open ? d > lo : d >= lo) && (hi_open ? d < hi : d <= hi);
  if (!ok)
    bad_field(f, fmt(d) + " is outside " + (lo_open ? "(" : "[") + fmt(lo) + ", " + fmt(hi) + (hi_open ? ")" : "]"));
  return d;
}

int64_t integer_in(const json& j, const char* key, const std::string& where, int64_t lo, int64_t hi) {
  const json& v = field(j, key, where);
  const std::string f = where + " " + key;
  if (!v.is_number_integer()) bad_field(f, "expected an integer, got " + v.dump());
  // A non-negative JSON integer is unsigned: it is checked against lo too
  // (a resize width of 0 passed, then failed while applying).
  const bool outside = v.is_number_unsigned()
                           ? v.get<uint64_t>() > uint64_t(hi) || (lo > 0 && v.get<uint64_t>() < uint64_t(lo))
                           : v.get<int64_t>() < lo || v.get<int64_t>() > hi;
  if (outside)
    bad_field(f, v.dump() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v.get<int64_t>();
}

bool boolean(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_boolean()) bad_field(where + " " + key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}

std::string text(const json& j, const char* key, const std::string& where) {
  const json& v = field(j, key, where);
  if (!v.is_string()) bad_field(where + " " + key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

// Noise seeds are "0x" + 1..16 hex digits (op_to_json writes 16).
uint64_t hex_seed(const json& j, const std::string& where) {
  const std::string s = text(j, "seed", where);
  const bool ok = s.size() > 2 && s.size() <= 18 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
                  s.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos;
  if (!ok) bad_field(where + " seed", "'" + s + "' is not a 64-bit hex number (0x...)");
  return std::stoull(s.substr(2), nullptr, 16);
}

bool is_iso(KernelType t) {
  return t == KernelType::iso || t == KernelType::generalized_iso || t == KernelType::plateau_iso ||
         t == KernelType::gaussian;
}
bool has_beta(KernelType t) {
  return t == KernelType::generalized_iso || t == KernelType::generalized_aniso || t == KernelType::plateau_iso ||
         t == KernelType::plateau_aniso;
}

KernelParams parse_kernel(const json& kj, const std::string& where) {
  KernelParams k;
  const std::string type = text(kj, "type", where);
  try {
    k.type = parse_kernel_type(type);
  } catch (const Error&) {
    bad_field(where + " type", "unknown kernel type '" + type + "'");
  }
  k.size = int(integer_in(kj, "size", where, 1, kMaxRecordKernelSize));
  if (k.size % 2 == 0) bad_field(where + " size", "kernel size " + std::to_string(k.size) + " is even (must be odd)");
  if (k.type == KernelType::sinc) {
    k.cutoff = number_in(kj, "cutoff", where, 0, M_PI, /*lo_open=*/true);  // omega_c
    return k;
  }
  k.sigma_x = number_in(kj, "sigma_x", where, kMinRecordSigma, kMaxRecordSigma);
  k.sigma_y = number_in(kj, "sigma_y", where, kMinRecordSigma, kMaxRecordSigma);
  k.theta = number_in(kj, "theta", where, -M_PI, M_PI);
  if (is_iso(k.type) && (k.sigma_y != k.sigma_x || k.theta != 0))
    bad_field(where, std::string("an isotropic kernel (") + type + ") needs sigma_y == sigma_x and theta == 0");
  if (has_beta(k.type)) k.beta = number_in(kj, "beta", where, 0, kMaxRecordBeta, true);
  return k;
}

Op parse_op(const json& j, const std::string& where_in) {
  if (!j.is_object()) bad_field(where_in, "expected an object, got " + j.dump());
  Op op;
  if (j.contains("stage")) op.stage = text(j, "stage", where_in);
  const std::string where = op.stage.empty() ? where_in : where_in + " (" + op.stage + ")";
  const std::string kind = text(j, "op", where);
  try {
    op.kind = parse_op_kind(kind);
  } catch (const Error&) {
    bad_field(where + " op", "unknown op '" + kind + "'");
  }
  if (const std::vector<OpField>& fields = corruption_fields(op.kind); !fields.empty()) {
    for (const OpField& f : fields)
      op.values.push_back(f.integer ? double(integer_in(j, f.name, where, int64_t(f.lo), int64_t(f.hi)))
                                    : number_in(j, f.name, where, f.lo, f.hi));
    if (corruption_is_random(op.kind)) op.seed = hex_seed(j, where);
    if (op.kind == OpKind::frost) {
      op.resource_hash = text(j, "picture_hash", where);
      if (op.resource_hash.size() != 16 || op.resource_hash.find_first_not_of("0123456789abcdef") != std::string::npos)
        bad_field(where + " picture_hash", "'" + op.resource_hash + "' is not a 16-digit hex hash");
    }
    return op;
  }
  switch (op.kind) {
    case OpKind::blur:
      op.kernel = parse_kernel(field(j, "kernel", where), where + " kernel");
      break;
    case OpKind::usm:
      op.usm_radius = int(integer_in(j, "radius", where, 1, kMaxRecordKernelSize));
      op.usm_weight = number_in(j, "weight", where, 0, 10);
      op.usm_threshold = number_in(j, "threshold", where, 0, 255);
      break;
    case OpKind::resize: {
      const std::string mode = text(j, "mode", where);
      try {
        op.mode = parse_resize_mode(mode);
      } catch (const Error&) {
        bad_field(where + " mode", "unknown resize mode '" + mode + "'");
      }
      if (j.contains("direction")) op.direction = text(j, "direction", where);
      if (!op.direction.empty() && op.direction != "up" && op.direction != "down" && op.direction != "keep")
        bad_field(where + " direction", "'" + op.direction + "' is not up, down or keep");
      if (j.contains("factor")) op.factor = number_in(j, "factor", where, 0, kMaxRecordResizeFactor, true);
      if (j.contains("use_factor")) op.use_factor = boolean(j, "use_factor", where);
      if (op.use_factor && op.factor == 0) bad_field(where, "use_factor needs a factor");
      const bool consistent = op.direction.empty() || op.factor == 0 || (op.direction == "up" && op.factor >= 1) ||
                              (op.direction == "down" && op.factor <= 1) || (op.direction == "keep" && op.factor == 1);
      if (!consistent) bad_field(where + " factor", fmt(op.factor) + " does not go " + op.direction);
      op.width = int(integer_in(j, "width", where, 1, 65535));
      op.height = int(integer_in(j, "height", where, 1, 65535));
      break;
    }
    case OpKind::gaussian_noise:
    case OpKind::poisson_noise:
      if (op.kind == OpKind::gaussian_noise)
        op.sigma = number_in(j, "sigma", where, 0, kMaxRecordNoiseSigma);
      else
        op.scale = number_in(j, "scale", where, 0, kMaxRecordPoissonScale);
      op.gray = boolean(j, "gray", where);
      op.seed = hex_seed(j, where);
      break;
    case OpKind::jpeg:
      // The encoder gets int(quality), which must be 1..100.
      op.quality = number_in(j, "quality", where, 1, 101, false, /*hi_open=*/true);
      if (j.contains("quality_int") && integer_in(j, "quality_int", where, 1, 100) != int64_t(op.quality))
        bad_field(where + " quality_int", "is not int(quality) = " + std::to_string(int(op.quality)));
      break;
    default:
      break;
  }
  return op;
}

}  // namespace

Op op_from_json(const json& j, const std::string& where) { return parse_op(j, where); }

void jpeg_roundtrip(Planes& img, int quality) {
  Image q = to_image8(img);
  EncodeOptions opt;
  opt.jpeg_quality = quality;
  std::vector<uint8_t> bytes = encode_image(q, ImageFormat::jpeg, opt);
  Image back = decode_image(bytes, "<jpeg round trip>");
  img = to_planes(back);
}

void usm_sharpen(Planes& img, int radius, double weight, double threshold) {
  if (radius % 2 == 0) ++radius;
  // cv2.getGaussianKernel(radius, 0): sigma = 0.3 * ((radius - 1) * 0.5 - 1) + 0.8.
  const double sigma = 0.3 * ((radius - 1) * 0.5 - 1) + 0.8;
  std::vector<double> g(radius);
  double sum = 0;
  for (int i = 0; i < radius; ++i) sum += g[i] = std::exp(-0.5 * std::pow((i - radius / 2) / sigma, 2));
  for (double& v : g) v /= sum;
  Planes blur = filter_separable(img, g, g);
  Planes mask(img.width, img.height, img.channels);
  for (size_t i = 0; i < img.data.size(); ++i)
    mask.data[i] = std::fabs(img.data[i] - blur.data[i]) * 255.f > float(threshold) ? 1.f : 0.f;
  Planes soft = filter_separable(mask, g, g);
  for (size_t i = 0; i < img.data.size(); ++i) {
    const float x = img.data[i];
    float sharp = x + float(weight) * (x - blur.data[i]);
    sharp = sharp < 0 ? 0 : sharp > 1 ? 1 : sharp;
    img.data[i] = soft.data[i] * sharp + (1 - soft.data[i]) * x;
  }
}

namespace {

// The single corruptions, their values in corruption_fields order.
void apply_corruption(Planes& img, const Op& op) {
  const std::vector<double>& v = op.values;
  if (v.size() != corruption_fields(op.kind).size())
    throw Error(ExitCode::runtime, std::string(op_kind_name(op.kind)) + " op without its values");
  // The seeded ones draw from one stream of op.seed (unused by the others).
  RngDraws draws(op.seed);
  switch (op.kind) {
    case OpKind::contrast: return corrupt_contrast(img, v[0]);
    case OpKind::brightness: return corrupt_brightness(img, v[0]);
    case OpKind::motion_blur: return corrupt_motion_blur(img, int(v[0]), v[1], v[2]);
    case OpKind::fog: return corrupt_fog(img, v[0], v[1], draws);
    case OpKind::snow: return corrupt_snow(img, SnowParams{v[0], v[1], v[2], v[3], int(v[4]), v[5], v[6], v[7]}, draws);
    case OpKind::shot_noise: return corrupt_shot_noise(img, v[0], draws.rng());
    case OpKind::impulse_noise: return corrupt_impulse_noise(img, v[0], draws.rng());
    case OpKind::low_light: return corrupt_low_light(img, v[0], v[1]);
    case OpKind::rain: return corrupt_rain(img, v[0], int(v[1]), v[2], v[3], v[4], draws.rng());
    case OpKind::speckle_noise: return corrupt_speckle_noise(img, v[0], draws);
    case OpKind::defocus_blur: return corrupt_defocus_blur(img, int(v[0]), v[1]);
    case OpKind::zoom_blur: return corrupt_zoom_blur(img, v[0], v[1]);
    case OpKind::glass_blur: return corrupt_glass_blur(img, v[0], int(v[1]), int(v[2]), draws);
    case OpKind::pixelate: return corrupt_pixelate(img, v[0]);
    case OpKind::saturate: return corrupt_saturate(img, v[0], v[1]);
    case OpKind::elastic: return corrupt_elastic(img, v[0], draws);
    case OpKind::spatter: return corrupt_spatter(img, SpatterParams{v[0], v[1], v[2], v[3], v[4], v[5] != 0}, draws);
    case OpKind::frost: {
      if (op.resource.empty())
        throw Error(ExitCode::usage, "frost needs ImageNet-C's frost pictures: --frost-dir DIR (or RASS_FROST_DIR), "
                                     "the frost/ folder of the imagecorruptions package");
      const FrostPicture& pic = frost_picture(op.resource);
      if (!op.resource_hash.empty() && pic.hash != op.resource_hash)
        throw_bad_input(op.resource, "is not the frost picture the record was made with (its hash " + pic.hash +
                                         " is not the record's " + op.resource_hash + ")");
      return corrupt_frost(img, v[0], v[1], pic.image, int(v[3]), int(v[4]), op.resource);
    }
    default: throw Error(ExitCode::runtime, std::string("not a corruption: ") + op_kind_name(op.kind));
  }
}

}  // namespace

void apply_op(Planes& img, const Op& op, FilterAlgo filter) {
  switch (op.kind) {
    case OpKind::blur: {
      std::vector<double> g;
      img = separable_factor(op.kernel, g) ? filter_separable(img, g, g) : filter2d(img, make_kernel(op.kernel), filter);
      break;
    }
    case OpKind::usm:
      usm_sharpen(img, op.usm_radius, op.usm_weight, op.usm_threshold);
      break;
    case OpKind::resize:
      img = resize(img, op.width, op.height, op.mode, op.use_factor ? op.factor : 0);
      break;
    case OpKind::gaussian_noise: {
      Rng rng(op.seed);
      add_gaussian_noise(img, op.sigma, op.gray, rng);
      break;
    }
    case OpKind::poisson_noise: {
      Rng rng(op.seed);
      add_poisson_noise(img, op.scale, op.gray, rng);
      break;
    }
    case OpKind::jpeg:
      jpeg_roundtrip(img, int(op.quality));
      break;
    default:
      apply_corruption(img, op);
      break;
  }
}

void apply_ops(Planes& img, const std::vector<Op>& ops, FilterAlgo filter) {
  for (const Op& op : ops) apply_op(img, op, filter);
}

}  // namespace rass::degrade
