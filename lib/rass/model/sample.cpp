#include "rass/model/sample.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/folder_check.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/device.hpp"
#include "rass/model/torch_error.hpp"

namespace fs = std::filesystem;

namespace rass::model {

SampleModel load_sample_model(const std::string& dir, const std::string& device, const std::string& dtype) {
  SampleModel m;
  m.dir = dir;
  m.device = parse_device(device);
  m.dtype = parse_dtype(dtype);
  if (m.dtype == torch::kHalf && !m.device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution or matmul; use bf16 on CPU");
  m.vae_dtype = m.dtype == torch::kHalf ? torch::kFloat : m.dtype;
  require_folder(dir, "expected a diffusers SD folder");
  // The scheduler first: a config the sampler cannot follow is found before the weights are read.
  const std::string sched = dir + "/scheduler/scheduler_config.json";
  if (!file_exists(sched)) throw_bad_input(sched, "missing (the model folder needs scheduler/scheduler_config.json)");
  m.scheduler = nn::read_ddim_config(sched);

  const std::string ucfg_path = dir + "/unet/config.json";
  const nn::UNetConfig ucfg = read_unet_config(ucfg_path);
  const nn::VaeConfig vcfg = read_vae_config(dir + "/vae/config.json");
  const nn::ClipTextConfig ccfg = read_clip_text_config(dir + "/text_encoder/config.json");
  if (ucfg.cross_attention_dim != ccfg.hidden_size)
    throw_bad_input(ucfg_path, "cross_attention_dim " + std::to_string(ucfg.cross_attention_dim) +
                                   " differs from the text encoder's hidden_size " + std::to_string(ccfg.hidden_size));
  if (ucfg.in_channels != vcfg.latent_channels || ucfg.out_channels != vcfg.latent_channels)
    throw_bad_input(ucfg_path, "in/out_channels " + std::to_string(ucfg.in_channels) + "/" +
                                   std::to_string(ucfg.out_channels) + " differ from the VAE's latent_channels " +
                                   std::to_string(vcfg.latent_channels));
  m.vae_factor = int64_t(1) << (vcfg.block_out_channels.size() - 1);
  const nlohmann::ordered_json uj = read_json_file(ucfg_path);
  if (uj.contains("sample_size") && uj["sample_size"].is_number_integer())
    m.default_size = uj["sample_size"].get<int64_t>() * m.vae_factor;
  m.tokenizer = std::make_shared<text::ClipTokenizer>(text::ClipTokenizer::load(dir + "/tokenizer"));
  m.max_tokens = std::min<int64_t>(77, ccfg.max_position_embeddings);

  m.unet = for_config(ucfg_path, [&] { return nn::UNet2DCondition(ucfg); });
  load_component(*m.unet, dir + "/unet");
  m.vae = for_config(dir + "/vae/config.json", [&] { return nn::AutoencoderKL(vcfg); });
  load_component(*m.vae, dir + "/vae");
  m.text_encoder = for_config(dir + "/text_encoder/config.json", [&] { return nn::ClipTextModel(ccfg); });
  load_component(*m.text_encoder, dir + "/text_encoder", "", {"text_model.embeddings.position_ids"});
  check_finite_parameters(*m.unet, dir + "/unet");
  check_finite_parameters(*m.vae, dir + "/vae");
  check_finite_parameters(*m.text_encoder, dir + "/text_encoder");
  m.unet->eval();
  m.vae->eval();
  m.text_encoder->eval();
  m.unet->to(m.device, m.dtype);
  m.vae->to(m.device, m.vae_dtype);
  m.text_encoder->to(m.device, torch::kFloat);
  return m;
}

torch::Tensor encode_prompt(const SampleModel& m, const std::string& prompt) {
  c10::InferenceMode guard;
  // Padding to max_length and truncation, as the pipeline's tokenizer call.
  const std::vector<int> ids = m.tokenizer->encode_padded(prompt, int(m.max_tokens));
  std::vector<int64_t> wide(ids.begin(), ids.end());
  const torch::Tensor t = torch::tensor(wide, torch::kLong).view({1, int64_t(wide.size())}).to(m.device);
  return m.text_encoder.ptr()->forward(t).last_hidden_state;
}

SampleResult sample_image(const SampleModel& m, const SampleParams& p, int64_t index) {
  c10::InferenceMode guard;
  if (p.width <= 0 || p.height <= 0 || p.width % m.vae_factor || p.height % m.vae_factor)
    throw_usage("image size " + std::to_string(p.width) + "x" + std::to_string(p.height) +
                ": width and height must be positive multiples of " + std::to_string(m.vae_factor) +
                " (the VAE's downsampling)");
  if (!(p.eta >= 0) || !std::isfinite(p.eta)) throw_usage("--eta must be a finite number >= 0");
  if (!std::isfinite(p.guidance)) throw_usage("--guidance must be a finite number");
  const std::vector<int64_t> timesteps = nn::ddim_timesteps(m.scheduler, p.steps);
  const bool cfg = p.guidance > 1.0;  // the pipeline's do_classifier_free_guidance
  torch::Tensor context = encode_prompt(m, p.prompt);
  if (cfg) context = torch::cat({encode_prompt(m, p.negative_prompt), context}, 0);
  context = context.to(m.dtype);

  const int64_t C = m.unet->config.in_channels, h = p.height / m.vae_factor, w = p.width / m.vae_factor;
  // One generator per image: the draws depend on (seed, index) only.
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(p.seed, std::to_string(index), "sample"));
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  torch::Tensor latents;
  if (p.initial_latents.defined()) {
    if (p.initial_latents.sizes() != torch::IntArrayRef({1, C, h, w}))
      throw_usage("injected initial latents have the wrong shape");
    latents = p.initial_latents.to(torch::kFloat);
  } else {
    latents = at::randn({1, C, h, w}, gen, f32);
  }
  latents = latents.to(m.device);  // init_noise_sigma is 1 for DDIM
  for (size_t i = 0; i < timesteps.size(); ++i) {
    const int64_t t = timesteps[i];
    const torch::Tensor in = cfg ? torch::cat({latents, latents}, 0) : latents;
    const torch::Tensor tt = torch::full({in.size(0)}, t, torch::TensorOptions().dtype(torch::kLong).device(m.device));
    torch::Tensor out = m.unet.ptr()->forward(in.to(m.dtype), tt, context).to(torch::kFloat);
    if (cfg) {
      const auto parts = out.chunk(2, 0);
      out = parts[0] + p.guidance * (parts[1] - parts[0]);
    }
    torch::Tensor noise;
    if (p.eta > 0) {
      if (i < p.step_noise.size()) noise = p.step_noise[i].to(torch::kFloat);
      else noise = at::randn({1, C, h, w}, gen, f32);
      noise = noise.to(m.device);
    }
    latents = nn::ddim_step(m.scheduler, p.steps, out, t, latents, p.eta, noise);
    if (!torch::isfinite(latents).all().item<bool>())
      throw_runtime("sample " + std::to_string(index) + ": the latents became non-finite at timestep " + std::to_string(t) +
                    (m.dtype != torch::kFloat ? std::string(" (overflow): rerun with --dtype fp32")
                     : cfg && std::fabs(p.guidance) > 1000
                         ? std::string(" (a --guidance this large scales the prediction past what float32 holds)")
                         : std::string(" (check the model's weights)")));
    if (p.on_step) p.on_step(int64_t(i), latents.to(torch::kCPU));
  }
  SampleResult r;
  r.latents = latents.to(torch::kCPU);
  const double sf = m.vae->config.scaling_factor;
  torch::Tensor x = m.vae.ptr()->decode((latents / sf).to(m.vae_dtype)).to(torch::kFloat);
  x = (x / 2 + 0.5).clamp(0, 1).to(torch::kCPU);
  if (!torch::isfinite(x).all().item<bool>()) throw_runtime("sample " + std::to_string(index) + ": the VAE gave non-finite pixels");
  r.decoded = x.squeeze(0);
  // numpy_to_pil: (images * 255).round().astype("uint8"); round half to even as numpy.
  const torch::Tensor b = (r.decoded * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  r.image = Image(int(b.size(1)), int(b.size(0)), 3);
  std::memcpy(r.image.u8(), b.data_ptr<uint8_t>(), r.image.data.size());
  return r;
}

Image tile_grid(const std::vector<Image>& images, int cols) {
  if (images.empty() || cols < 1) throw_usage("a grid needs at least one image and one column");
  const int w = images[0].width, h = images[0].height;
  const int n = int(images.size()), c = std::min(cols, n), rows = (n + c - 1) / c;
  Image g(w * c, h * rows, 3);
  for (int k = 0; k < n; ++k) {
    const Image& im = images[size_t(k)];
    const int x0 = (k % c) * w, y0 = (k / c) * h;
    for (int y = 0; y < h; ++y)
      std::memcpy(g.u8() + (size_t(y0 + y) * size_t(g.width) + size_t(x0)) * 3, im.u8() + size_t(y) * size_t(w) * 3,
                  size_t(w) * 3);
  }
  return g;
}

}  // namespace rass::model
