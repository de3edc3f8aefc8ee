// rass-model run/convert/info as library calls on a diffusers folder assembled
// from the tiny fixtures: the run path must reproduce the reference outputs.
#include "torch_doctest.hpp"

#include <cstdlib>
#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/model_tool.hpp"

using namespace rass;
namespace fs = std::filesystem;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

static void save_npy(const torch::Tensor& t0, const std::string& path) {
  torch::Tensor t = t0.contiguous();
  NpyArray a;
  a.dtype = t.scalar_type() == torch::kLong ? DType::i64 : DType::f32;
  a.shape.assign(t.sizes().begin(), t.sizes().end());
  a.data.assign(static_cast<uint8_t*>(t.data_ptr()), static_cast<uint8_t*>(t.data_ptr()) + t.nbytes());
  write_npy(path, a);
}

static torch::Tensor load_npy(const std::string& path) {
  NpyArray a = read_npy(path);
  std::vector<float> v = npy_to_f32(a);
  return torch::from_blob(v.data(), std::vector<int64_t>(a.shape.begin(), a.shape.end()), torch::kFloat).clone();
}

TEST_CASE("rass-model run reproduces the reference for unet, vae-decode and text-encoder; convert round trips") {
  char tmpl[] = "/tmp/rass-model-XXXXXX";
  const std::string root = mkdtemp(tmpl);
  const std::string sd = root + "/sd";
  fs::create_directories(sd);
  fs::copy(kDir + "/unet_tiny", sd + "/unet");
  fs::copy(kDir + "/vae_tiny", sd + "/vae");
  fs::copy(kDir + "/clip_tiny_gelu", sd + "/text_encoder");
  auto tensor = [](const std::string& file, const char* key) {
    auto f = SafeTensorsFile::open(file);
    return model::to_tensor(*f->find(key), file);
  };
  cli::ModelArgs a;
  a.command = "run";
  a.path = sd;
  a.threads = 1;

  const std::string uio = kDir + "/unet_tiny_io.safetensors";
  save_npy(tensor(uio, "sample"), root + "/sample.npy");
  save_npy(tensor(uio, "context"), root + "/context.npy");
  a.component = "unet";
  a.sample = root + "/sample.npy";
  a.context = root + "/context.npy";
  a.timestep = 999;
  a.output = root + "/unet_out.npy";
  CHECK(model::run_model_tool(a, false, true) == 0);
  CHECK((load_npy(a.output) - tensor(uio, "out")).abs().max().item<double>() < 1e-4);

  const std::string vio = kDir + "/vae_tiny_io.safetensors";
  save_npy(tensor(vio, "z"), root + "/z.npy");
  a.component = "vae-decode";
  a.sample = root + "/z.npy";
  a.output = root + "/dec.npy";
  CHECK(model::run_model_tool(a, false, true) == 0);
  CHECK((load_npy(a.output) - tensor(vio, "decoded")).abs().max().item<double>() < 1e-4);

  const std::string cio = kDir + "/clip_tiny_gelu_io.safetensors";
  save_npy(tensor(cio, "input_ids"), root + "/ids.npy");
  a.component = "text-encoder";
  a.input_ids = root + "/ids.npy";
  a.output = root + "/text.npy";
  CHECK(model::run_model_tool(a, false, true) == 0);
  CHECK((load_npy(a.output) - tensor(cio, "last_hidden_state")).abs().max().item<double>() < 1e-4);

  // Missing input flag: usage error.
  a.component = "unet";
  a.context.clear();
  CHECK_THROWS_AS(model::run_model_tool(a, false, true), Error);

  // convert: fp16 halves the floating tensors; merge then split gives back the same tensors.
  cli::ModelArgs c;
  c.command = "convert";
  c.path = sd + "/unet/diffusion_pytorch_model.safetensors";
  c.output = root + "/unet16.safetensors";
  c.to_dtype = "fp16";
  model::run_model_tool(c, false, true);
  auto f16 = SafeTensorsFile::open(c.output);
  CHECK(f16->tensors()[0].dtype == StDType::F16);
  CHECK(fs::file_size(c.output) < fs::file_size(c.path) / 2 + 65536);
  c = {};
  c.command = "convert";
  c.path = sd;
  c.output = root + "/merged.safetensors";
  c.merge = true;
  model::run_model_tool(c, false, true);
  auto merged = SafeTensorsFile::open(c.output);
  CHECK(merged->find("unet.conv_in.weight"));
  CHECK(merged->find("vae.encoder.conv_in.weight"));
  CHECK(merged->find("text_encoder.text_model.final_layer_norm.weight"));
  c.path = c.output;
  c.output = root + "/split";
  c.merge = false;
  c.split = true;
  model::run_model_tool(c, false, true);
  auto back = SafeTensorsFile::open(root + "/split/unet/diffusion_pytorch_model.safetensors");
  auto orig = SafeTensorsFile::open(sd + "/unet/diffusion_pytorch_model.safetensors");
  REQUIRE(back->tensors().size() == orig->tensors().size());
  for (const TensorView& t : orig->tensors()) {
    const TensorView* b = back->find(t.name);
    REQUIRE(b);
    CHECK(std::memcmp(b->data, t.data, t.nbytes) == 0);
  }
  std::system(("rm -rf " + root).c_str());
}
