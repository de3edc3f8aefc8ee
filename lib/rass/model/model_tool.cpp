#include "rass/model/model_tool.hpp"

#include <cstdio>
#include <functional>
#include <filesystem>
#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/nn/clip_text.hpp"
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
    by_dtype[st_dtype_name(t.dtype)] += t.numel();
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

int info(const cli::ModelArgs& a, bool as_json) {
  json out;
  std::error_code ec;
  if (fs::is_directory(a.path, ec)) {
    out["folder"] = a.path;
    for (const char* comp : kComponents) {
      const std::string dir = a.path + "/" + comp;
      if (!fs::is_directory(dir, ec)) continue;
      json c;
      const std::string cfg = dir + "/config.json";
      if (file_exists(cfg)) {
        const json j = read_json_file(cfg);
        c["class"] = j.value("_class_name", j.contains("architectures") && j["architectures"].is_array()
                                                 ? j["architectures"][0].get<std::string>()
                                                 : std::string());
        c["config"] = j;
      }
      for (const auto& w : weight_files(dir)) c["weights"].push_back(summarize_file(w));
      if (std::string(comp) == "tokenizer")
        c["files"] = {file_exists(dir + "/vocab.json") ? "vocab.json" : "", file_exists(dir + "/merges.txt") ? "merges.txt" : ""};
      out["components"][comp] = c;
    }
    if (!out.contains("components")) throw_bad_input(a.path, "no diffusers components (unet/, vae/, text_encoder/, ...) found");
  } else {
    out = summarize_file(a.path);
  }
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
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

torch::Tensor npy_tensor(const std::string& path) {
  NpyArray a = read_npy(path);
  std::vector<int64_t> shape(a.shape.begin(), a.shape.end());
  if (a.dtype == DType::i64 || a.dtype == DType::i32) {
    torch::Tensor t = torch::from_blob(a.data.data(), shape, a.dtype == DType::i64 ? torch::kLong : torch::kInt).clone();
    return t.to(torch::kLong);
  }
  std::vector<float> v = npy_to_f32(a);
  return torch::from_blob(v.data(), shape, torch::kFloat).clone();
}

void write_tensor(const std::string& path, torch::Tensor t) {
  t = t.detach().to(torch::kCPU).contiguous();
  NpyArray a;
  a.shape.assign(t.sizes().begin(), t.sizes().end());
  if (t.scalar_type() == torch::kLong) {
    a.dtype = DType::i64;
  } else {
    t = t.to(torch::kFloat);
    a.dtype = DType::f32;
  }
  a.data.assign(static_cast<const uint8_t*>(t.data_ptr()), static_cast<const uint8_t*>(t.data_ptr()) + t.nbytes());
  write_npy(path, a);
}

torch::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp16") return torch::kHalf;
  if (s == "bf16") return torch::kBFloat16;
  return torch::kFloat;
}

// The weight files of a component folder: the canonical file, or the shards an
// index names; a folder with only variants (e.g. .fp16.safetensors) must say which.
std::vector<std::string> component_files(const std::string& dir) {
  for (const char* name : {"diffusion_pytorch_model.safetensors", "model.safetensors"})
    if (file_exists(dir + "/" + name)) return {dir + "/" + name};
  for (const char* index : {"diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"}) {
    const std::string ip = dir + "/" + index;
    if (!file_exists(ip)) continue;
    const json map = read_json_file(ip);
    std::set<std::string> shards;
    try {
      for (auto& [k, v] : map.at("weight_map").items()) shards.insert(v.get<std::string>());
    } catch (const std::exception& e) {
      throw_bad_input(ip, std::string("not a safetensors index: ") + e.what());
    }
    std::vector<std::string> out;
    for (const auto& s : shards) out.push_back(dir + "/" + s);
    return out;
  }
  const auto all = weight_files(dir);
  if (all.size() == 1) return all;
  if (all.empty()) throw_bad_input(dir, "no .safetensors weights in this folder");
  std::string names;
  for (const auto& f : all) names += " " + fs::path(f).filename().string();
  throw_bad_input(dir, "several weight files and no canonical one (" + names.substr(1) + "); convert the one you want to " +
                           "diffusion_pytorch_model.safetensors");
}

void load_component(torch::nn::Module& m, const std::string& dir, const std::set<std::string>& ignorable = {}) {
  const auto files = component_files(dir);
  if (files.size() == 1) {
    load_state_dict(m, *SafeTensorsFile::open(files[0]), true, "", ignorable);
    return;
  }
  // Shards: each holds part of the model; a tensor is missing only if no shard has it.
  std::set<std::string> missing;
  bool first = true;
  LoadReport all;
  for (const auto& path : files) {
    LoadReport r = load_state_dict(m, *SafeTensorsFile::open(path), false, "", ignorable);
    std::set<std::string> ms(r.missing.begin(), r.missing.end());
    if (first) missing = ms;
    else {
      std::set<std::string> both;
      std::set_intersection(missing.begin(), missing.end(), ms.begin(), ms.end(), std::inserter(both, both.end()));
      missing = both;
    }
    first = false;
    all.unexpected.insert(all.unexpected.end(), r.unexpected.begin(), r.unexpected.end());
    all.mismatched.insert(all.mismatched.end(), r.mismatched.begin(), r.mismatched.end());
  }
  all.missing.assign(missing.begin(), missing.end());
  if (!all.complete()) throw_bad_input(dir, "the shards do not fit the model:" + all.summary());
}

void apply_loras(torch::nn::Module& m, const std::vector<std::string>& loras, bool quiet) {
  int k = 0;
  for (const std::string& spec : loras) {
    std::string path = spec;
    double scale = 1.0;
    const size_t colon = spec.rfind(':');
    if (colon != std::string::npos && colon + 1 < spec.size() && spec.find_first_not_of("0123456789.-", colon + 1) == std::string::npos) {
      path = spec.substr(0, colon);
      scale = std::stod(spec.substr(colon + 1));
    }
    auto f = SafeTensorsFile::open(path);
    LoraLoadOptions opt;
    opt.scale = scale;
    opt.adapter = "lora" + std::to_string(k++);
    // diffusers pipeline LoRA files prefix UNet keys with "unet.".
    for (const TensorView& t : f->tensors())
      if (t.name.rfind("unet.", 0) == 0) {
        opt.prefix = "unet.";
        break;
      }
    LoraLoadReport r = load_lora(m, *f, opt);
    if (!r.unmatched.empty())
      throw_bad_input(path, std::to_string(r.unmatched.size()) + " tensor(s) fit no LoRA layer or parameter, e.g. '" + r.unmatched[0] + "'");
    if (r.alpha_guessed && !quiet)
      std::fprintf(stderr, "rass-model: %s has no lora_alpha metadata; assuming alpha = rank (PEFT's default is 8: check the training config)\n", path.c_str());
    if (!quiet)
      for (auto& [name, n] : r.adapters) std::fprintf(stderr, "rass-model: %s: adapter %s on %zu layers (scale %g)\n", path.c_str(), name.c_str(), n, scale);
  }
}

// The prompt as 77 padded token ids [1, 77] with the folder's tokenizer/.
torch::Tensor prompt_ids(const cli::ModelArgs& a) {
  const text::ClipTokenizer tok = text::ClipTokenizer::load(a.path + "/tokenizer");
  std::vector<int> ids = tok.encode_padded(a.prompt, 77);
  std::vector<int64_t> wide(ids.begin(), ids.end());
  return torch::tensor(wide, torch::kLong).view({1, int64_t(wide.size())});
}

int run(const cli::ModelArgs& a, bool quiet) {
  torch::set_num_threads(a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency())));
  const torch::Device device(a.device);
  if (device.is_cuda() && !torch::cuda::is_available())
    throw_runtime("--device " + a.device + ": CUDA is not available in this LibTorch build or on this machine");
  const torch::ScalarType dtype = parse_dtype(a.dtype);
  if (dtype == torch::kHalf && !device.is_cuda())
    throw_usage("--dtype fp16 needs --device cuda: LibTorch's CPU kernels have no fp16 convolution or matmul; use bf16 on CPU");
  c10::InferenceMode guard;
  auto need = [&](const std::string& v, const char* flag) {
    if (v.empty()) throw_usage(std::string("--component ") + a.component + " needs " + flag);
  };
  torch::Tensor out;
  if (a.component == "unet") {
    need(a.sample, "--sample");
    need(a.context, "--context");
    nn::UNet2DCondition unet(read_unet_config(a.path + "/unet/config.json"));
    load_component(*unet, a.path + "/unet");
    apply_loras(*unet, a.loras, quiet);
    unet->eval();
    unet->to(device, dtype);
    torch::Tensor x = npy_tensor(a.sample), ctx = npy_tensor(a.context);
    if (x.dim() != 4) throw_bad_input(a.sample, "expected a [B, C, H, W] latent");
    if (ctx.dim() != 3) throw_bad_input(a.context, "expected a [B, L, D] context");
    out = unet->forward(x.to(device, dtype), torch::full({x.size(0)}, a.timestep, torch::TensorOptions().device(device)),
                        ctx.to(device, dtype));
  } else if (a.component == "vae-encode" || a.component == "vae-decode") {
    need(a.sample, "--sample");
    nn::AutoencoderKL vae(read_vae_config(a.path + "/vae/config.json"));
    load_component(*vae, a.path + "/vae");
    apply_loras(*vae, a.loras, quiet);
    vae->eval();
    vae->to(device, dtype);
    torch::Tensor x = npy_tensor(a.sample);
    if (x.dim() != 4) throw_bad_input(a.sample, "expected a [B, C, H, W] tensor");
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
      torch::Generator gen = at::detail::createCPUGenerator(a.seed);
      out = d.mean.to(torch::kFloat).cpu() + d.std.to(torch::kFloat).cpu() * at::randn(d.mean.sizes(), gen);
    }
  } else if (a.component == "tokenize") {
    need(a.prompt, "--prompt");
    out = prompt_ids(a);
  } else if (a.component == "text-encoder") {
    if (a.input_ids.empty() && a.prompt.empty()) throw_usage("--component text-encoder needs --input-ids or --prompt");
    nn::ClipTextModel clip(read_clip_text_config(a.path + "/text_encoder/config.json"));
    load_component(*clip, a.path + "/text_encoder", {"text_model.embeddings.position_ids"});
    clip->eval();
    clip->to(device, dtype);
    torch::Tensor ids = a.input_ids.empty() ? prompt_ids(a) : npy_tensor(a.input_ids);
    if (ids.scalar_type() != torch::kLong || ids.dim() != 2) throw_bad_input(a.input_ids, "expected int64 token ids [B, L]");
    out = clip->forward(ids.to(device)).last_hidden_state;
  }
  write_tensor(a.output, out);
  return 0;
}

// ---- convert ----------------------------------------------------------------

bool is_ema(const std::string& key) {
  static const std::regex ema(R"((^|[._])(ema|model_ema)([._]|$))");
  return std::regex_search(key, ema);
}

// Rewrites one file: optional dtype change of floating tensors, optional EMA drop, key prefix.
void rewrite(const SafeTensorsFile& in, const std::string& out_path, const std::string& to_dtype, bool drop_ema,
             const std::string& add_prefix, const std::string& strip_prefix,
             std::vector<torch::Tensor>& keep, std::vector<TensorToWrite>& out) {
  for (const TensorView& t : in.tensors()) {
    if (drop_ema && is_ema(t.name)) continue;
    if (!strip_prefix.empty() && t.name.rfind(strip_prefix, 0) != 0) continue;
    const std::string name = add_prefix + t.name.substr(strip_prefix.size());
    const bool floating = t.dtype == StDType::F32 || t.dtype == StDType::F16 || t.dtype == StDType::BF16 || t.dtype == StDType::F64;
    if (!to_dtype.empty() && floating) {
      torch::Tensor x = to_tensor(t, in.path()).to(parse_dtype(to_dtype)).contiguous();
      keep.push_back(x);
      const StDType st = to_dtype == "fp16" ? StDType::F16 : to_dtype == "bf16" ? StDType::BF16 : StDType::F32;
      out.push_back({name, st, t.shape, x.data_ptr(), size_t(x.nbytes())});
    } else {
      out.push_back({name, t.dtype, t.shape, t.data, t.nbytes});
    }
  }
  (void)out_path;
}

int convert(const cli::ModelArgs& a, bool quiet) {
  std::error_code ec;
  std::vector<torch::Tensor> keep;
  if (a.merge) {
    if (!fs::is_directory(a.path, ec)) throw_usage("--merge takes a diffusers folder");
    std::vector<std::shared_ptr<SafeTensorsFile>> files;
    std::vector<TensorToWrite> out;
    for (const char* comp : {"unet", "vae", "text_encoder"}) {
      const std::string dir = a.path + "/" + comp;
      if (!fs::is_directory(dir, ec)) continue;
      for (const auto& w : weight_files(dir)) {
        files.push_back(SafeTensorsFile::open(w));
        rewrite(*files.back(), a.output, a.to_dtype, a.drop_ema, std::string(comp) + ".", "", keep, out);
      }
    }
    if (out.empty()) throw_bad_input(a.path, "no weights found under unet/, vae/ or text_encoder/");
    write_safetensors(a.output, out, {{"format", "pt"}, {"rass", "merged diffusers folder"}});
  } else if (a.split) {
    auto f = SafeTensorsFile::open(a.path);
    for (const char* comp : {"unet", "vae", "text_encoder"}) {
      std::vector<TensorToWrite> out;
      rewrite(*f, "", a.to_dtype, a.drop_ema, "", std::string(comp) + ".", keep, out);
      if (out.empty()) continue;
      make_directories(a.output + "/" + comp);
      const std::string name = std::string(comp) == "text_encoder" ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
      write_safetensors(a.output + "/" + comp + "/" + name, out, {{"format", "pt"}});
      if (!quiet) std::fprintf(stderr, "rass-model: wrote %s/%s/%s (configs are not part of a merged file; copy them)\n", a.output.c_str(), comp, name.c_str());
    }
  } else {
    auto f = SafeTensorsFile::open(a.path);
    std::vector<TensorToWrite> out;
    rewrite(*f, a.output, a.to_dtype, a.drop_ema, "", "", keep, out);
    write_safetensors(a.output, out, f->metadata());
  }
  return 0;
}

}  // namespace

int run_model_tool(const cli::ModelArgs& args, bool json_out, bool quiet) {
  try {
    if (args.command == "info") return info(args, json_out);
    if (args.command == "run") return run(args, quiet);
    return convert(args, quiet);
  } catch (const c10::Error& e) {
    // LibTorch errors carry a C++ backtrace; the user needs the first line.
    throw_runtime(e.what_without_backtrace());
  }
}

}  // namespace rass::model
