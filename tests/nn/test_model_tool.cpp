// rass-model run/convert/info as library calls on a diffusers folder assembled
// from the tiny fixtures: the run path must reproduce the reference outputs.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/model_tool.hpp"
#include "rass/nn/unet.hpp"

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
  model::ModelJob a;
  a.command = model::ModelJob::Command::run;
  a.quiet = true;
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
  CHECK(model::run_model_tool(a) == 0);
  MESSAGE("run unet max abs error ", (load_npy(a.output) - tensor(uio, "out")).abs().max().item<double>());
  CHECK((load_npy(a.output) - tensor(uio, "out")).abs().max().item<double>() < TOL_UNET);

  const std::string vio = kDir + "/vae_tiny_io.safetensors";
  save_npy(tensor(vio, "z"), root + "/z.npy");
  a.component = "vae-decode";
  a.sample = root + "/z.npy";
  a.context.clear();  // a component's unread inputs are refused
  a.output = root + "/dec.npy";
  CHECK(model::run_model_tool(a) == 0);
  MESSAGE("run vae-decode max abs error ", (load_npy(a.output) - tensor(vio, "decoded")).abs().max().item<double>());
  CHECK((load_npy(a.output) - tensor(vio, "decoded")).abs().max().item<double>() < TOL_VAE_DEC);

  const std::string cio = kDir + "/clip_tiny_gelu_io.safetensors";
  save_npy(tensor(cio, "input_ids"), root + "/ids.npy");
  a.component = "text-encoder";
  a.sample.clear();
  a.input_ids = root + "/ids.npy";
  a.output = root + "/text.npy";
  CHECK(model::run_model_tool(a) == 0);
  MESSAGE("run text-encoder max abs error ", (load_npy(a.output) - tensor(cio, "last_hidden_state")).abs().max().item<double>());
  CHECK((load_npy(a.output) - tensor(cio, "last_hidden_state")).abs().max().item<double>() < TOL_CLIP);

  // Missing input flag, or one the component does not read: usage errors.
  a.component = "unet";
  a.input_ids.clear();
  a.sample = root + "/sample.npy";
  CHECK_THROWS_WITH_AS(model::run_model_tool(a), "--component unet needs --context", Error);
  a.context = root + "/context.npy";
  a.has_prompt = true;
  CHECK_THROWS_WITH_AS(model::run_model_tool(a),
                       "--prompt is not read by --component unet (the input of tokenize and text-encoder)", Error);
  a.has_prompt = false;
  a.component = "text-encoder";
  a.sample.clear();
  a.context.clear();
  a.input_ids = root + "/ids.npy";
  a.loras = {{root + "/nope.safetensors", 1.0}};
  CHECK_THROWS_WITH_AS(model::run_model_tool(a),
                       "--lora is not read by --component text-encoder (LoRAs apply to unet, vae-encode and vae-decode)",
                       Error);
  a.loras.clear();
  a.input_ids.clear();

  // convert: fp16 halves the floating tensors; merge then split gives back the same tensors.
  model::ModelJob c;
  c.command = model::ModelJob::Command::convert;
  c.quiet = true;
  c.path = sd + "/unet/diffusion_pytorch_model.safetensors";
  c.output = root + "/unet16.safetensors";
  c.to_dtype = "fp16";
  model::run_model_tool(c);
  auto f16 = SafeTensorsFile::open(c.output);
  CHECK(f16->tensors()[0].dtype == DType::f16);
  CHECK(fs::file_size(c.output) < fs::file_size(c.path) / 2 + 65536);
  c = {};
  c.command = model::ModelJob::Command::convert;
  c.quiet = true;
  c.path = sd;
  c.output = root + "/merged.safetensors";
  c.merge = true;
  model::run_model_tool(c);
  auto merged = SafeTensorsFile::open(c.output);
  CHECK(merged->find("unet.conv_in.weight"));
  CHECK(merged->find("vae.encoder.conv_in.weight"));
  CHECK(merged->find("text_encoder.text_model.final_layer_norm.weight"));
  c.path = c.output;
  c.output = root + "/split";
  c.merge = false;
  c.split = true;
  model::run_model_tool(c);
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

namespace {

// A scratch diffusers folder from the tiny fixtures, removed at scope exit.
struct Scratch {
  std::string root, sd;
  Scratch() {
    char tmpl[] = "/tmp/rass-model-XXXXXX";
    root = mkdtemp(tmpl);
    sd = root + "/sd";
    fs::create_directories(sd);
    fs::copy(kDir + "/unet_tiny", sd + "/unet");
    fs::copy(kDir + "/vae_tiny", sd + "/vae");
    fs::copy(kDir + "/clip_tiny_gelu", sd + "/text_encoder");
    fs::copy(std::string(RASS_FIXTURES) + "/text/tiny-clip", sd + "/tokenizer");
  }
  ~Scratch() { fs::remove_all(root); }
};

torch::Tensor io_tensor(const std::string& file, const char* key) {
  auto f = SafeTensorsFile::open(file);
  return model::to_tensor(*f->find(key), file);
}

// The Error a job throws (its code and message), or a failed check.
// `convert --merge` of the folder `sd` into `output`, quietly.
model::ModelJob merge_job(const std::string& sd, const std::string& output) {
  model::ModelJob c;
  c.command = model::ModelJob::Command::convert;
  c.quiet = true;
  c.path = sd;
  c.merge = true;
  c.output = output;
  return c;
}

Error error_of(const model::ModelJob& job) {
  try {
    model::run_model_tool(job);
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected an error");
  return Error(ExitCode::ok, "");
}

bool has(const Error& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

// Writes the tensors of `file` into `n` shard files plus an index, as
// diffusers' save_pretrained(max_shard_size=...) does.
void shard(const std::string& file, const std::string& dir, int n) {
  auto f = SafeTensorsFile::open(file);
  std::vector<std::vector<TensorToWrite>> parts(n);
  std::string map;
  for (size_t i = 0; i < f->tensors().size(); ++i) {
    const TensorView& t = f->tensors()[i];
    const int k = int(i % size_t(n));
    parts[k].push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
    map += std::string(map.empty() ? "" : ",") + "\"" + t.name + "\": \"diffusion_pytorch_model-0000" +
           std::to_string(k + 1) + "-of-0000" + std::to_string(n) + ".safetensors\"";
  }
  for (int k = 0; k < n; ++k)
    write_safetensors(dir + "/diffusion_pytorch_model-0000" + std::to_string(k + 1) + "-of-0000" + std::to_string(n) +
                          ".safetensors",
                      parts[k]);
  std::FILE* idx = std::fopen((dir + "/diffusion_pytorch_model.safetensors.index.json").c_str(), "w");
  std::fprintf(idx, "{\"metadata\": {}, \"weight_map\": {%s}}", map.c_str());
  std::fclose(idx);
}

}  // namespace

TEST_CASE("component weights: canonical file, index shards or an explicit variant; convert --merge takes the same") {
  Scratch s;
  const std::string unet = s.sd + "/unet";
  const std::string canon = unet + "/diffusion_pytorch_model.safetensors";
  // A folder with the canonical file and an fp16 variant: run and merge take the canonical file only.
  model::ModelJob c;
  c.command = model::ModelJob::Command::convert;
  c.quiet = true;
  c.path = canon;
  c.output = unet + "/diffusion_pytorch_model.fp16.safetensors";
  c.to_dtype = "fp16";
  model::run_model_tool(c);
  CHECK(model::component_weight_files(unet) == std::vector<std::string>{canon});
  CHECK(model::component_weight_files(unet, "fp16") == std::vector<std::string>{c.output});
  c = merge_job(s.sd, s.root + "/merged.safetensors");
  model::run_model_tool(c);
  const size_t n_unet = SafeTensorsFile::open(canon)->tensors().size();
  const size_t n_vae = SafeTensorsFile::open(s.sd + "/vae/diffusion_pytorch_model.safetensors")->tensors().size();
  const size_t n_clip = SafeTensorsFile::open(s.sd + "/text_encoder/model.safetensors")->tensors().size();
  auto merged = SafeTensorsFile::open(c.output);
  CHECK(merged->tensors().size() == n_unet + n_vae + n_clip);
  CHECK(merged->find("unet.conv_in.weight")->dtype == DType::f32);
  c.variant = "fp16";  // the fp16 UNet; vae/ and text_encoder/ have no fp16 files
  CHECK(error_of(c).code() == ExitCode::bad_input);

  // Shards named by an index load as the single file does; the merge takes the shards.
  const torch::Tensor x = io_tensor(kDir + "/unet_tiny_io.safetensors", "sample");
  const torch::Tensor t = io_tensor(kDir + "/unet_tiny_io.safetensors", "timesteps");
  const torch::Tensor ctx = io_tensor(kDir + "/unet_tiny_io.safetensors", "context");
  const torch::Tensor want = io_tensor(kDir + "/unet_tiny_io.safetensors", "out");
  fs::create_directories(s.root + "/sharded");
  shard(canon, s.root + "/sharded", 3);
  fs::copy(unet + "/config.json", s.root + "/sharded/config.json");
  const auto files = model::component_weight_files(s.root + "/sharded");
  CHECK(files.size() == 3);
  torch::NoGradGuard ng;
  nn::UNet2DCondition m(model::read_unet_config(unet + "/config.json"));
  model::load_component(*m, s.root + "/sharded");
  m->eval();
  CHECK((m->forward(x, t, ctx) - want).abs().max().item<double>() < TOL_UNET);
  fs::remove_all(unet);
  fs::rename(s.root + "/sharded", unet);
  c = merge_job(s.sd, s.root + "/merged2.safetensors");
  model::run_model_tool(c);
  CHECK(SafeTensorsFile::open(c.output)->tensors().size() == n_unet + n_vae + n_clip);

  // An index naming a missing shard, or a shard outside the folder: bad input naming the index.
  fs::remove(unet + "/diffusion_pytorch_model-00002-of-00003.safetensors");
  try {
    model::component_weight_files(unet);
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(has(e, "index.json"));
    CHECK(has(e, "00002-of-00003"));
  }
  std::FILE* idx = std::fopen((unet + "/diffusion_pytorch_model.safetensors.index.json").c_str(), "w");
  std::fprintf(idx, "{\"weight_map\": {\"conv_in.weight\": \"../../evil.safetensors\"}}");
  std::fclose(idx);
  CHECK_THROWS_AS(model::component_weight_files(unet), Error);
  // Only variants and no canonical file: refused, the candidates named.
  fs::remove_all(unet);
  fs::create_directories(unet);
  fs::copy(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors", unet + "/diffusion_pytorch_model.a.safetensors");
  fs::copy(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors", unet + "/diffusion_pytorch_model.b.safetensors");
  try {
    model::component_weight_files(unet);
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(has(e, "diffusion_pytorch_model.a.safetensors"));
    CHECK(has(e, "--variant"));
  }
}

TEST_CASE("run checks every input against the component's config before running") {
  Scratch s;
  torch::manual_seed(0);
  auto npy = [&](const std::string& name, const torch::Tensor& t) {
    save_npy(t, s.root + "/" + name);
    return s.root + "/" + name;
  };
  model::ModelJob a;
  a.command = model::ModelJob::Command::run;
  a.quiet = true;
  a.threads = 1;
  a.path = s.sd;
  a.output = s.root + "/out.npy";
  a.component = "unet";  // unet_tiny: in_channels 4, cross_attention_dim 12
  a.sample = npy("x1.npy", torch::randn({1, 4, 8, 8}));
  a.context = npy("c2.npy", torch::randn({2, 5, 12}));
  Error e = error_of(a);  // batch 1 sample, batch 2 context
  CHECK(e.code() == ExitCode::bad_input);
  CHECK(has(e, a.context));
  CHECK(has(e, "batch size 2"));
  a.context = npy("c1w.npy", torch::randn({1, 5, 16}));
  e = error_of(a);
  CHECK(e.code() == ExitCode::bad_input);
  CHECK(has(e, a.context));
  CHECK(has(e, "[B, L, 12]"));
  a.context = npy("c1r.npy", torch::randn({5, 12}));
  CHECK(has(error_of(a), "[B, L, 12]"));
  a.context = npy("c1.npy", torch::randn({1, 5, 12}));
  a.sample = npy("x3.npy", torch::randn({1, 3, 8, 8}));
  e = error_of(a);
  CHECK(e.code() == ExitCode::bad_input);
  CHECK(has(e, a.sample));
  CHECK(has(e, "[B, 4, H, W]"));
  a.sample = npy("x0.npy", torch::randn({1, 4, 0, 8}));
  CHECK(error_of(a).code() == ExitCode::bad_input);
  a.context = npy("c0.npy", torch::randn({1, 0, 12}));
  a.sample = npy("x1b.npy", torch::randn({1, 4, 8, 8}));
  CHECK(has(error_of(a), a.context));
  a.sample = npy("x5.npy", torch::randn({1, 1, 4, 8, 8}));
  CHECK(has(error_of(a), a.sample));

  a.context.clear();
  a.component = "vae-encode";  // vae_tiny: 3 input channels, 4 latent channels
  a.sample = npy("img4.npy", torch::randn({1, 4, 16, 16}));
  e = error_of(a);
  CHECK(e.code() == ExitCode::bad_input);
  CHECK(has(e, "[B, 3, H, W]"));
  a.sample = npy("img1.npy", torch::randn({1, 3, 1, 1}));
  CHECK(has(error_of(a), "smaller than"));
  a.component = "vae-decode";
  a.sample = npy("z3.npy", torch::randn({1, 3, 2, 2}));
  CHECK(has(error_of(a), "[B, 4, h, w]"));

  a.component = "text-encoder";
  a.sample.clear();
  a.input_ids = npy("ids_f.npy", torch::zeros({1, 5}));
  e = error_of(a);
  CHECK(e.code() == ExitCode::bad_input);
  CHECK(has(e, "int64 or int32"));
  a.input_ids = npy("ids3.npy", torch::zeros({1, 1, 5}, torch::kLong));
  CHECK(has(error_of(a), "[B, L]"));
  a.input_ids = npy("ids0.npy", torch::zeros({1, 0}, torch::kLong));
  CHECK(error_of(a).code() == ExitCode::bad_input);
  a.input_ids = npy("ids_big.npy", torch::full({1, 5}, 100000, torch::kLong));
  CHECK(has(error_of(a), "vocabulary"));
}

TEST_CASE("the empty prompt tokenizes to BOS, EOS and padding, as transformers does") {
  Scratch s;
  model::ModelJob a;
  a.command = model::ModelJob::Command::run;
  a.quiet = true;
  a.path = s.sd;
  a.component = "tokenize";
  a.has_prompt = true;
  a.prompt = "";
  a.output = s.root + "/ids.npy";
  REQUIRE(model::run_model_tool(a) == 0);
  // tests/fixtures/text/tokenizer_golden.json, text "": sd2 padded [1700, 1701], pad id 0.
  NpyArray ids = read_npy(a.output);
  REQUIRE(ids.dtype == DType::i64);
  REQUIRE(ids.shape == std::vector<int64_t>{1, 77});
  CHECK(ids.as<int64_t>()[0] == 1700);
  CHECK(ids.as<int64_t>()[1] == 1701);
  for (int i = 2; i < 77; ++i) CHECK(ids.as<int64_t>()[i] == 0);
  a.has_prompt = false;
  CHECK(error_of(a).code() == ExitCode::usage);
}

TEST_CASE("convert --to-dtype fp16 refuses values beyond the fp16 range unless --allow-overflow") {
  Scratch s;
  std::vector<float> big = {1.f, 70000.f, -1e6f, 65504.f}, fine = {0.5f, -2.f};
  std::vector<float> inf = {std::numeric_limits<float>::infinity()};
  const std::string in = s.root + "/w.safetensors";
  write_safetensors(in, {{"big", DType::f32, {4}, big.data(), 16}, {"fine", DType::f32, {2}, fine.data(), 8},
                         {"already_inf", DType::f32, {1}, inf.data(), 4}});
  model::ModelJob c;
  c.command = model::ModelJob::Command::convert;
  c.quiet = true;
  c.path = in;
  c.output = s.root + "/w16.safetensors";
  c.to_dtype = "fp16";
  Error e = error_of(c);
  CHECK(e.code() == ExitCode::bad_input);
  CHECK(has(e, in));
  CHECK(has(e, "2 value(s) in 1 tensor(s)"));
  CHECK(has(e, "big"));
  CHECK(!fs::exists(c.output));
  c.to_dtype = "bf16";  // bf16 has float32's range
  CHECK(model::run_model_tool(c) == 0);
  c.to_dtype = "fp16";
  c.allow_overflow = true;
  CHECK(model::run_model_tool(c) == 0);
  auto out = SafeTensorsFile::open(c.output);
  const torch::Tensor b = model::to_tensor(*out->find("big"), c.output).to(torch::kFloat);
  CHECK(std::isinf(b[1].item<float>()));
  CHECK(b[3].item<float>() == 65504.f);
}

TEST_CASE("vae-encode --sample-latent --seed: mean + std * N(0, 1) drawn from the seed's CPU generator") {
  char tmpl[] = "/tmp/rass-model-XXXXXX";
  const std::string root = mkdtemp(tmpl);
  fs::create_directories(root + "/sd");
  fs::copy(kDir + "/vae_tiny", root + "/sd/vae");
  const std::string vio = kDir + "/vae_tiny_io.safetensors";
  auto io = SafeTensorsFile::open(vio);
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), vio); };
  save_npy(get("x"), root + "/x.npy");
  model::ModelJob a;
  a.command = model::ModelJob::Command::run;
  a.quiet = true;
  a.path = root + "/sd";
  a.threads = 1;
  a.component = "vae-encode";
  a.sample = root + "/x.npy";
  a.sample_latent = true;
  a.seed = 1234;
  a.output = root + "/z1.npy";
  REQUIRE(model::run_model_tool(a) == 0);
  a.output = root + "/z2.npy";
  REQUIRE(model::run_model_tool(a) == 0);
  a.seed = 1235;
  a.output = root + "/z3.npy";
  REQUIRE(model::run_model_tool(a) == 0);
  const torch::Tensor z1 = load_npy(root + "/z1.npy"), z2 = load_npy(root + "/z2.npy"), z3 = load_npy(root + "/z3.npy");
  CHECK(torch::equal(z1, z2));  // the seed decides
  CHECK(!torch::equal(z1, z3));
  // The reference posterior (diffusers) and the draw of a CPU generator seeded
  // alike: torch.manual_seed(1234); torch.randn(shape).
  torch::manual_seed(1234);
  const torch::Tensor eps = torch::randn(get("mean").sizes());
  const torch::Tensor noise = (0.5 * get("logvar").clamp(-30.0, 20.0)).exp() * eps;
  const double err = (z1 - (get("mean") + noise)).abs().max().item<double>();
  MESSAGE("vae-encode sample max abs error ", err);
  // An error d in logvar moves std * eps by 0.5 * std * eps * d.
  CHECK(err < TOL_VAE_ENC * (1 + 0.5 * noise.abs().max().item<double>()));
  std::system(("rm -rf " + root).c_str());
}
