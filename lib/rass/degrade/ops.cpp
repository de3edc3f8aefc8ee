#include "rass/degrade/ops.hpp"

#include <cmath>
#include <cstdio>

#include "rass/core/error.hpp"
#include "rass/degrade/filter.hpp"
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
  }
  return "?";
}

static OpKind parse_op_kind(const std::string& s) {
  for (OpKind k : {OpKind::blur, OpKind::usm, OpKind::resize, OpKind::gaussian_noise, OpKind::poisson_noise,
                   OpKind::jpeg})
    if (s == op_kind_name(k)) return k;
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
  }
  return j;
}

static Op parse_op(const json& j);

static void check_range(double v, double lo, double hi, const char* what) {
  if (!(v >= lo && v <= hi))
    throw Error(ExitCode::bad_input, std::string(what) + " " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "]");
}

Op op_from_json(const json& j) {
  Op op = parse_op(j);
  // A record is input data: refuse values the pipeline would choke on or that would allocate without bound.
  if (op.kind == OpKind::blur) {
    check_range(op.kernel.size, 1, 201, "kernel size");
    if (op.kernel.size % 2 == 0) throw Error(ExitCode::bad_input, "kernel size must be odd");
  }
  if (op.kind == OpKind::resize) {
    check_range(op.width, 1, 65535, "resize width");
    check_range(op.height, 1, 65535, "resize height");
  }
  if (op.kind == OpKind::jpeg) check_range(op.quality, 1, 100.999, "JPEG quality");
  if (op.kind == OpKind::usm) check_range(op.usm_radius, 1, 201, "USM radius");
  return op;
}

static Op parse_op(const json& j) {
  Op op;
  op.stage = j.value("stage", "");
  op.kind = parse_op_kind(j.at("op").get<std::string>());
  switch (op.kind) {
    case OpKind::blur: {
      const json& kj = j.at("kernel");
      op.kernel.type = parse_kernel_type(kj.at("type").get<std::string>());
      op.kernel.size = kj.at("size").get<int>();
      if (op.kernel.type == KernelType::sinc) {
        op.kernel.cutoff = kj.at("cutoff").get<double>();
      } else {
        op.kernel.sigma_x = kj.at("sigma_x").get<double>();
        op.kernel.sigma_y = kj.at("sigma_y").get<double>();
        op.kernel.theta = kj.at("theta").get<double>();
        op.kernel.beta = kj.value("beta", 1.0);
      }
      break;
    }
    case OpKind::usm:
      op.usm_radius = j.at("radius").get<int>();
      op.usm_weight = j.at("weight").get<double>();
      op.usm_threshold = j.at("threshold").get<double>();
      break;
    case OpKind::resize:
      op.mode = parse_resize_mode(j.at("mode").get<std::string>());
      op.direction = j.value("direction", "");
      op.factor = j.value("factor", 0.0);
      op.use_factor = j.value("use_factor", false);
      op.width = j.at("width").get<int>();
      op.height = j.at("height").get<int>();
      break;
    case OpKind::gaussian_noise:
    case OpKind::poisson_noise:
      if (op.kind == OpKind::gaussian_noise)
        op.sigma = j.at("sigma").get<double>();
      else
        op.scale = j.at("scale").get<double>();
      op.gray = j.at("gray").get<bool>();
      op.seed = std::stoull(j.at("seed").get<std::string>(), nullptr, 16);
      break;
    case OpKind::jpeg:
      op.quality = j.at("quality").get<double>();
      break;
  }
  return op;
}

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

void apply_op(Planes& img, const Op& op) {
  switch (op.kind) {
    case OpKind::blur: {
      std::vector<double> g;
      img = separable_factor(op.kernel, g) ? filter_separable(img, g, g) : filter2d(img, make_kernel(op.kernel));
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
  }
}

void apply_ops(Planes& img, const std::vector<Op>& ops) {
  for (const Op& op : ops) apply_op(img, op);
}

}  // namespace rass::degrade
