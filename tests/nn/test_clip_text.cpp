// CLIPTextModel against the reference (transformers modeling_clip.py) on tiny
// random configs (fixtures from tests/nn/make_clip_fixture.py).
#include "torch_doctest.hpp"
#include "tolerances.hpp"


#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/clip_text.hpp"

using namespace rass;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

TEST_CASE("CLIP text encoder equals transformers to 3e-6 (fp32): gelu/legacy eos and quick_gelu, clip_skip") {
  torch::NoGradGuard no_grad;
  for (std::string name : {"clip_tiny_gelu", "clip_tiny_quick"}) {
    INFO(name);
    nn::ClipTextConfig cfg = model::read_clip_text_config(kDir + "/" + name + "/config.json");
    nn::ClipTextModel clip(cfg);
    auto weights = SafeTensorsFile::open(kDir + "/" + name + "/model.safetensors");
    CHECK(model::load_state_dict(*clip, *weights).loaded == weights->tensors().size());
    clip->eval();
    auto io = SafeTensorsFile::open(kDir + "/" + name + "_io.safetensors");
    auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
    nn::ClipTextOutput o = clip->forward(get("input_ids"));
    auto err = [](const torch::Tensor& a, const torch::Tensor& b) {
      REQUIRE(a.sizes() == b.sizes());
      return (a - b).abs().max().item<double>();
    };
    const double e_last = err(o.last_hidden_state, get("last_hidden_state")), e_pooled = err(o.pooled, get("pooled"));
    const double e_skip = err(clip->forward(get("input_ids"), false, 1).last_hidden_state, get("clip_skip1"));
    MESSAGE(name, " max abs error: last ", e_last, ", pooled ", e_pooled, ", clip_skip1 ", e_skip);
    CHECK(e_last < TOL_CLIP);
    CHECK(e_pooled < TOL_CLIP);
    CHECK(e_skip < TOL_CLIP);
    CHECK(clip->forward(get("input_ids"), true).hidden_states.size() == size_t(cfg.num_hidden_layers + 1));
  }
}

TEST_CASE("too many tokens are refused") {
  nn::ClipTextConfig cfg;
  cfg.vocab_size = 10;
  cfg.hidden_size = 8;
  cfg.intermediate_size = 16;
  cfg.num_hidden_layers = 1;
  cfg.num_attention_heads = 2;
  cfg.max_position_embeddings = 4;
  nn::ClipTextModel clip(cfg);
  CHECK_THROWS(clip->forward(torch::zeros({1, 5}, torch::kLong)));
}
