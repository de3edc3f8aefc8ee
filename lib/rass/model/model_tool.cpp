#include "rass/model/model_tool.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/signals.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/device.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/model/model_init.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/sample_tool.hpp"
#include "rass/model/tensor_npy.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/clip_text.hpp"
#include "rass/nn/threads.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"
#include "rass/text/clip_tokenizer.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

const char* kComponents[] = {"unet", "vae", "text_encoder", "tokenizer", "scheduler"};

std::vector<std::string> weight_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

json summarize_file(const std::string& path) {
  auto f = SafeTensorsFile::open(path);
  std::map<std::string, int64_t> by_dtype;
  int64_t params = 0, lora = 0;
  std::set<std::string> adapters;
  static const std::regex peft(R"(\.lora_[AB](?:\.([^.]+))?\.weight$)");
  for (const TensorView& t : f->tensors()) {
    params += t.numel();
    by_dtype[dtype_name(t.dtype)] += t.numel();
    std::smatch m;
    if (std::regex_search(t.name, m, peft)) {
      ++lora;
      adapters.insert(m[1].matched ? m[1].str() : "default");
    } else if (t.name.find(".lora.down.") != std::string::npos || t.name.find(".lora.up.") != std::string::npos) {
      ++lora;
      adapters.insert("default (legacy diffusers names)");
    }
  }
  json j = {{"file", path}, {"tensors", f->tensors().size()}, {"parameters", params}, {"dtypes", by_dtype}};
  if (lora) j["lora"] = {{"tensors", lora}, {"adapters", adapters}};
  if (!f->metadata().empty()) j["metadata"] = f->metadata();
  return j;
}

int info(const ModelJob& a, bool as_json) {
  json out;
  std::error_code ec;
  if (fs::is_directory(a.path, ec)) {
    out["folder"] = a.path;
    for (const char* comp : kComponents) {
      const std::string dir = a.path + "/" + comp;
      if (!fs::is_directory(dir, ec)) continue;
      json c = json::object();
      // The scheduler's config has its own name in diffusers folders.
      const std::string cfg = dir + (std::string(comp) == "scheduler" ? "/scheduler_config.json" : "/config.json");
      if (file_exists(cfg)) {
        const json j = read_found_json(cfg);
        c["class"] = j.value("_class_name", j.contains("architectures") && j["architectures"].is_array()
                                                 ? j["architectures"][0].get<std::string>()
                                                 : std::string());
        c["config"] = j;
      }
      for (const auto& w : weight_files(dir)) c["weights"].push_back(summarize_file(w));
      if (std::string(comp) == "tokenizer")
        c["files"] = {file_exists(dir + "/vocab.json") ? "vocab.json" : "", file_exists(dir + "/merges.txt") ? "merges.txt" : ""};
      // An empty component folder was reported as one (exit 0).
      if (c.empty() || (c.size() == 1 && c.contains("files") && c["files"] == json({"", ""})))
        throw_bad_input(dir, "holds none of config.json, weight files (*.safetensors, *.bin), vocab.json or merges.txt: "
                             "an empty component");
      out["components"][comp] = c;
    }
    if (!out.contains("components")) throw_bad_input(a.path, "no diffusers components (unet/, vae/, text_encoder/, ...) found");
  } else {
    out = summarize_file(a.path);
  }
  if (as_json) {
    std::printf("%s\n", json_text(out, 2).c_str());
    return 0;
  }
  auto print_weights = [](const json& w, const std::string& indent) {
    std::printf("%s%s: %lld tensors, %.2f M parameters", indent.c_str(), w["file"].get<std::string>().c_str(),
                (long long)w["tensors"].get<int64_t>(), w["parameters"].get<int64_t>() / 1e6);
    for (auto& [dt, n] : w["dtypes"].items()) std::printf(", %s", dt.c_str());
    if (w.contains("lora")) {
      std::printf(", LoRA adapters:");
      for (const auto& ad : w["lora"]["adapters"]) std::printf(" %s", ad.get<std::string>().c_str());
    }
    std::printf("\n");
  };
  if (out.contains("components")) {
    for (auto& [name, c] : out["components"].items()) {
      std::printf("%s: %s\n", name.c_str(), c.value("class", std::string("")).c_str());
      if (name == "unet" && c.contains("config")) {
        const json& cf = c["config"];
        std::printf("  block_out_channels %s, attention_head_dim %s, cross_attention_dim %s, linear projection %s\n",
                    cf.value("block_out_channels", json()).dump().c_str(), cf.value("attention_head_dim", json()).dump().c_str(),
                    cf.value("cross_attention_dim", json()).dump().c_str(), cf.value("use_linear_projection", json()).dump().c_str());
      }
      if (c.contains("weights"))
        for (const auto& w : c["weights"]) print_weights(w, "  ");
    }
  } else {
    print_weights(out, "");
  }
  return 0;
}

// Token ids: an integer .npy (int64 or int32, as numpy and transformers write them).
torch::Tensor npy_ids(const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.dtype != DType::i64 && a.dtype != DType::i32)
    throw_bad_input(path, std::string("token ids must be int64 or int32, not ") + dtype_name(a.dtype));
  std::vector<int64_t> shape(a.shape.begin(), a.shape.end());
  return torch::from_blob(a.data.data(), shape, torch_dtype(a.dtype)).clone().to(torch::kLong);
}

// LoRA files: PEFT's save_pretrained writes adapter_model.safetensors with
// the alpha in adapter_config.json beside it and keys under
// "base_model.model."; diffusers pipeline files put UNet keys under "unet.".
void apply_loras(torch::nn::Module& m, const std::vector<LoraSpec>& loras, bool quiet) {
  int k = 0;
  for (const LoraSpec& spec : loras) {
    const LoraLoadReport r = load_lora_file(m, spec.path, spec.scale, k++, "model", quiet ? "" : "rass-model");
    if (!quiet)
      for (auto& [name, n] : r.adapters)
        std::fprintf(stderr, "rass-model: %s: adapter %s on %zu layers (scale %g)\n", printable_message(spec.path).c_str(), printable_message(name).c_str(), n, spec.scale);
  }
}

// The prompt as 77 padded token ids [1, 77] with the folder's tokenizer/.
// An empty prompt is the unconditional one: BOS, EOS, padding.
torch::Tensor prompt_ids(const ModelJob& a) {
  const text::ClipTokenizer tok = text::ClipTokenizer::load(a.path + "/tokenizer");
  std::vector<int> ids = tok.encode_padded(a.prompt, 77);
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kLong).view({1, int64_t(wide.size())});
}

// Input checks against the component's config, before anything runs: the
// message names the file, the shape it has and the one expected.
void expect_shape(const std::string& file, const torch::Tensor& t, const std::vector<int64_t>& want,
                  const std::string& layout) {
  // want: -1 = any positive size
  bool ok = t.dim() == int64_t(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i)
    ok = t.size(int64_t(i)) > 0 && (want[i] < 0 || t.size(int64_t(i)) == want[i]);
  if (ok) return;
  std::string w = "[";
  for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + (want[i] < 0 ? std::string(1, layout[i]) : std::to_string(want[i]));
  throw_bad_input(file, "shape " + shape_str(t.sizes()) + " does not fit: expected " + w + "] (" + layout +
                            ", every size at least 1)");
}

void same_batch(const std::string& f1, const torch::Tensor& a, const std::string& f2, const torch::Tensor& b) {
  if (a.size(0) != b.size(0))
    throw_bad_input(f2, "batch size " + std::to_string(b.size(0)) + " differs from the " + std::to_string(a.size(0)) +
                            " of " + f1 + " (context and sample must have the same B)");
}

// Before any work: no output of run, convert or sample over or inside an
// input (the model folder with its files by inode, or the model file, the
// .npy inputs, LoRA files, stdout's file for -o -; exit 2). A --split output
// folder is checked file by file (it may hold the input).
void guard_outputs(const ModelJob& a) {
  std::vector<std::string> loras;
  for (const LoraSpec& l : a.loras) loras.push_back(l.path);
  RunFiles files(a.path, loras, {a.sample, a.context, a.input_ids});
  files.check_output_dir(a.out_dir, "-O", false);
  if (!a.split) return files.check_output_file(a.output, "-o");
  for (const char* f : {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                        "text_encoder/model.safetensors"}) {
    files.check_output_file(path_join(a.output, f), "-o");
    // A folder may hold the configs already (a merged file has none), not
    // weights: splitting into a model folder replaced its weights and left
    // configs of another shape beside them.
    std::error_code ec;
    if (fs::exists(path_join(a.output, f), ec))
      throw_usage("-o " + a.output + " already holds " + f + "; --split writes weights into a folder without them "
                  "(its configs may be there): remove them or give another folder");
  }
}

// A float .npy input; NaN or infinity is refused (exit 3) rather than
// carried into an output of NaN with exit 0.
torch::Tensor finite_input(const std::string& path) {
  torch::Tensor t = read_npy_float(path);
  if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>())
    throw_bad_input(path, "holds NaN or infinite values");
  return t;
}

// Inputs a component does not read are refused (exit 2), never ignored: a
// --lora given to the text encoder ran it without the LoRA, exit 0.
void check_run_inputs(const ModelJob& a) {
  const std::string& c = a.component;
  const bool unet = c == "unet", vae = c == "vae-encode" || c == "vae-decode", text = c == "text-encoder";
  auto refuse = [&](bool given, bool used, const char* flag, const char* who) {
    if (given && !used) throw_usage(std::string(flag) + " is not read by --component " + c + " (" + who + ")");
  };
  refuse(!a.loras.empty(), unet || vae, "--lora", "LoRAs apply to unet, vae-encode and vae-decode");
  refuse(!a.sample.empty(), unet || vae, "--sample", "the input of unet, vae-encode and vae-decode");
  refuse(!a.context.empty(), unet, "--context", "the UNet's text context");
  refuse(!a.input_ids.empty(), text, "--input-ids", "the text encoder's token ids");
  refuse(a.has_prompt, text || c == "tokenize", "--prompt", "the input of tokenize and text-encoder");
}

int run(const ModelJob& a, bool quiet) {
  check_run_inputs(a);
  guard_outputs(a);
  nn::set_cpu_threads(a.threads);
  const torch::Device device = parse_device(a.device);
  const torch::ScalarType dtype = parse_dtype(a.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution or matmul; use bf16 on CPU");
  if (!std::isfinite(a.timestep)) throw_usage("--timestep must be a finite number");
  c10::InferenceMode guard;
  auto need = [&](const std::string& v, const char* flag) {
    if (v.empty()) throw_usage(std::string("--component ") + a.component + " needs " + flag);
  };
  torch::Tensor out;
  if (a.component == "unet") {
    need(a.sample, "--sample");
    need(a.context, "--context");
    const nn::UNetConfig cfg = read_unet_config(a.path + "/unet/config.json");
    // Inputs first: a wrong shape is found before the weights are read.
    torch::Tensor x = finite_input(a.sample), ctx = finite_input(a.context);
    expect_shape(a.sample, x, {-1, cfg.in_channels, -1, -1}, "BCHW");
    expect_shape(a.context, ctx, {-1, -1, cfg.cross_attention_dim}, "BLD");
    same_batch(a.sample, x, a.context, ctx);
    nn::UNet2DCondition unet = for_config(a.path + "/unet/config.json", [&] { return nn::UNet2DCondition(cfg); });
    load_component(*unet, a.path + "/unet", a.variant);
    apply_loras(*unet, a.loras, quiet);
    unet->eval();
    unet->to(device, dtype);
    out = unet->forward(x.to(device, dtype), torch::full({x.size(0)}, a.timestep, torch::TensorOptions().device(device)),
                        ctx.to(device, dtype));
  } else if (a.component == "vae-encode" || a.component == "vae-decode") {
    need(a.sample, "--sample");
    const nn::VaeConfig cfg = read_vae_config(a.path + "/vae/config.json");
    torch::Tensor x = finite_input(a.sample);
    if (a.component == "vae-encode") {
      expect_shape(a.sample, x, {-1, cfg.in_channels, -1, -1}, "BCHW");
      // Each downsampler (pad to the right, 3x3 stride 2) needs at least 2 pixels.
      const int64_t min_size = int64_t(1) << (cfg.block_out_channels.size() - 1);
      if (x.size(2) < min_size || x.size(3) < min_size)
        throw_bad_input(a.sample, "image " + shape_str(x.sizes()) + " is smaller than the VAE encoder's " +
                                      std::to_string(min_size) + "x" + std::to_string(min_size) + " minimum");
    } else {
      expect_shape(a.sample, x, {-1, cfg.latent_channels, -1, -1}, "BChw");
    }
    nn::AutoencoderKL vae = for_config(a.path + "/vae/config.json", [&] { return nn::AutoencoderKL(cfg); });
    load_component(*vae, a.path + "/vae", a.variant);
    apply_loras(*vae, a.loras, quiet);
    vae->eval();
    vae->to(device, dtype);
    // SD VAEs can overflow in fp16 (NaN/black images): the reference's force_upcast.
    // Run as asked, and redo in fp32 when the result is not finite.
    auto finite_or_fp32 = [&](const std::function<torch::Tensor(torch::ScalarType)>& f) {
      torch::Tensor r = f(dtype);
      if (dtype != torch::kFloat && !torch::isfinite(r).all().item<bool>()) {
        if (!quiet) std::fprintf(stderr, "rass-model: the VAE overflowed in %s; running it in fp32\n", a.dtype.c_str());
        vae->to(device, torch::kFloat);
        r = f(torch::kFloat);
      }
      return r;
    };
    if (a.component == "vae-encode" && !a.sample_latent) {
      out = finite_or_fp32([&](torch::ScalarType t) { return vae->encode(x.to(device, t)).mean; });
    } else if (a.component == "vae-decode") {
      out = finite_or_fp32([&](torch::ScalarType t) { return vae->decode(x.to(device, t)); });
    } else {
      nn::LatentDistribution d = vae->encode(x.to(device, dtype));
      // The public form of the CPU generator (ATen/core/Generator.h, in 1.13 and 2.x alike).
      torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(a.seed);
      out = d.mean.to(torch::kFloat).cpu() + d.std.to(torch::kFloat).cpu() * at::randn(d.mean.sizes(), gen);
    }
  } else if (a.component == "tokenize") {
    if (!a.has_prompt) throw_usage("--component tokenize needs --prompt (\"\" for the unconditional prompt)");
    out = prompt_ids(a);
  } else if (a.component == "text-encoder") {
    if (a.input_ids.empty() && !a.has_prompt) throw_usage("--component text-encoder needs --input-ids or --prompt");
    if (!a.input_ids.empty() && a.has_prompt) throw_usage("--input-ids and --prompt exclude each other");
    const nn::ClipTextConfig cfg = read_clip_text_config(a.path + "/text_encoder/config.json");
    torch::Tensor ids;
    const std::string from = a.input_ids.empty() ? a.path + "/tokenizer" : a.input_ids;
    if (a.input_ids.empty()) {
      ids = prompt_ids(a);
    } else {
      ids = npy_ids(a.input_ids);
      expect_shape(a.input_ids, ids, {-1, -1}, "BL");
    }
    if (ids.size(1) > cfg.max_position_embeddings)
      throw_bad_input(from, std::to_string(ids.size(1)) + " tokens per prompt: more than " +
                                std::to_string(cfg.max_position_embeddings) + ", the text encoder's max_position_embeddings");
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= cfg.vocab_size)
      throw_bad_input(from, "token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the text encoder's vocabulary of " +
                                std::to_string(cfg.vocab_size) + " (tokenizer and text encoder do not match)");
    nn::ClipTextModel clip = for_config(a.path + "/text_encoder/config.json", [&] { return nn::ClipTextModel(cfg); });
    load_component(*clip, a.path + "/text_encoder", a.variant, {"text_model.embeddings.position_ids"});
    clip->eval();
    clip->to(device, dtype);
    out = clip->forward(ids.to(device)).last_hidden_state;
  } else {
    throw_usage("unknown --component '" + a.component + "'");
  }
  write_npy_tensor(a.output, out);
  return 0;
}

// ---- convert ----------------------------------------------------------------

bool is_ema(const std::string& key) {
  static const std::regex ema(R"((^|[._])(ema|model_ema)([._]|$))");
  return std::regex_search(key, ema);
}

// Values a conversion to fp16 turns from finite into inf.
struct Overflow {
  int64_t values = 0;
  std::vector<std::string> tensors;
};

// Rewrites one file's tensors: optional dtype change of floating tensors,
// optional EMA drop, key prefix.
void rewrite(const SafeTensorsFile& in, const std::string& to_dtype, bool drop_ema, const std::string& add_prefix,
             const std::string& strip_prefix, std::vector<torch::Tensor>& keep, std::vector<TensorToWrite>& out,
             Overflow& overflow) {
  for (const TensorView& t : in.tensors()) {
    if (drop_ema && is_ema(t.name)) continue;
    if (!strip_prefix.empty() && t.name.rfind(strip_prefix, 0) != 0) continue;
    const std::string name = add_prefix + t.name.substr(strip_prefix.size());
    const DType target = to_dtype == "fp16" ? DType::f16 : to_dtype == "bf16" ? DType::bf16 : DType::f32;
    if (!to_dtype.empty() && dtype_is_float(t.dtype) && t.dtype != target) {
      const torch::Tensor src = to_tensor(t, in.path());
      torch::Tensor x = src.to(torch_dtype(target)).contiguous();
      if (target != DType::f32) {
        const int64_t n = (torch::isfinite(src) & ~torch::isfinite(x.to(torch::kFloat))).sum().item<int64_t>();
        if (n > 0) {
          overflow.values += n;
          overflow.tensors.push_back(name);
        }
      }
      keep.push_back(x);
      out.push_back({name, target, t.shape, x.data_ptr(), size_t(x.nbytes())});
    } else {
      out.push_back({name, t.dtype, t.shape, t.data, t.nbytes});
    }
  }
}

void check_overflow(const Overflow& o, const ModelJob& a) {
  if (o.values == 0) return;
  std::string names;
  for (size_t i = 0; i < o.tensors.size() && i < 5; ++i) names += (i ? ", " : "") + o.tensors[i];
  if (o.tensors.size() > 5) names += ", ...";
  const std::string what = std::to_string(o.values) + " value(s) in " + std::to_string(o.tensors.size()) +
                           " tensor(s) lie beyond the " + a.to_dtype + " range (|x| > 65504) and would become inf (" +
                           names + ")";
  if (!a.allow_overflow) throw_bad_input(a.path, what + "; convert to bf16 instead, or pass --allow-overflow");
  if (!a.quiet) std::fprintf(stderr, "rass-model: warning: %s: %s; written as inf (--allow-overflow)\n", printable_message(a.path).c_str(), printable_message(what).c_str());
}

int convert(const ModelJob& a, bool quiet) {
  guard_outputs(a);
  std::error_code ec;
  std::vector<torch::Tensor> keep;
  Overflow overflow;
  if (a.merge) {
    if (!fs::is_directory(a.path, ec)) throw_usage("--merge takes a diffusers folder; " + a.path + " is not a folder");
    std::vector<std::shared_ptr<SafeTensorsFile>> files;
    std::vector<TensorToWrite> out;
    for (const char* comp : {"unet", "vae", "text_encoder"}) {
      const std::string dir = a.path + "/" + comp;
      if (!fs::is_directory(dir, ec)) continue;
      // The files `run` would load: the canonical file, or the index's shards.
      for (const auto& w : component_weight_files(dir, a.variant)) {
        files.push_back(SafeTensorsFile::open(w));
        rewrite(*files.back(), a.to_dtype, a.drop_ema, std::string(comp) + ".", "", keep, out, overflow);
      }
    }
    if (out.empty()) throw_bad_input(a.path, "no weights found under unet/, vae/ or text_encoder/");
    check_overflow(overflow, a);
    write_safetensors(a.output, out, {{"format", "pt"}, {"rass", "merged diffusers folder"}});
  } else if (a.split) {
    if (fs::is_directory(a.path, ec)) throw_bad_input(a.path, "is a folder; --split takes a merged .safetensors file");
    auto f = SafeTensorsFile::open(a.path);
    std::vector<std::pair<std::string, std::vector<TensorToWrite>>> parts;
    for (const char* comp : {"unet", "vae", "text_encoder"}) {
      std::vector<TensorToWrite> out;
      rewrite(*f, a.to_dtype, a.drop_ema, "", std::string(comp) + ".", keep, out, overflow);
      if (!out.empty()) parts.emplace_back(comp, std::move(out));
    }
    if (parts.empty()) throw_bad_input(a.path, "no tensors under unet., vae. or text_encoder. (not a merged file)");
    check_overflow(overflow, a);
    // All the components or none: a full disk at the second left the first's
    // weights, and the rerun was refused for them. Each written file is
    // removed on a failure or a signal until the last is in place; folders
    // this run made go too when empty.
    std::vector<std::string> written, made;
    std::vector<std::unique_ptr<SignalCleanup>> until_done;
    try {
      for (auto& [comp, out] : parts) {
        const std::string dir = a.output + "/" + comp;
        for (const std::string& d : {a.output, dir})
          if (!fs::exists(d, ec)) made.push_back(d);
        make_directories(dir);
        const std::string name = comp == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
        write_safetensors(dir + "/" + name, out, {{"format", "pt"}});
        written.push_back(dir + "/" + name);
        until_done.push_back(std::make_unique<SignalCleanup>(written.back().c_str()));
      }
    } catch (...) {
      for (const std::string& w : written) std::remove(w.c_str());
      for (auto d = made.rbegin(); d != made.rend(); ++d) ::rmdir(d->c_str());  // only when empty
      throw;
    }
    if (!quiet)
      for (const std::string& w : written)
        std::fprintf(stderr, "rass-model: wrote %s (configs are not part of a merged file; copy them)\n",
                     printable_message(w).c_str());
  } else {
    if (fs::is_directory(a.path, ec)) throw_bad_input(a.path, "is a folder; convert takes a .safetensors file (or --merge)");
    auto f = SafeTensorsFile::open(a.path);
    std::vector<TensorToWrite> out;
    rewrite(*f, a.to_dtype, a.drop_ema, "", "", keep, out, overflow);
    check_overflow(overflow, a);
    write_safetensors(a.output, out, f->metadata());
  }
  return 0;
}

}  // namespace

void guard_model_outputs(const ModelJob& job) {
  guard_outputs(job);
}

int run_model_tool(const ModelJob& job) {
  try {
    switch (job.command) {
      case ModelJob::Command::info: return info(job, job.json);
      case ModelJob::Command::run: return run(job, job.quiet);
      case ModelJob::Command::convert: return convert(job, job.quiet);
      case ModelJob::Command::sample: return run_sample_command(job);
      case ModelJob::Command::init: {
        InitJob init = job.init;
        init.quiet = job.quiet;
        init_model_folder(init);
        return 0;
      }
    }
    throw_usage("unknown command");
  } catch (const c10::Error& e) {
    // LibTorch errors carry a C++ backtrace; the user needs the first line.
    throw_runtime(describe_allocation_failure(e.what_without_backtrace()));
  }
}

}  // namespace rass::model
