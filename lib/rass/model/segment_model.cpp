#include "rass/model/segment_model.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/class_names.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/cpu_tensor_bytes.hpp"
#include "rass/model/device.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/group_norm.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/upsample_conv.hpp"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace rass::model {

namespace {

std::vector<int64_t> int_list(const ojson& j, const char* key, const std::string& path) {
  if (!j.contains(key) || !j[key].is_array() || j[key].empty())
    throw_bad_input(path, std::string("feature_projection.") + key + " must be a non-empty list of integers");
  std::vector<int64_t> v;
  for (const auto& e : j[key]) {
    if (!e.is_number_integer() || e.get<int64_t>() < 1)
      throw_bad_input(path, std::string("feature_projection.") + key + " must hold positive integers");
    v.push_back(e.get<int64_t>());
  }
  return v;
}

int positive(const ojson& j, const char* key, int fallback, const std::string& path, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1 || j[key].get<int64_t>() > (1 << 20))
    throw_bad_input(path, where + key + " must be a positive integer");
  return j[key].get<int>();
}

}  // namespace

SegmentFolderConfig read_segment_config(const std::string& dir) {
  SegmentFolderConfig c;
  c.path = dir + "/segment.json";
  if (!file_exists(c.path))
    throw_bad_input(dir, "is not a segmentation model folder (no segment.json; scripts/convert_rass.py or "
                         "rass-model init --preset tiny-seg write one)");
  const ojson j = read_found_json(c.path, /*unique_keys=*/true);
  if (!j.is_object()) throw_bad_input(c.path, "is not a JSON object");
  const std::string arch = j.value("architecture", std::string());
  if (arch != "rass")
    throw_bad_input(c.path, "architecture '" + arch + "': this tool runs the RAS model (\"rass\") only");
  if (!j.contains("feature_projection") || !j["feature_projection"].is_object())
    throw_bad_input(c.path, "no feature_projection object");
  const ojson& fp = j["feature_projection"];
  c.projection.feature_dims = int_list(fp, "feature_dims", c.path);
  c.projection.feature_strides = int_list(fp, "feature_strides", c.path);
  if (c.projection.feature_dims.size() != c.projection.feature_strides.size())
    throw_bad_input(c.path, "feature_projection.feature_dims and feature_strides differ in length");
  c.projection.projection_dim = positive(fp, "projection_dim", 512, c.path, "feature_projection.");
  if (c.projection.projection_dim % 128)
    throw_bad_input(c.path, "feature_projection.projection_dim " + std::to_string(c.projection.projection_dim) +
                                " must be a multiple of 128 (its quarter, the bottleneck, is normalised by GroupNorm(32))");
  if (fp.contains("out_features")) {
    c.projection.out_features.clear();
    for (const auto& e : fp["out_features"]) {
      if (!e.is_string()) throw_bad_input(c.path, "feature_projection.out_features must be a list of names");
      c.projection.out_features.push_back(e.get<std::string>());
    }
  }
  if (!j.contains("head") || !j["head"].is_object()) throw_bad_input(c.path, "no head object");
  c.head = nn::read_mask_former_head_config(nlohmann::json::parse(j["head"].dump()), c.path + ": head");
  const auto levels = nn::projection_levels(c.projection);
  if (levels.size() != c.head.in_channels.size())
    throw_bad_input(c.path, "the projection gives " + std::to_string(levels.size()) + " levels, the head takes " +
                                std::to_string(c.head.in_channels.size()));
  for (size_t i = 0; i < levels.size(); ++i)
    if (c.head.in_channels[i] != c.projection.projection_dim || c.head.in_strides[i] != levels[i].stride)
      throw_bad_input(c.path, "head input " + std::to_string(i) + " (" + std::to_string(c.head.in_channels[i]) +
                                  " channels, stride " + std::to_string(c.head.in_strides[i]) + ") differs from the projection's " +
                                  levels[i].name + " (" + std::to_string(c.projection.projection_dim) + ", stride " +
                                  std::to_string(levels[i].stride) + ")");
  if (j.contains("classes")) {
    const ojson& cl = j["classes"];
    if (cl.is_string()) {
      const auto* names = metrics::builtin_class_names(cl.get<std::string>());
      if (!names) throw_bad_input(c.path, "classes '" + cl.get<std::string>() + "' is not a built-in set");
      c.classes = *names;
    } else if (cl.is_array()) {
      for (const auto& e : cl) {
        if (!e.is_string()) throw_bad_input(c.path, "classes must be a built-in set name or a list of names");
        c.classes.push_back(e.get<std::string>());
      }
    } else {
      throw_bad_input(c.path, "classes must be a built-in set name or a list of names");
    }
    if (!c.classes.empty() && int(c.classes.size()) != c.head.num_classes)
      throw_bad_input(c.path, std::to_string(c.classes.size()) + " class names for a head of " +
                                  std::to_string(c.head.num_classes) + " classes");
  }
  if (j.contains("timestep")) {
    if (!j["timestep"].is_number_integer() || j["timestep"].get<int>() < 0 || j["timestep"].get<int>() > 999)
      throw_bad_input(c.path, "timestep must be an integer 0..999");
    c.timestep = j["timestep"].get<int>();
  }
  if (j.contains("prompt_style")) {
    c.prompt_style = j["prompt_style"].is_string() ? j["prompt_style"].get<std::string>() : "";
    if (c.prompt_style != "rass" && c.prompt_style != "osediff")
      throw_bad_input(c.path, "prompt_style must be \"rass\" or \"osediff\"");
  }
  if (j.contains("input")) {
    const ojson& in = j["input"];
    if (!in.is_object()) throw_bad_input(c.path, "input must be an object");
    c.min_size_test = positive(in, "min_size_test", c.min_size_test, c.path, "input.");
    c.max_size_test = positive(in, "max_size_test", c.max_size_test, c.path, "input.");
    c.size_divisibility = positive(in, "size_divisibility", c.size_divisibility, c.path, "input.");
    // Released: 32. Each side is padded up to a multiple: 1000000 asked for
    // terabytes, named as the image's out of memory.
    if (c.size_divisibility > 1024) throw_bad_input(c.path, "input.size_divisibility must be at most 1024");
  }
  return c;
}

int SegmentFolderConfig::coarsest_stride() const {
  int64_t s = 1;
  for (const auto& lv : nn::projection_levels(projection)) s = std::max(s, lv.stride);
  return int(s);
}

SegHeadsImpl::SegHeadsImpl(const nn::FeatureProjectionConfig& p, const nn::MaskFormerHeadConfig& h) {
  projection = nn::FeatureProjection(p);
  // The projection's own ModuleList is registered here under its released
  // name, so keys read feature_projections.<i>.0.* as in rass.pth.
  register_module("feature_projections", projection->feature_projections);
  sem_seg_head = register_module("sem_seg_head", nn::MaskFormerHead(h));
}

SegmentModel::SegmentModel(const SegmentModelOptions& opt) : backbone(opt.backbone), dir(opt.dir) {
  nn::upsample_phases();  // a bad RASS_UPSAMPLE_PHASES is a usage error before the model loads
  nn::fused_group_norm_on();  // and a bad RASS_FUSED_NORM
  device = parse_device(opt.device);
  if (opt.timings && device.is_cpu()) count_cpu_tensor_bytes();  // --timings' tensor peak; before the weights load
  dtype = parse_dtype(opt.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution or matmul; use bf16 on CPU");
  vae_dtype = dtype == torch::kHalf ? torch::kFloat : dtype;
  head_dtype = dtype == torch::kBFloat16 && device.is_cpu() ? torch::kFloat : dtype;
  std::error_code ec;
  require_folder(opt.dir, "--model takes a segmentation model folder");
  config = read_segment_config(opt.dir);

  const std::string unet_dir = opt.dir + (backbone == "plain" ? "/unet_plain" : "/unet");
  if (backbone == "plain" && !fs::is_directory(unet_dir, ec))
    throw_bad_input(opt.dir, "has no unet_plain/ (the SD UNet without SCR that --backbone plain runs; "
                             "scripts/convert_rass.py links it from the SD 2.1-base folder)");
  const nn::UNetConfig ucfg = read_unet_config(unet_dir + "/config.json");
  const nn::VaeConfig vcfg = read_vae_config(opt.dir + "/vae/config.json");
  const nn::ClipTextConfig ccfg = read_clip_text_config(opt.dir + "/text_encoder/config.json");
  if (ucfg.cross_attention_dim != ccfg.hidden_size)
    throw_bad_input(unet_dir + "/config.json", "cross_attention_dim " + std::to_string(ucfg.cross_attention_dim) +
                                                   " differs from the text encoder's hidden_size " + std::to_string(ccfg.hidden_size));
  // The taps' channels must be what the projection was built for.
  if (vcfg.block_out_channels.size() < 4)
    throw_bad_input(opt.dir + "/vae/config.json", "the VAE encoder needs 4 down blocks (RAS taps down_blocks[1] and [3])");
  std::vector<int64_t> tap_dims{vcfg.block_out_channels[1], vcfg.block_out_channels[3]};
  for (auto it = ucfg.block_out_channels.rbegin(); it != ucfg.block_out_channels.rend(); ++it) tap_dims.push_back(*it);
  if (tap_dims != config.projection.feature_dims) {
    auto str = [](const std::vector<int64_t>& v) {
      std::string s;
      for (int64_t x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
      return "[" + s + "]";
    };
    throw_bad_input(config.path, "feature_projection.feature_dims " + str(config.projection.feature_dims) +
                                     " differ from the backbone's taps " + str(tap_dims) +
                                     " (VAE down_blocks[1], [3], then the UNet's up blocks)");
  }
  tokenizer = std::make_shared<text::ClipTokenizer>(text::ClipTokenizer::load(opt.dir + "/tokenizer"));
  max_tokens = std::min<int64_t>(77, ccfg.max_position_embeddings);
  vae_factor = int64_t(1) << (vcfg.block_out_channels.size() - 1);

  unet = for_config(unet_dir + "/config.json", [&] { return nn::UNet2DCondition(ucfg); });
  load_component(*unet, unet_dir);
  check_finite_parameters(*unet, unet_dir);
  const std::string lora = opt.dir + "/seg_lora.safetensors";
  if (file_exists(lora)) {
    const LoraLoadReport r = load_lora_file(*unet, lora, 1.0, 0, "UNet", opt.quiet ? "" : opt.prog);
    for (const auto& [name, n] : r.adapters) {
      seg_lora_adapters.push_back(name);
      if (opt.merge_seg_lora) nn::merge_lora(*unet, name);
    }
  }
  vae = for_config(opt.dir + "/vae/config.json", [&] { return nn::AutoencoderKL(vcfg); });
  load_component(*vae, opt.dir + "/vae");
  text_encoder = for_config(opt.dir + "/text_encoder/config.json", [&] { return nn::ClipTextModel(ccfg); });
  load_component(*text_encoder, opt.dir + "/text_encoder", "", {"text_model.embeddings.position_ids"});
  check_finite_parameters(*vae, opt.dir + "/vae");
  check_finite_parameters(*text_encoder, opt.dir + "/text_encoder");
  heads = for_config(config.path, [&] { return SegHeads(config.projection, config.head); });
  const std::string weights = opt.dir + "/seg_head.safetensors";
  if (!file_exists(weights)) throw_bad_input(weights, "missing (the projection and head weights)");
  {
    const auto f = SafeTensorsFile::open(weights);
    load_state_dict(*heads, *f);
  }
  // A NaN in the head (a few MB) would fail every item one by one as
  // "non-finite predictions" (exit 1) with no file named; found here, the file
  // and tensor are named before any work, as the LoRA loader does.
  check_finite_parameters(*heads, weights);
  unet->eval();
  vae->eval();
  text_encoder->eval();
  heads->eval();
  unet->to(device, dtype);
  vae->to(device, vae_dtype);
  text_encoder->to(device, torch::kFloat);
  heads->to(device, head_dtype);
  if (opt.channels_last) {
    to_channels_last(*unet);
    to_channels_last(*vae);
    to_channels_last(*heads);
  }
  if (opt.cudnn_benchmark) set_cudnn_benchmark(true);  // process-wide: a model without it leaves it as it is
  graphs = std::make_shared<GraphCache>(opt.cuda_graphs);
  times = std::make_shared<StageTimes>(opt.timings, device);
}

torch::Tensor SegmentModel::encode_prompt(const std::string& prompt, std::vector<int>* ids_out, size_t* tokens) const {
  if (tokens) *tokens = tokenizer->encode(prompt).size();
  const std::vector<int> ids = tokenizer->encode_padded(prompt, int(max_tokens));
  if (ids_out) *ids_out = ids;
  std::vector<int64_t> wide(ids.begin(), ids.end());
  // Host ids: the text encoder checks them there and sends them up without a wait.
  // Batch 1, kept for the run: items sharing a prompt share its embedding (prompt_cache.hpp).
  return prompt_cache->get(prompt, device, [&] {
    return text_encoder.ptr()->forward(torch::tensor(wide, torch::kLong).view({1, int64_t(wide.size())})).last_hidden_state;
  });
}

std::vector<torch::Tensor> SegmentModel::crop_features(const torch::Tensor& x, const torch::Tensor& context,
                                                       const torch::Tensor& noise, const torch::Tensor& latent) const {
  // Everything the device computes from here is one graph's work (--cuda-graphs):
  // inputs x, context and then noise or latent, all on the device.
  const StageTimes& st = *times;
  const std::vector<torch::Tensor> in = st.time("upload", [&] {
    std::vector<torch::Tensor> v{host_to_device(x, device, vae_dtype), context.to(device, dtype)};
    if (latent.defined()) v.push_back(host_to_device(latent, device, torch::kFloat));
    else if (noise.defined()) v.push_back(host_to_device(noise, device, torch::kFloat));
    return v;
  });
  const std::string key = latent.defined() ? "window backbone (latent)" : noise.defined() ? "window backbone (sampled)"
                                                                                          : "window backbone (mean)";
  // --timings: stages inside the work unless it is recorded (a wait cannot be).
  const bool recorded = graphs->records(device);
  const StageTimes& inner = recorded ? StageTimes::untimed() : st;
  auto backbone = [&](const std::vector<torch::Tensor>& d) {
    std::vector<torch::Tensor> down;
    const nn::LatentDistribution dist = inner.time("vae encoder", [&] { return vae.ptr()->encode(d[0], &down); });
    torch::Tensor z;
    if (latent.defined()) z = d[2];
    else if (noise.defined()) z = (dist.mean.to(torch::kFloat) + dist.std.to(torch::kFloat) * d[2]) * vae->config.scaling_factor;
    else z = dist.mean.to(torch::kFloat) * vae->config.scaling_factor;
    nn::UNetCaptures cap;
    cap.up_blocks = true;
    const torch::Tensor t = torch::full({1}, double(config.timestep), torch::TensorOptions().device(device));
    inner.time("unet", [&] { unet.ptr()->forward(z.to(dtype), t, d[1], &cap); });
    return inner.time("projection", [&] {
      std::vector<torch::Tensor> taps;
      for (size_t i : vae_taps) taps.push_back(down.at(i).to(head_dtype));
      for (const torch::Tensor& u : cap.up_block_outputs) taps.push_back(u.to(head_dtype));
      return heads.ptr()->projection.ptr()->forward(taps, d[0].size(2), d[0].size(3));
    });
  };
  if (!recorded) return backbone(in);
  return st.time("backbone (--cuda-graphs)", [&] { return graphs->run(key, in, backbone); });
}

nn::MaskFormerOutput SegmentModel::head(const std::vector<torch::Tensor>& features) const {
  if (!graphs->records(device)) return times->time("head", [&] { return heads.ptr()->sem_seg_head.ptr()->forward(features); });
  // Under a graph: the final predictions only (not the deep-supervision ones).
  const std::vector<torch::Tensor> o = times->time("head (--cuda-graphs)", [&] {
    return graphs->run("head", features, [&](const std::vector<torch::Tensor>& f) {
      const nn::MaskFormerOutput r = heads.ptr()->sem_seg_head.ptr()->forward(f);
      return std::vector<torch::Tensor>{r.pred_logits, r.pred_masks};
    });
  });
  nn::MaskFormerOutput out;
  out.pred_logits = o[0];
  out.pred_masks = o[1];
  return out;
}

}  // namespace rass::model
