// The Mask2Former head against Mask2Former's own modules (fixture from
// tests/nn/make_mask2former_fixture.py, run with tests/nn/mask2former_reference.py):
// the MSDeformAttn core and module, the pixel decoder, the transformer
// decoder, the whole head and semantic_inference, on small random configs;
// the state-dict names of the tiny and of the released configuration; the
// config reader.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/nn/mask2former_decoder.hpp"
#include "rass/nn/mask_former_head.hpp"
#include "rass/nn/ms_deform_attn.hpp"
#include "rass/nn/msdeform_pixel_decoder.hpp"

using namespace rass;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

torch::Tensor get(const SafeTensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  REQUIRE_MESSAGE(v, "fixture lacks ", name);
  return model::to_tensor(*v, f.path());
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot open ", path);
  return nlohmann::json::parse(in);
}

nn::MaskFormerHead load_head(const std::string& name) {
  const nn::MaskFormerHeadConfig c = nn::read_mask_former_head_config(read_json(kDir + "/" + name + ".json"), name);
  nn::MaskFormerHead head(c);
  auto weights = SafeTensorsFile::open(kDir + "/" + name + ".safetensors");
  const model::LoadReport rep = model::load_state_dict(*head, *weights);  // strict: every name must match
  CHECK(rep.loaded == weights->tensors().size());
  head->eval();
  return head;
}

std::vector<torch::Tensor> features(const SafeTensorsFile& io) {
  return {get(io, "feat.res2"), get(io, "feat.res3"), get(io, "feat.res4"), get(io, "feat.res5")};
}

}  // namespace

TEST_CASE("MSDeformAttn core and module equal Mask2Former's (fp32)") {
  torch::NoGradGuard no_grad;
  auto io = SafeTensorsFile::open(kDir + "/mask2former_tiny_io.safetensors");
  nn::SpatialShapes shapes;
  for (const auto& hw : nlohmann::json::parse(io->metadata().at("core_shapes"))) shapes.push_back({hw[0], hw[1]});
  REQUIRE(shapes.size() == 3);
  const torch::Tensor core = nn::ms_deform_attn_core(get(*io, "core.value"), shapes, get(*io, "core.locations"),
                                                     get(*io, "core.weights"));
  const double e_core = max_abs(core, get(*io, "core.out"));
  MESSAGE("core max abs error ", e_core);
  CHECK(e_core < TOL_M2F_CORE);

  const auto m = nlohmann::json::parse(io->metadata().at("msda"));
  nn::MSDeformAttn msda(m["d_model"].get<int64_t>(), m["n_levels"].get<int64_t>(), m["n_heads"].get<int64_t>(),
                        m["n_points"].get<int64_t>());
  model::load_state_dict(*msda, *io, true, "msda.param.");
  const torch::Tensor out = msda(get(*io, "msda.query"), get(*io, "msda.ref"), get(*io, "msda.input"), shapes);
  const double e_mod = max_abs(out, get(*io, "msda.out"));
  MESSAGE("MSDeformAttn module max abs error ", e_mod);
  CHECK(e_mod < TOL_M2F_CORE);
}

TEST_CASE("Mask2Former pixel decoder, transformer decoder, head and semantic inference equal the reference (fp32)") {
  torch::NoGradGuard no_grad;
  nn::MaskFormerHead head = load_head("mask2former_tiny");
  auto io = SafeTensorsFile::open(kDir + "/mask2former_tiny_io.safetensors");
  // The fixture's attention masks have rows the reference unmasks and rows
  // it keeps partly masked: both paths are compared below.
  const auto rows = nlohmann::json::parse(io->metadata().at("masked_rows"));
  CHECK(rows[0][0].get<int>() > 0);
  CHECK(rows[0][1].get<int>() > 0);

  SUBCASE("pixel decoder") {
    const nn::PixelDecoderOutput px = head->pixel_decoder->forward_features(features(*io));
    REQUIRE(px.multi_scale_features.size() == 3);
    double e = max_abs(px.mask_features, get(*io, "pix.mask_features"));
    for (int i = 0; i < 3; ++i)
      e = std::max(e, max_abs(px.multi_scale_features[i], get(*io, "pix.ms" + std::to_string(i))));
    MESSAGE("pixel decoder max abs error ", e);
    CHECK(e < TOL_M2F_PIXEL);
  }
  SUBCASE("transformer decoder on the reference's pixel-decoder outputs") {
    const nn::MaskFormerOutput o = head->predictor->forward(
        {get(*io, "pix.ms0"), get(*io, "pix.ms1"), get(*io, "pix.ms2")}, get(*io, "pix.mask_features"));
    double e = std::max(max_abs(o.pred_logits, get(*io, "pred_logits")), max_abs(o.pred_masks, get(*io, "pred_masks")));
    REQUIRE(o.aux.size() == 4);  // dec_layers 5: the bare queries and 3 layers before the last
    for (size_t i = 0; i < o.aux.size(); ++i) {
      e = std::max(e, max_abs(o.aux[i].first, get(*io, "aux." + std::to_string(i) + ".logits")));
      e = std::max(e, max_abs(o.aux[i].second, get(*io, "aux." + std::to_string(i) + ".masks")));
    }
    MESSAGE("transformer decoder max abs error ", e);
    CHECK(e < TOL_M2F_DECODER);
  }
  SUBCASE("whole head and semantic inference") {
    const nn::MaskFormerOutput o = head(features(*io));
    double e = std::max(max_abs(o.pred_logits, get(*io, "pred_logits")), max_abs(o.pred_masks, get(*io, "pred_masks")));
    for (size_t i = 0; i < o.aux.size(); ++i)
      e = std::max(e, max_abs(o.aux[i].second, get(*io, "aux." + std::to_string(i) + ".masks")));
    MESSAGE("head max abs error ", e);
    CHECK(e < TOL_M2F_HEAD);
    const torch::Tensor ref_sem = get(*io, "semseg");
    const double e_sem = max_abs(nn::semantic_inference(get(*io, "pred_logits"), get(*io, "pred_masks")), ref_sem);
    const double e_sem_head = max_abs(nn::semantic_inference(o.pred_logits, o.pred_masks), ref_sem);
    MESSAGE("semantic inference max abs error ", e_sem, " (on the head's own outputs ", e_sem_head, ")");
    CHECK(e_sem < TOL_M2F_SEMSEG);
    CHECK(e_sem_head < TOL_M2F_HEAD);
  }
}

TEST_CASE("Mask2Former head with pre_norm and no predictor input projection equals the reference") {
  torch::NoGradGuard no_grad;
  nn::MaskFormerHead head = load_head("mask2former_prenorm");
  auto tiny_io = SafeTensorsFile::open(kDir + "/mask2former_tiny_io.safetensors");
  auto io = SafeTensorsFile::open(kDir + "/mask2former_prenorm_io.safetensors");
  const nn::MaskFormerOutput o = head(features(*tiny_io));
  const double e = std::max(max_abs(o.pred_logits, get(*io, "pred_logits")), max_abs(o.pred_masks, get(*io, "pred_masks")));
  MESSAGE("pre-norm head max abs error ", e);
  CHECK(e < TOL_M2F_HEAD);
}

TEST_CASE("Mask2Former head parameter names and shapes equal the official state dict (tiny and released configs)") {
  const nlohmann::json keys = read_json(kDir + "/mask2former_keys.json");
  auto names_of = [](torch::nn::Module& m) {
    std::map<std::string, std::vector<int64_t>> r;
    for (const auto& p : m.named_parameters()) r[p.key()] = p.value().sizes().vec();
    for (const auto& b : m.named_buffers()) r[b.key()] = b.value().sizes().vec();
    return r;
  };
  auto expected = [&](const char* which) {
    std::map<std::string, std::vector<int64_t>> r;
    for (const auto& item : keys[which].items()) r[item.key()] = item.value().get<std::vector<int64_t>>();
    return r;
  };
  nn::MaskFormerHead tiny(nn::read_mask_former_head_config(read_json(kDir + "/mask2former_tiny.json")));
  CHECK(names_of(*tiny) == expected("tiny"));
  // The defaults are the released configuration: same keys, same shapes, same count.
  nn::MaskFormerHead released{nn::MaskFormerHeadConfig{}};
  const auto ours = names_of(*released), theirs = expected("released");
  for (const auto& [k, shape] : theirs) CHECK_MESSAGE(ours.count(k), "missing ", k);
  for (const auto& [k, shape] : ours) CHECK_MESSAGE(theirs.count(k), "unexpected ", k);
  CHECK(ours == theirs);
  int64_t n = 0;
  for (const auto& p : released->parameters()) n += p.numel();
  CHECK(n == keys["released_params"].get<int64_t>());
  CHECK(n == 20074583);
}

TEST_CASE("Mask2Former head trains: gradients reach the deformable attention and the queries") {
  nn::MaskFormerHead head = load_head("mask2former_tiny");
  head->train();
  auto io = SafeTensorsFile::open(kDir + "/mask2former_tiny_io.safetensors");
  const nn::MaskFormerOutput o = head(features(*io));
  const auto params = head->named_parameters();
  (o.pred_masks.sigmoid().mean() + o.pred_logits.logsumexp(-1).mean()).backward();
  for (const char* name : {"pixel_decoder.transformer.encoder.layers.0.self_attn.sampling_offsets.weight",
                           "pixel_decoder.transformer.level_embed", "predictor.query_feat.weight",
                           "predictor.transformer_cross_attention_layers.0.multihead_attn.in_proj_weight"}) {
    const torch::Tensor* p = params.find(name);
    REQUIRE_MESSAGE(p, name);
    REQUIRE(p->grad().defined());
    CHECK_MESSAGE(p->grad().abs().sum().item<double>() > 0, name);
    CHECK(torch::isfinite(p->grad()).all().item<bool>());
  }
}

TEST_CASE("Mask2Former head config: defaults, round trip, errors naming the key") {
  const nn::MaskFormerHeadConfig d = nn::read_mask_former_head_config(nlohmann::json::object());
  CHECK(nn::to_json(d) == nn::to_json(nn::MaskFormerHeadConfig{}));
  const nlohmann::json tiny = read_json(kDir + "/mask2former_tiny.json");
  const nn::MaskFormerHeadConfig t = nn::read_mask_former_head_config(tiny);
  CHECK(t.hidden_dim == 32);
  CHECK(t.conv_dim == 64);
  CHECK(t.in_channels == std::vector<int>{24, 40, 56, 72});
  CHECK(nn::to_json(nn::read_mask_former_head_config(nn::to_json(t))) == nn::to_json(t));
  for (const auto& item : tiny.items()) CHECK(nn::to_json(t)[item.key()] == item.value());

  auto fails = [](nlohmann::json j, const std::string& needle) {
    try {
      nn::read_mask_former_head_config(j, "head.json");
      FAIL_CHECK("accepted ", j.dump());
    } catch (const Error& e) {
      CHECK(e.exit_code() == 3);
      const std::string what = e.what();
      CHECK_MESSAGE(what.find("head.json") != std::string::npos, what);
      CHECK_MESSAGE(what.find(needle) != std::string::npos, what);
    }
  };
  fails({{"num_clases", 150}}, "num_clases");
  fails({{"num_classes", "150"}}, "num_classes");
  fails({{"num_classes", 1.5}}, "num_classes");
  fails({{"num_queries", 0}}, "num_queries");
  fails({{"pre_norm", 1}}, "pre_norm");
  fails({{"nheads", 7}}, "nheads");
  fails({{"dec_layers", 1000000}}, "dec_layers");  // built before the weights are checked
  fails({{"enc_layers", 5000}}, "enc_layers");
  fails({{"enc_nheads", 3}}, "enc_nheads");
  fails({{"norm_groups", 24}}, "norm_groups");
  fails({{"in_channels", {512, 512, 512}}}, "in_channels");
  fails({{"in_channels", {512, -1, 512, 512}}}, "in_channels");
  fails({{"in_strides", {4, 8, 12, 32}}}, "in_strides");
  fails({{"in_strides", {8, 4, 16, 32}}}, "in_strides");
  fails({{"deformable_levels", 5}}, "deformable_levels");
  fails({{"common_stride", 16}}, "common_stride");
  // Stride 16 at the encoder's finest input needs two FPN levels below it; there is one.
  fails({{"in_strides", {4, 16, 32, 64}}}, "common_stride");
  fails({{"in_channels", {512, 512}}, {"in_strides", {8, 16}}, {"deformable_levels", 2}, {"common_stride", 8}},
        "needs 3");
  fails(nlohmann::json::array(), "JSON object");
}

TEST_CASE("Mask2Former head: a fresh head has the official initial sampling offsets and finite outputs") {
  torch::NoGradGuard no_grad;
  nn::MaskFormerHead head(nn::read_mask_former_head_config(read_json(kDir + "/mask2former_tiny.json")));
  head->eval();
  const auto params = head->named_parameters();
  // _reset_parameters: head h starts its points on the ray at angle 2*pi*h/H,
  // scaled so the larger coordinate is 1, point p at distance p + 1; zero weights.
  const torch::Tensor* b = params.find("pixel_decoder.transformer.encoder.layers.1.self_attn.sampling_offsets.bias");
  REQUIRE(b);
  const torch::Tensor ring = b->view({4, 3, 4, 2});  // enc_nheads 4, 3 levels, 4 points, (x, y)
  CHECK(ring[0][2][0][0].item<float>() == doctest::Approx(1.0));
  CHECK(ring[0][2][0][1].item<float>() == doctest::Approx(0.0));
  CHECK(ring[1][0][2][1].item<float>() == doctest::Approx(3.0));  // 90 degrees: (0, 1) * 3
  CHECK(std::abs(ring[1][0][2][0].item<float>()) < 1e-6);
  CHECK(ring[2][1][3][0].item<float>() == doctest::Approx(-4.0));  // 180 degrees: (-1, 0) * 4
  CHECK(params.find("pixel_decoder.transformer.encoder.layers.1.self_attn.sampling_offsets.weight")->abs().max().item<float>() == 0);
  CHECK(params.find("pixel_decoder.transformer.encoder.layers.1.self_attn.attention_weights.bias")->abs().max().item<float>() == 0);
  std::vector<torch::Tensor> f;
  const int in[] = {24, 40, 56, 72};
  for (int i = 0; i < 4; ++i) f.push_back(torch::randn({1, in[i], 32 >> i, 24 >> i}));
  const nn::MaskFormerOutput o = head(f);
  CHECK(o.pred_logits.sizes() == torch::IntArrayRef{1, 7, 6});
  CHECK(o.pred_masks.sizes() == torch::IntArrayRef{1, 7, 32, 24});
  CHECK(torch::isfinite(o.pred_masks).all().item<bool>());
  CHECK(torch::isfinite(o.pred_logits).all().item<bool>());
}

TEST_CASE("Mask2Former head refuses features of the wrong number or channels") {
  nn::MaskFormerHead head(nn::read_mask_former_head_config(read_json(kDir + "/mask2former_tiny.json")));
  auto f = [](int64_t c, int64_t s) { return torch::zeros({1, c, 32 / s, 24 / s}); };
  CHECK_THROWS_AS(head->forward({f(24, 1), f(40, 2), f(56, 4)}), Error);
  CHECK_THROWS_AS(head->forward({f(24, 1), f(40, 2), f(57, 4), f(72, 8)}), Error);
}
