// AutoencoderKL against the reference (diffusers v0.25.1) on a tiny random
// config: fixture from tests/nn/make_vae_fixture.py.
#include "torch_doctest.hpp"
#include "tolerances.hpp"


#include <cstdlib>
#include <cstring>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/blocks.hpp"
#include "rass/nn/vae.hpp"

using namespace rass;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

static torch::Tensor get(const SafeTensorsFile& f, const char* name) {
  const TensorView* v = f.find(name);
  REQUIRE_MESSAGE(v, "fixture lacks ", name);
  return model::to_tensor(*v, f.path());
}

static double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

// The fixture's tiny VAE with its weights, in eval mode.
static nn::AutoencoderKL tiny_vae() {
  nn::AutoencoderKL vae(model::read_vae_config(kDir + "/vae_tiny/config.json"));
  model::load_state_dict(*vae, *SafeTensorsFile::open(kDir + "/vae_tiny/diffusion_pytorch_model.safetensors"));
  vae->eval();
  return vae;
}

TEST_CASE("VAE encode and decode equal diffusers to 3e-6 and 5e-6 (fp32)") {
  torch::NoGradGuard no_grad;
  nn::VaeConfig cfg = model::read_vae_config(kDir + "/vae_tiny/config.json");
  CHECK((cfg.block_out_channels == std::vector<int64_t>{8, 16, 16}));
  nn::AutoencoderKL vae(cfg);
  auto weights = SafeTensorsFile::open(kDir + "/vae_tiny/diffusion_pytorch_model.safetensors");
  model::LoadReport rep = model::load_state_dict(*vae, *weights);
  CHECK(rep.complete());
  CHECK(rep.loaded == weights->tensors().size());
  vae->eval();
  auto io = SafeTensorsFile::open(kDir + "/vae_tiny_io.safetensors");
  nn::LatentDistribution d = vae->encode(get(*io, "x"));
  MESSAGE("encode max abs error: mean ", max_abs(d.mean, get(*io, "mean")), ", logvar ", max_abs(d.logvar, get(*io, "logvar")));
  CHECK(max_abs(d.mean, get(*io, "mean")) < TOL_VAE_ENC);
  CHECK(max_abs(d.logvar, get(*io, "logvar")) < TOL_VAE_ENC);
  torch::Tensor dec = vae->decode(get(*io, "z"));
  CHECK(max_abs(dec, get(*io, "decoded")) < TOL_VAE_DEC);
  MESSAGE("decode max abs error ", max_abs(dec, get(*io, "decoded")));
}

// The math path (LibTorch 1.13) splits the queries when their scores would
// pass the budget: with a budget of a few rows the mid-block's attention goes
// in uneven chunks, and the output is still diffusers'. (LibTorch 2.x takes
// the fused kernel here, and the case checks that one.)
TEST_CASE("VAE decode equals diffusers with the attention's queries in chunks") {
  torch::NoGradGuard no_grad;
  nn::AutoencoderKL vae = tiny_vae();
  auto io = SafeTensorsFile::open(kDir + "/vae_tiny_io.safetensors");
  const torch::Tensor z = get(*io, "z");
  const int64_t tokens = z.size(2) * z.size(3);
  REQUIRE(tokens > 3);
  struct Budget {  // restored however the case ends
    int64_t saved = nn::attention_scores_budget();
    ~Budget() { nn::set_attention_scores_budget(saved); }
  } restore_budget;
  nn::set_attention_scores_budget(3 * tokens * int64_t(sizeof(float)) * z.size(0));  // three query rows a chunk
  const torch::Tensor dec = vae->decode(z);
  nn::set_attention_scores_budget(restore_budget.saved);
  CHECK(max_abs(dec, get(*io, "decoded")) < TOL_VAE_DEC);
  CHECK(max_abs(dec, vae->decode(z)) < 1e-6);
}

TEST_CASE("loading refuses a missing or mis-shaped tensor, naming it") {
  nn::VaeConfig cfg = model::read_vae_config(kDir + "/vae_tiny/config.json");
  auto weights = SafeTensorsFile::open(kDir + "/vae_tiny/diffusion_pytorch_model.safetensors");
  cfg.latent_channels = 8;  // every quant conv and conv_in/out changes shape
  nn::AutoencoderKL wrong(cfg);
  try {
    model::load_state_dict(*wrong, *weights);
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 3);
    CHECK(std::string(e.what()).find("quant_conv.weight") != std::string::npos);
  }
  cfg.latent_channels = 4;
  cfg.mid_block_add_attention = false;  // the file's attention weights become unexpected
  nn::AutoencoderKL no_attn(cfg);
  model::LoadReport r = model::load_state_dict(*no_attn, *weights, false);
  CHECK(!r.unexpected.empty());
  CHECK(r.unexpected[0].find("attentions") != std::string::npos);
  CHECK_THROWS_AS(model::load_state_dict(*no_attn, *weights, true), Error);
}

TEST_CASE("bf16 on CPU runs and stays close to fp32") {
  torch::NoGradGuard no_grad;
  nn::AutoencoderKL vae = tiny_vae();
  auto io = SafeTensorsFile::open(kDir + "/vae_tiny_io.safetensors");
  torch::Tensor z = get(*io, "z"), want = get(*io, "decoded");
  vae->to(torch::kBFloat16);
  torch::Tensor dec = vae->decode(z.to(torch::kBFloat16)).to(torch::kFloat);
  // bf16 keeps 8 bits of mantissa: errors of a few 1e-2 on values of order 1.
  CHECK(max_abs(dec, want) < 0.15);
  CHECK(max_abs(dec, want) > 0);  // it really ran in bf16
}

TEST_CASE("VAE files with diffusers' deprecated attention names (query/key/value/proj_attn, 1x1 conv shapes) load") {
  torch::NoGradGuard no_grad;
  auto weights = SafeTensorsFile::open(kDir + "/vae_tiny/diffusion_pytorch_model.safetensors");
  // Rewrite the fixture the way the SD 2.x hub VAE stores its mid-block attention.
  std::vector<TensorToWrite> out;
  std::vector<int64_t> conv_shape;
  for (const TensorView& t : weights->tensors()) {
    std::string name = t.name;
    std::vector<int64_t> shape = t.shape;
    for (auto [from, to] : {std::pair<const char*, const char*>{".to_q.", ".query."}, {".to_k.", ".key."},
                            {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}}) {
      const size_t p = name.find(from);
      if (p != std::string::npos) {
        name = name.substr(0, p) + to + name.substr(p + std::strlen(from));
        if (shape.size() == 2) shape = {shape[0], shape[1], 1, 1};
      }
    }
    out.push_back({name, t.dtype, shape, t.data, t.nbytes});
  }
  char tmpl[] = "/tmp/rass-vae-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_safetensors(dir + "/old.safetensors", out);
  nn::AutoencoderKL vae(model::read_vae_config(kDir + "/vae_tiny/config.json"));
  auto old = SafeTensorsFile::open(dir + "/old.safetensors");
  REQUIRE(old->find("encoder.mid_block.attentions.0.query.weight"));
  CHECK(model::load_state_dict(*vae, *old).complete());
  vae->eval();
  auto io = SafeTensorsFile::open(kDir + "/vae_tiny_io.safetensors");
  CHECK(max_abs(vae->decode(get(*io, "z")), get(*io, "decoded")) < TOL_VAE_DEC);
  std::system(("rm -rf " + dir).c_str());
}
