#include "rass/degrade/config.hpp"

#include <algorithm>
#include <cstdio>

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/degrade/ops.hpp"

namespace rass::degrade {

std::vector<double> parse_doubles(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    double v = 0;
    if (!parse_decimal(item, &v))
      throw_usage(flag + " '" + text + "': '" + item + "' is not a (finite) number");
    out.push_back(v);
  }
  if (out.empty()) throw_usage(flag + ": empty list");
  return out;
}

Range parse_range(const std::string& text, const std::string& flag) {
  auto v = parse_doubles(text, flag);
  if (v.size() != 2 || v[0] > v[1]) throw_usage(flag + " '" + text + "': expected lo,hi with lo <= hi");
  return Range{v[0], v[1]};
}

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names = {"usm",   "blur1",   "resize1", "noise1", "jpeg1",
                                                 "blur2", "resize2", "noise2",  "jpeg2",  "final_sinc"};
  return names;
}

OrderConfig second_order_defaults() {
  OrderConfig o;
  o.blur_sigma = {0.2, 1.5};
  o.blur_prob = 0.8;
  o.resize_prob = {0.3, 0.4, 0.3};
  o.resize_range = {0.3, 1.2};
  o.noise_range = {1, 25};
  o.poisson_scale = {0.05, 2.5};
  return o;
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = {"realesrgan-x4", "rass", "lqseg-1", "lqseg-2", "lqseg-3", "glesam"};
    for (const std::string& s : single_degradation_names()) n.push_back(s);
    return n;
  }();
  return names;
}

const std::vector<std::string>& single_degradation_names() {
  static const std::vector<std::string> names = {
      "blur",         "noise",      "jpeg",       "downsample", "motion-blur", "defocus-blur", "zoom-blur",
      "glass-blur",   "shot-noise", "impulse-noise", "speckle-noise", "contrast", "brightness", "saturate",
      "pixelate",     "elastic",    "fog",        "snow",       "spatter",     "frost",       "rain",        "low-light"};
  return names;
}

std::string single_degradation_list() {
  std::string all;
  for (const std::string& s : single_degradation_names()) all += (all.empty() ? "" : ", ") + s;
  return all;
}

PipelineConfig make_preset(const std::string& name, int severity) {
  PipelineConfig cfg;
  cfg.second = second_order_defaults();
  cfg.preset = name;
  if (name == "realesrgan-x4") {
    cfg.scale = 4;
  } else if (name == "rass") {
    cfg.scale = 1;
  } else if (name == "lqseg-1" || name == "lqseg-2" || name == "lqseg-3") {
    // GleSAM LQSeg: downsample rate 1, 2, 4; LQ returned at HQ size so masks align.
    cfg.scale = name == "lqseg-1" ? 1 : name == "lqseg-2" ? 2 : 4;
    cfg.lq_at_hq_size = true;
  } else if (name == "glesam") {
    // GleSAM's training data (options/lrseg_add_mask_multi_dataset_ms.yaml
    // and dataset/codeformer_add_maskv3_ms.py): a first resize that mostly
    // keeps the size, a downsampling factor drawn per image that sizes the
    // second resize, the LQ back at the HQ size.
    cfg.first.resize_prob = {0.1, 0.2, 0.7};
    cfg.first.resize_range = {0.5, 1.5};
    cfg.scale = 4;  // the largest choice (what min_input_side needs)
    cfg.scale_choices = {1, 2, 3, 3, 4, 4, 4, 4};
    cfg.lq_at_hq_size = true;
    cfg.glesam_final = true;
  } else if (std::find(single_degradation_names().begin(), single_degradation_names().end(), name) !=
             single_degradation_names().end()) {
    if (severity < 1 || severity > 5) throw_usage("--severity must be 1..5, got " + std::to_string(severity));
    cfg.named.name = name;
    cfg.named.severity = severity;
  } else {
    std::string all;
    for (auto& n : preset_names()) all += (all.empty() ? "" : ", ") + n;
    throw_usage("unknown preset '" + name + "' (expected one of: " + all + ")");
  }
  return cfg;
}

void apply_stages(PipelineConfig& cfg, const std::string& spec) {
  static const std::map<std::string, std::vector<std::string>> groups = {
      {"blur", {"blur1", "blur2"}},
      {"resize", {"resize1", "resize2"}},
      {"noise", {"noise1", "noise2"}},
      {"jpeg", {"jpeg1", "jpeg2"}},
      {"sinc", {"final_sinc"}},
      {"second", {"blur2", "resize2", "noise2", "jpeg2", "final_sinc"}},
  };
  auto expand = [&](const std::string& item) {
    // USM sharpens the HQ image, not a degradation: --usm alone switches it
    // (kept or dropped here, it was silently off either way).
    if (item == "usm") throw_usage("--stages: usm is not a degradation stage; --usm alone switches it");
    auto g = groups.find(item);
    if (g != groups.end()) return g->second;
    for (auto& s : stage_names())
      if (s == item) return std::vector<std::string>{item};
    std::string all;
    for (auto& s : stage_names())
      if (s != "usm") all += s + " ";
    for (auto& kv : groups) all += kv.first + " ";
    throw_usage("--stages: unknown stage '" + item + "' (known: " + all + ")");
  };
  std::stringstream ss(spec);
  std::string item;
  std::vector<std::string> keep, drop;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if (item[0] == '-')
      for (auto& s : expand(item.substr(1))) drop.push_back(s);
    else
      for (auto& s : expand(item)) keep.push_back(s);
  }
  if (!keep.empty() && !drop.empty()) throw_usage("--stages: either list stages to keep or '-stage' items to drop, not both");
  if (!keep.empty()) {
    for (auto& s : stage_names())
      if (s != "usm") cfg.disabled.insert(s);  // --usm decides the sharpening
    for (auto& s : keep) cfg.disabled.erase(s);
  }
  for (auto& s : drop) cfg.disabled.insert(s);
}

static void check_prob(double p, const std::string& name) {
  if (!(p >= 0 && p <= 1)) throw_usage(name + " must be in [0, 1], got " + std::to_string(p));
}
static void check_weights(const std::vector<double>& w, size_t n, const std::string& name) {
  if (w.size() != n) throw_usage(name + " needs " + std::to_string(n) + " values, got " + std::to_string(w.size()));
  double s = 0;
  for (double v : w) {
    if (v < 0) throw_usage(name + " has a negative weight");
    s += v;
  }
  if (!(s > 0)) throw_usage(name + " weights sum to zero");
  // 1e308,1e308,0 summed to infinity: the draw then took the zero-weight choice.
  if (!std::isfinite(s)) throw_usage(name + " weights sum past the double range (they are relative: scale them down)");
}
static void check_positive(const Range& r, const std::string& name, double max, double min = 0) {
  if (!(r.lo > 0) || r.lo > r.hi) throw_usage(name + " must satisfy 0 < lo <= hi");
  if (!(r.lo >= min)) {
    char b[96];
    std::snprintf(b, sizeof b, ": lo must be at least %g (got %g)", min, r.lo);
    throw_usage(name + b);
  }
  if (!(r.hi <= max)) {
    char b[96];  // %g: 1e300 was written out in 300 digits
    std::snprintf(b, sizeof b, ": hi must be at most %g (got %g)", max, r.hi);
    throw_usage(name + b);
  }
}

void validate(const PipelineConfig& cfg) {
  for (int o = 0; o < 2; ++o) {
    const OrderConfig& c = o == 0 ? cfg.first : cfg.second;
    const std::string sfx = o == 0 ? "" : "2";
    check_weights(c.kernel_prob, 6, "--kernel-prob" + sfx);
    check_prob(c.sinc_prob, "--sinc-prob" + sfx);
    check_positive(c.blur_sigma, "--blur-sigma" + sfx, kMaxRecordSigma, kMinRecordSigma);
    check_positive(c.betag, "--betag-range" + sfx, kMaxRecordBeta);
    check_positive(c.betap, "--betap-range" + sfx, kMaxRecordBeta);
    // BasicSR draws beta from [LO, 1] half the time and from [1, HI] the
    // other half: a range without 1 gave betas outside it (2,3 gave 1.4).
    for (const auto& [r, flag] : {std::pair<const Range*, const char*>{&c.betag, "--betag-range"}, {&c.betap, "--betap-range"}})
      if (r->lo > 1 || r->hi < 1)
        throw_usage(flag + sfx + " must contain 1 (beta is drawn from [LO, 1] or [1, HI], each half the time, as BasicSR does)");
    check_prob(c.blur_prob, o == 0 ? "--blur-prob" : "--second-blur-prob");
    check_weights(c.resize_prob, 3, "--resize-prob" + sfx);
    check_positive(c.resize_range, "--resize-range" + sfx, kMaxRecordResizeFactor);
    if (c.resize_range.lo > 1 || c.resize_range.hi < 1) throw_usage("--resize-range" + sfx + " must contain 1");
    check_prob(c.gaussian_noise_prob, "--gaussian-noise-prob" + sfx);
    if (!(c.noise_range.lo >= 0 && c.noise_range.lo <= c.noise_range.hi && c.noise_range.hi <= kMaxRecordNoiseSigma))
      throw_usage("--noise-range" + sfx + ": need 0 <= lo <= hi <= 1000");
    if (!(c.poisson_scale.lo >= 0 && c.poisson_scale.lo <= c.poisson_scale.hi && c.poisson_scale.hi <= kMaxRecordPoissonScale))
      throw_usage("--poisson-scale-range" + sfx + ": need 0 <= lo <= hi <= 1000");
    check_prob(c.gray_noise_prob, "--gray-noise-prob" + sfx);
    if (c.jpeg_range.lo < 1 || c.jpeg_range.hi > 100) throw_usage("--jpeg-range" + sfx + " must lie in [1, 100]");
  }
  check_prob(cfg.final_sinc_prob, "--final-sinc-prob");
  if (cfg.kernel_sizes.empty()) throw_usage("--kernel-sizes is empty");
  for (int k : cfg.kernel_sizes)
    if (k < 1 || k % 2 == 0 || k > 21) throw_usage("--kernel-sizes: sizes must be odd, 1..21 (got " + std::to_string(k) + ")");
  if (cfg.resize_modes.empty()) throw_usage("--resize-modes is empty");
  if (cfg.scale < 1) throw_usage("--scale must be a positive integer");
  for (int s : cfg.scale_choices)
    if (s < 1 || s > cfg.scale) throw_usage("scale choices must be 1.." + std::to_string(cfg.scale));
}

static nlohmann::ordered_json order_json(const OrderConfig& o) {
  auto r = [](const Range& x) { return nlohmann::ordered_json::array({x.lo, x.hi}); };
  return {{"kernel_prob", o.kernel_prob},         {"sinc_prob", o.sinc_prob},
          {"blur_sigma", r(o.blur_sigma)},        {"betag_range", r(o.betag)},
          {"betap_range", r(o.betap)},            {"blur_prob", o.blur_prob},
          {"resize_prob", o.resize_prob},         {"resize_range", r(o.resize_range)},
          {"gaussian_noise_prob", o.gaussian_noise_prob}, {"noise_range", r(o.noise_range)},
          {"poisson_scale_range", r(o.poisson_scale)},    {"gray_noise_prob", o.gray_noise_prob},
          {"jpeg_range", r(o.jpeg_range)}};
}

nlohmann::ordered_json config_to_json(const PipelineConfig& cfg) {
  nlohmann::ordered_json j;
  j["preset"] = cfg.preset;
  if (!cfg.named.name.empty()) {
    j["degradation"] = cfg.named.name;
    j["severity"] = cfg.named.severity;
    return j;
  }
  j["first_order"] = order_json(cfg.first);
  j["second_order"] = order_json(cfg.second);
  j["kernel_list"] = {"iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"};
  j["kernel_sizes"] = cfg.kernel_sizes;
  j["final_sinc_prob"] = cfg.final_sinc_prob;
  std::vector<std::string> modes;
  for (ResizeMode m : cfg.resize_modes) modes.push_back(resize_mode_name(m));
  j["resize_modes"] = modes;
  j["scale"] = cfg.scale;
  if (!cfg.scale_choices.empty()) j["scale_choices"] = cfg.scale_choices;
  if (cfg.glesam_final) j["glesam_final"] = true;
  j["lq_size"] = cfg.lq_at_hq_size ? "hq" : "native";
  j["upsample_mode"] = resize_mode_name(cfg.upsample_mode);
  j["usm"] = cfg.usm;
  j["disabled_stages"] = std::vector<std::string>(cfg.disabled.begin(), cfg.disabled.end());
  return j;
}

}  // namespace rass::degrade
