#include "rass/model/restore.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/cpu_tensor_bytes.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/device.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/latent_tiles.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/attention_maps.hpp"
#include "rass/nn/group_norm.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/upsample_conv.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

RecordedForm read_recorded_form(const std::string& model_dir) {
  RecordedForm r;
  const std::string path = model_dir + "/rass.json";
  if (!file_exists(path)) return r;
  r.path = path;
  const json j = read_found_json(path);
  if (!j.is_object()) throw_bad_input(path, "is not a JSON object");
  auto text = [&](const char* field, std::initializer_list<const char*> allowed) -> std::optional<std::string> {
    if (!j.contains(field) || j[field].is_null()) return std::nullopt;
    if (!j[field].is_string()) throw_bad_input(path, std::string("field ") + field + " must be a string");
    const std::string v = j[field].get<std::string>();
    for (const char* a : allowed)
      if (v == a) return v;
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    throw_bad_input(path, std::string("field ") + field + " = '" + v + "' (expected " + list + ")");
  };
  r.method = text("method", {"osediff", "scr"});
  r.formula = text("formula", {"ddpm", "residual"});
  r.prompt_style = text("prompt_style", {"osediff", "rass"});
  if (j.contains("timestep") && !j["timestep"].is_null()) {
    if (!j["timestep"].is_number_integer()) throw_bad_input(path, "field timestep must be an integer");
    r.timestep = j["timestep"].get<int>();
  }
  if (j.contains("process_size") && !j["process_size"].is_null()) {
    if (!j["process_size"].is_number_integer() || j["process_size"].get<int64_t>() < 0 || j["process_size"].get<int64_t>() > 1 << 20)
      throw_bad_input(path, "field process_size must be an integer in 0..1048576");
    r.process_size = j["process_size"].get<int>();
  }
  return r;
}

namespace {

// Adds each file's adapters to the UNet; merges them unless asked not to.
void apply_loras(nn::UNet2DCondition& unet, const RestoreModelOptions& opt) {
  std::map<std::string, std::string> owner;  // adapter -> file
  int k = 0;
  for (const LoraSpec& spec : opt.loras) {
    // Adapter names are per model: a second file with the same names would
    // replace the first file's adapters (and unmerge them).
    auto no_shared_names = [&](const SafeTensorsFile& f) {
      for (const TensorView& t : f.tensors()) {
        std::string adapter;
        if (!nn::is_lora_parameter(t.name, &adapter)) continue;
        auto it = owner.find(adapter);
        if (it != owner.end() && it->second != spec.path)
          throw_usage("--lora " + spec.path + ": adapter '" + adapter + "' is also in " + it->second +
                      "; merge one of them first (rass-merge-lora) or rename its adapters");
      }
    };
    const LoraLoadReport r =
        load_lora_file(*unet, spec.path, spec.scale, k++, "UNet", opt.quiet ? "" : opt.prog, no_shared_names);
    for (const auto& [name, n] : r.adapters) {
      owner[name] = spec.path;
      if (!opt.quiet)
        std::fprintf(stderr, "%s: %s: adapter %s on %zu layers (scale %g)%s\n", opt.prog.c_str(), printable_message(spec.path).c_str(),
                     printable_message(name).c_str(), n, spec.scale, opt.merge ? ", merged" : "");
      if (opt.merge) {
        try {
          nn::merge_lora(*unet, name);  // an overflow is found here, before any image is computed
        } catch (const Error& e) {
          throw_bad_input(spec.path, e.what());
        }
      }
    }
  }
}

}  // namespace

RestoreModel::RestoreModel(const RestoreModelOptions& opt) : dir(opt.dir), loras(opt.loras) {
  nn::upsample_phases();  // a bad RASS_UPSAMPLE_PHASES is a usage error before the model loads
  nn::fused_group_norm_on();  // and a bad RASS_FUSED_NORM
  device = parse_device(opt.device);
  if (opt.timings && device.is_cpu()) count_cpu_tensor_bytes();  // --timings' tensor peak; before the weights load
  dtype = parse_dtype(opt.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution or matmul; use bf16 on CPU");
  vae_dtype = dtype == torch::kHalf ? torch::kFloat : dtype;
  require_folder(opt.dir, "--model takes a diffusers SD 2.x folder");
  recorded = read_recorded_form(opt.dir);

  // Scheduler first: a config this pipeline cannot follow is found before
  // the weights are read.
  const std::string sched = opt.dir + "/scheduler/scheduler_config.json";
  if (!file_exists(sched)) throw_bad_input(sched, "missing (the model folder needs scheduler/scheduler_config.json)");
  schedule = nn::read_ddpm_schedule(sched);
  const json sj = read_found_json(sched);
  const int64_t steps = int64_t(schedule.alphas_cumprod.size());
  if (recorded.timestep && (*recorded.timestep < 0 || *recorded.timestep >= steps))
    throw_bad_input(recorded.path, "field timestep = " + std::to_string(*recorded.timestep) + " is outside 0.." +
                                       std::to_string(steps - 1) + " (num_train_timesteps " + std::to_string(steps) +
                                       " in " + sched + ")");
  if (schedule.prediction_type != "epsilon")
    throw_bad_input(sched, "prediction_type '" + schedule.prediction_type +
                               "': the one-step formulas take an epsilon-predicting UNet (SD 2.1-base)");
  if (sj.value("thresholding", false)) throw_bad_input(sched, "thresholding true is not supported (SD 2.x has none)");
  // DDPMScheduler's own default is true; SD 2.1-base's config says false.
  clip_sample = sj.contains("clip_sample") ? sj["clip_sample"].get<bool>() : true;
  clip_sample_range = sj.value("clip_sample_range", 1.0);
  if (clip_sample && !opt.quiet)
    std::fprintf(stderr, "%s: %s: clip_sample is %s: the ddpm formula clamps x0 to [-%g, %g] as diffusers does "
                         "(SD 2.1-base says false)\n",
                 opt.prog.c_str(), printable_message(sched).c_str(), sj.contains("clip_sample") ? "true" : "not set (DDPMScheduler's default true)",
                 clip_sample_range, clip_sample_range);

  const nn::UNetConfig ucfg = read_unet_config(opt.dir + "/unet/config.json");
  const nn::VaeConfig vcfg = read_vae_config(opt.dir + "/vae/config.json");
  const nn::ClipTextConfig ccfg = read_clip_text_config(opt.dir + "/text_encoder/config.json");
  if (ucfg.cross_attention_dim != ccfg.hidden_size)
    throw_bad_input(opt.dir + "/unet/config.json", "cross_attention_dim " + std::to_string(ucfg.cross_attention_dim) +
                                                       " differs from the text encoder's hidden_size " +
                                                       std::to_string(ccfg.hidden_size));
  tokenizer = std::make_shared<text::ClipTokenizer>(text::ClipTokenizer::load(opt.dir + "/tokenizer"));
  max_tokens = std::min<int64_t>(77, ccfg.max_position_embeddings);
  vae_factor = int64_t(1) << (vcfg.block_out_channels.size() - 1);

  unet = for_config(opt.dir + "/unet/config.json", [&] { return nn::UNet2DCondition(ucfg); });
  load_component(*unet, opt.dir + "/unet");
  vae = for_config(opt.dir + "/vae/config.json", [&] { return nn::AutoencoderKL(vcfg); });
  load_component(*vae, opt.dir + "/vae");
  text_encoder = for_config(opt.dir + "/text_encoder/config.json", [&] { return nn::ClipTextModel(ccfg); });
  load_component(*text_encoder, opt.dir + "/text_encoder", "", {"text_model.embeddings.position_ids"});
  check_finite_parameters(*unet, opt.dir + "/unet");
  check_finite_parameters(*vae, opt.dir + "/vae");
  check_finite_parameters(*text_encoder, opt.dir + "/text_encoder");
  apply_loras(unet, opt);
  unet->eval();
  vae->eval();
  text_encoder->eval();
  unet->to(device, dtype);
  vae->to(device, vae_dtype);
  text_encoder->to(device, torch::kFloat);  // RASS runs the text encoder in fp32
  if (opt.channels_last) {
    to_channels_last(*unet);
    to_channels_last(*vae);
  }
  if (opt.cudnn_benchmark) set_cudnn_benchmark(true);  // process-wide: a model without it leaves it as it is
  graphs = std::make_shared<GraphCache>(opt.cuda_graphs);
  times = std::make_shared<StageTimes>(opt.timings, device);
}

torch::Tensor image_to_tensor(const Image& rgb) {
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(rgb.u8()), {rgb.height, rgb.width, 3}, torch::kUInt8);
  return t.permute({2, 0, 1}).to(torch::kFloat).div(255).unsqueeze(0).contiguous();
}

Image tensor_to_image(const torch::Tensor& x01) {
  // ToPILImage: pic.mul(255).byte() — truncation toward zero.
  const torch::Tensor b = x01.squeeze(0).mul(255).to(torch::kUInt8).permute({1, 2, 0}).contiguous().cpu();
  Image img(int(b.size(1)), int(b.size(0)), 3);
  std::memcpy(img.u8(), b.data_ptr<uint8_t>(), img.data.size());
  return img;
}

torch::Tensor aggregate_cross_attention(const std::vector<nn::CapturedAttention>& maps, int64_t latent_h,
                                        int64_t latent_w) {
  torch::Tensor sum;
  int64_t n = 0;
  for (const nn::CapturedAttention& m : maps) {
    torch::Tensor p = m.probs.to(torch::kCPU, torch::kFloat);  // [heads, q, tokens] (batch 1)
    const int64_t q = p.size(1);
    const auto [hh, ww] = nn::attention_map_size(latent_h, latent_w, q);
    if (hh == 0) throw_runtime("cross-attention map " + m.path + " has " + std::to_string(q) + " queries: no UNet level has that size");
    torch::Tensor a = p.mean(0).transpose(0, 1).reshape({1, p.size(2), hh, ww});
    if (hh != latent_h || ww != latent_w)
      a = torch::nn::functional::interpolate(a, torch::nn::functional::InterpolateFuncOptions()
                                                    .size(std::vector<int64_t>{latent_h, latent_w})
                                                    .mode(torch::kBilinear)
                                                    .align_corners(false));
    sum = sum.defined() ? sum + a : a;
    ++n;
  }
  if (n == 0) throw_runtime("the UNet has no cross-attention layers to capture");
  return (sum / double(n)).squeeze(0);
}

namespace {

// Advice for a non-finite result of a float32 run: no wider dtype exists, so
// the weights or the LoRA scales overflow (or hold NaN).
std::string weights_advice(const RestoreModel& m) {
  if (m.loras.empty()) return "the run is already float32; check the model's weights for NaN or huge values";
  std::string list;
  for (const LoraSpec& l : m.loras) {
    char scale[32];
    std::snprintf(scale, sizeof scale, "%g", l.scale);
    list += (list.empty() ? "" : ", ") + l.path + " (scale " + scale + ")";
  }
  return "the run is already float32; check the LoRA scale and weights of " + list +
         " (a large scale or a NaN/huge LoRA weight overflows), then the model's weights";
}

}  // namespace

TilesAt tiles_at(const RestoreModel& m, const RestoreParams& p, int w, int h) {
  if (w <= 0 || h <= 0) return {};
  const int64_t side = std::max(w, h);
  return {latent_tiles_apply(h / m.vae_factor, w / m.vae_factor, p.tile_size),
          vae_tiles_apply(side, p.vae_tiling.encoder_tile, p.vae_tiling.encoder_pad),
          vae_tiles_apply(side / m.vae_factor, p.vae_tiling.decoder_tile, p.vae_tiling.decoder_pad)};
}

PreparedRestore prepare_restore(const RestoreModel& m, const RestoreInput& ri) {
  PreparedRestore pr;
  RestoreResult& r = pr.r;
  const RestoreParams& p = ri.params;
  r.in_width = ri.lq->width;
  r.in_height = ri.lq->height;
  const int64_t steps = int64_t(m.schedule.alphas_cumprod.size());
  if (p.timestep < 0 || p.timestep >= steps)
    throw_usage("--timestep " + std::to_string(p.timestep) + ": expected 0.." + std::to_string(steps - 1));
  // --max-pixels bounds the size the networks run at too, checked before the
  // resize: the upscale and the smallest-side rule can make a thin input
  // hundreds of times larger (256x1 is processed at 32768x128).
  const auto [pw, ph] = processed_size(ri.lq->width, ri.lq->height, p.upscale, p.size_policy, p.process_size);
  check_pixel_limit(ri.name + ": its processed size", uint64_t(std::max(pw, 0)), uint64_t(std::max(ph, 0)));
  pr.in = prepare_input(to_rgb8(*ri.lq, ri.name), p.upscale, p.size_policy, p.process_size, ri.name);
  r.proc_width = pr.in.image.width;
  r.proc_height = pr.in.image.height;
  // Prompt: BOS, tokens cut to max_tokens - 2, EOS, padding (the tokenizer's truncation).
  r.prompt_tokens = m.tokenizer->encode(ri.prompt).size();
  r.truncated = int64_t(r.prompt_tokens) > m.max_tokens - 2;
  r.ids = m.tokenizer->encode_padded(ri.prompt, int(m.max_tokens));
  const TilesAt at = tiles_at(m, p, r.proc_width, r.proc_height);
  pr.tile = p.tile && at.latent;
  pr.vae_tile = p.vae_tile && at.vae();
  pr.x = image_to_tensor(pr.in.image) * 2 - 1;
  return pr;
}

namespace {

// The device part of a chunk, everything between the prompt embedding and
// the images: VAE encoder, the latent (its mean, or mean + std * noise), the
// UNet (whole or in latent tiles), x0, VAE decoder. Inputs on the model's
// device: context [n, T, D] in the UNet's dtype, x [n, 3, H, W] in [-1, 1]
// in the VAE's dtype, and for a sampled latent noise [n, C, h, w] float.
// Returns x0 [n, C, h, w] float, the images [n, 3, H, W] in [0, 1] float,
// and which rows of each are finite ([n] bool). Every row is decoded, finite
// or not (the decoder treats rows independently), so nothing here waits for
// the host: it is what --cuda-graphs records.
// `times` (--timings) splits it into stages; null where it is recorded as
// a CUDA graph (a stage's wait cannot be recorded).
std::vector<torch::Tensor> chunk_on_device(const RestoreModel& m, const RestoreParams& p, const std::vector<torch::Tensor>& in,
                                           nn::UNetCaptures* captures, const StageTimes* times) {
  const StageTimes& st = times ? *times : StageTimes::untimed();
  const torch::Tensor &context = in[0], &x = in[1];
  const nn::LatentDistribution dist = st.time("vae encoder", [&] {
    return p.vae_tile ? tiled_encode(*m.vae.ptr(), x, p.vae_tiling) : m.vae.ptr()->encode(x);
  });
  const double sf = m.vae->config.scaling_factor;
  const torch::Tensor z = p.vae_mode ? dist.mean.to(torch::kFloat) * sf
                                     : (dist.mean.to(torch::kFloat) + dist.std.to(torch::kFloat) * in[2]) * sf;
  const torch::Tensor t = torch::full({1}, double(p.timestep), torch::TensorOptions().device(m.device));
  auto unet_pass = [&](const torch::Tensor& zt) {
    return m.unet.ptr()->forward(zt.to(m.dtype), t, context, captures).to(torch::kFloat);
  };
  const torch::Tensor eps = st.time("unet", [&] {
    return p.tile ? tiled_latent_apply(z, p.tile_size, p.tile_overlap, unet_pass, p.tile_batch) : unet_pass(z);
  });
  torch::Tensor x0;
  if (p.formula == Formula::ddpm) {
    // float32 as the scheduler: alpha_prod_t ** 0.5, (1 - alpha_prod_t) ** 0.5,
    // worked out on the host (a device scalar made from host memory would make
    // the host wait here); the divisor is a device tensor made by a fill, so
    // CUDA divides truly (a host scalar divisor becomes a reciprocal multiply).
    const torch::Tensor a = torch::tensor(m.schedule.alpha_bar(p.timestep), torch::kFloat);
    const torch::Tensor root_a = torch::full({}, a.pow(0.5).item<float>(), z.options().dtype(torch::kFloat));
    x0 = (z - (1 - a).pow(0.5).item<float>() * eps) / root_a;
    if (m.clip_sample) x0 = x0.clamp(-m.clip_sample_range, m.clip_sample_range);
  } else {
    x0 = z - eps;
  }
  const torch::Tensor zd = x0.div(sf).to(m.vae_dtype);
  const torch::Tensor decoded = st.time("vae decoder", [&] {
    return (p.vae_tile ? tiled_decode(*m.vae.ptr(), zd, p.vae_tiling) : m.vae.ptr()->decode(zd)).to(torch::kFloat).clamp(-1, 1);
  });
  auto finite_rows = [](const torch::Tensor& v) { return torch::isfinite(v).flatten(1).all(1); };
  return {x0, decoded * 0.5 + 0.5, finite_rows(x0), finite_rows(decoded)};
}

// The batched stages (text encoder, then chunk_on_device) for `chunk`,
// inputs whose processed sizes and params agree; the per-image steps (crop,
// 8-bit, colour fix) after. The host waits once, for the results. A
// non-finite result fails its own image (errors[i]); any other exception
// leaves the chunk (the caller retries it image by image).
void run_chunk(const RestoreModel& m, const std::vector<RestoreInput>& inputs, std::vector<PreparedRestore>& prep,
               const std::vector<size_t>& chunk, std::vector<RestoreResult>& results,
               std::vector<std::exception_ptr>& errors, bool defer_image) {
  RestoreParams p = inputs[chunk[0]].params;  // the fields that batch together agree (see restore_many)
  p.tile = prep[chunk[0]].tile;                 // tiles only where they apply at this size
  p.vae_tile = prep[chunk[0]].vae_tile;
  const int64_t n = int64_t(chunk.size());
  std::vector<torch::Tensor> ids, xs;
  for (size_t i : chunk) {
    const std::vector<int64_t> wide(prep[i].r.ids.begin(), prep[i].r.ids.end());
    ids.push_back(torch::tensor(wide, torch::kLong).view({1, int64_t(wide.size())}));
    xs.push_back(prep[i].x);
  }
  const StageTimes& st = *m.times;
  // One prompt for the whole chunk (the usual batch job): its embedding at
  // batch 1, kept for the run (prompt_cache.hpp); mixed prompts run batched.
  bool one_prompt = true;
  for (size_t i : chunk) one_prompt = one_prompt && inputs[i].prompt == inputs[chunk[0]].prompt;
  std::vector<torch::Tensor> in{
      st.time("text encoder",
              [&] {
                if (!one_prompt) return m.text_encoder.ptr()->forward(torch::cat(ids)).last_hidden_state.to(m.dtype);
                const torch::Tensor one = m.prompt_cache->get(inputs[chunk[0]].prompt, m.device, [&] {
                  return m.text_encoder.ptr()->forward(ids[0]).last_hidden_state.to(m.dtype);
                });
                return n == 1 ? one : one.expand({n, -1, -1}).contiguous();
              }),
      st.time("upload", [&] { return host_to_device(torch::cat(xs), m.device, m.vae_dtype); })};
  if (!p.vae_mode) {
    // [C, h, w]: processed sizes are multiples of 8, so the VAE's factor divides them.
    const std::vector<int64_t> one{m.vae->config.latent_channels, in[1].size(2) / m.vae_factor, in[1].size(3) / m.vae_factor};
    std::vector<torch::Tensor> noises;
    for (size_t i : chunk) {
      torch::Tensor noise = inputs[i].params.noise;
      if (noise.defined()) {
        if (noise.dim() != 3 || noise.sizes() != c10::IntArrayRef(one)) throw_usage("injected noise has the wrong shape for this latent");
        noises.push_back(noise.to(torch::kFloat).unsqueeze(0));
      } else {
        // A generator of its own per item: results do not depend on order, batch, jobs or shard.
        torch::Generator gen =
            at::make_generator<at::CPUGeneratorImpl>(stream_seed(inputs[i].params.seed, inputs[i].params.key, "vae-sample"));
        noises.push_back(at::randn({1, one[0], one[1], one[2]}, gen, torch::TensorOptions().dtype(torch::kFloat)));
      }
    }
    in.push_back(st.time("upload", [&] { return host_to_device(torch::cat(noises), m.device, torch::kFloat); }));
  }
  nn::UNetCaptures captures;
  captures.cross_attention = p.attention;
  // Tiles (host-made blend weights), the tiled VAE (statistics exchanged
  // through the host) and attention maps (captured per call) run eagerly.
  const bool eager = p.tile || p.vae_tile || p.attention;
  // --cuda-graphs on CUDA: the chunk is one recorded piece of work (and one
  // stage; the first chunk of a shape also pays for its recording).
  const bool graph = !eager && m.graphs->records(m.device);
  const std::vector<torch::Tensor> dev =
      !graph ? chunk_on_device(m, p, in, p.attention ? &captures : nullptr, &st)
             : st.time("encoder-unet-decoder (--cuda-graphs)", [&] {
                 return m.graphs->run("restore chunk (timestep " + std::to_string(p.timestep) + ", " +
                                          (p.formula == Formula::ddpm ? "ddpm" : "residual") + ")",
                                      in, [&](const std::vector<torch::Tensor>& d) {
                                        return chunk_on_device(m, p, d, nullptr, nullptr);
                                      });
               });
  const std::vector<torch::Tensor> host = st.time("download", [&] { return device_to_host({dev[2], dev[3], dev[0], dev[1]}); });
  const torch::Tensor &x0_ok = host[0], &dec_ok = host[1], &latents = host[2], &decoded_host = host[3];
  const int64_t lh = dev[0].size(2), lw = dev[0].size(3);  // the latent's size
  std::vector<int64_t> ok;  // rows with a finite latent
  for (int64_t k = 0; k < n; ++k) {
    const size_t i = chunk[size_t(k)];
    if (!x0_ok[k].item<bool>()) {
      errors[i] = std::make_exception_ptr(Error(
          ExitCode::runtime, inputs[i].name + ": the UNet gave a non-finite latent (NaN or infinity) in " +
                                 std::string(c10::toString(m.dtype)) +
                                 (m.dtype == torch::kFloat ? ": " + weights_advice(m) : " (overflow): rerun with --dtype fp32")));
      continue;
    }
    ok.push_back(k);
    prep[i].r.latent = latents[k].clone();
    if (p.attention) {
      // probs [n * heads, queries, tokens]: this image's heads.
      std::vector<nn::CapturedAttention> mine;
      for (const nn::CapturedAttention& c : captures.attention)
        mine.push_back({c.path, c.probs.view({n, -1, c.probs.size(1), c.probs.size(2)})[k]});
      prep[i].r.attention = aggregate_cross_attention(mine, lh, lw);
    }
  }
  captures.attention.clear();
  using torch::indexing::Slice;
  for (const int64_t o : ok) {
    const size_t i = chunk[size_t(o)];
    if (!dec_ok[o].item<bool>()) {
      errors[i] = std::make_exception_ptr(Error(
          ExitCode::runtime, inputs[i].name + ": the VAE decoder gave non-finite pixels (NaN or infinity) in " +
                                 std::string(c10::toString(m.vae_dtype)) + " from a finite latent" +
                                 (m.vae_dtype == torch::kFloat ? ": " + weights_advice(m) : ": rerun with --dtype fp32")));
      continue;
    }
    try {
      PreparedRestore& pr = prep[i];
      pr.r.decoded =
          decoded_host.index({Slice(o, o + 1), Slice(), Slice(0, pr.in.out_height), Slice(0, pr.in.out_width)}).squeeze(0);
      pr.r.image_pending = true;
      pr.r.color = inputs[i].params.color;
      if (pr.r.color != ColorFix::none) pr.r.color_reference = std::move(pr.in.reference);
      if (!defer_image) st.time_host("post (8-bit, colour fix)", [&] { finish_image(pr.r); });
      results[i] = std::move(pr.r);
      pr = PreparedRestore();
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
}

}  // namespace

void finish_image(RestoreResult& r) {
  if (!r.image_pending) return;
  // The reference's colour fix works on the 8-bit image it made (ToPILImage, then ToTensor).
  Image out = tensor_to_image(r.decoded.unsqueeze(0));
  if (r.color != ColorFix::none) out = tensor_to_image(color_fix(r.color, image_to_tensor(out), image_to_tensor(r.color_reference)));
  r.image = std::move(out);
  r.image_pending = false;
  r.color_reference = Image();
}

std::vector<RestoreResult> restore_many(const RestoreModel& m, const std::vector<RestoreInput>& inputs, int batch,
                                        std::vector<std::exception_ptr>& errors, bool defer_image) {
  c10::InferenceMode guard;
  if (batch < 1) throw_usage("--batch must be at least 1, got " + std::to_string(batch));
  errors.assign(inputs.size(), nullptr);
  std::vector<RestoreResult> results(inputs.size());
  std::vector<PreparedRestore> prep(inputs.size());
  // Inputs batch together when their processed sizes and every parameter of
  // the batched stages agree; tiled ones run alone (their tiles are the batch).
  using Key = std::tuple<int, int, int, int, bool, bool, bool, size_t>;
  std::map<Key, std::vector<size_t>> groups;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      prep[i] = inputs[i].prepared ? std::move(*inputs[i].prepared)
                                   : m.times->time_host("prepare (size, tokens)", [&] { return prepare_restore(m, inputs[i]); });
      const RestoreParams& p = inputs[i].params;
      const bool alone = prep[i].tile || prep[i].vae_tile;
      groups[{prep[i].r.proc_height, prep[i].r.proc_width, p.timestep, int(p.formula), p.vae_mode, p.attention,
              p.noise.defined(), alone ? i + 1 : 0}]
          .push_back(i);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  // A chunk that fails (out of memory, one image's injected noise) runs again
  // image by image, so the error goes to the image that caused it.
  for (const auto& [key, members] : groups)
    for (const std::vector<size_t>& chunk : chunks(members, size_t(batch)))
      run_or_retry(
          chunk, [&] { run_chunk(m, inputs, prep, chunk, results, errors, defer_image); },
          [&](size_t i) {
            if (!errors[i] && !results[i].decoded.defined()) run_chunk(m, inputs, prep, {i}, results, errors, defer_image);
          },
          [&](size_t i, std::exception_ptr e) { errors[i] = e; });
  return results;
}

RestoreResult restore(const RestoreModel& m, const Image& lq, const std::string& prompt, const RestoreParams& p,
                      const std::string& name) {
  std::vector<std::exception_ptr> errors;
  std::vector<RestoreResult> r = restore_many(m, {RestoreInput{&lq, prompt, p, name}}, 1, errors);
  if (errors[0]) std::rethrow_exception(errors[0]);
  return std::move(r[0]);
}

}  // namespace rass::model
