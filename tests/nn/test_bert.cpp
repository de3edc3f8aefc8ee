// BertModel and the sentence-transformers pipeline (mean pooling, Normalize)
// against transformers 4.36.2 on a tiny random model (fixtures from
// tests/nn/make_bert_fixture.py), the padded-batch attention mask, the
// Sentence-BERT tag similarity, and refused folders.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/sbert.hpp"
#include "rass/model/sbert_register.hpp"
#include "rass/text/tag_similarity.hpp"
#include "test_support.hpp"

using namespace rass;
namespace fs = std::filesystem;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

TEST_CASE("Sentence-BERT embeddings equal the reference (mean pooling, normalize)") {
  auto enc = model::SentenceEncoder::load(kDir + "/sbert_tiny");
  CHECK(enc->pooling() == "mean");
  CHECK(enc->normalizes());
  std::ifstream f(kDir + "/sbert_tiny_golden.json");
  const nlohmann::json g = nlohmann::json::parse(f);
  const std::vector<std::string> strings = g["strings"].get<std::vector<std::string>>();
  for (size_t i = 0; i < strings.size(); ++i) CHECK(enc->token_ids(strings[i]) == g["ids"][i].get<std::vector<int>>());
  auto io = SafeTensorsFile::open(kDir + "/sbert_tiny_io.safetensors");
  const torch::Tensor want = model::to_tensor(*io->find("embeddings"), io->path());
  const torch::Tensor got = enc->encode(strings);
  REQUIRE(got.sizes() == want.sizes());
  const double err = (got - want).abs().max().item<double>();
  MESSAGE("Sentence-BERT embedding max abs error ", err);
  CHECK(err < TOL_BERT);
}

TEST_CASE("BertModel masks padding as the reference (a padded batch)") {
  torch::NoGradGuard no_grad;
  auto io = SafeTensorsFile::open(kDir + "/sbert_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  std::ifstream cf(kDir + "/sbert_tiny/config.json");
  const nlohmann::json c = nlohmann::json::parse(cf);
  nn::BertConfig cfg;
  cfg.vocab_size = c["vocab_size"];
  cfg.hidden_size = c["hidden_size"];
  cfg.num_hidden_layers = c["num_hidden_layers"];
  cfg.num_attention_heads = c["num_attention_heads"];
  cfg.intermediate_size = c["intermediate_size"];
  cfg.max_position_embeddings = c["max_position_embeddings"];
  nn::BertModel bert(cfg);
  auto w = SafeTensorsFile::open(kDir + "/sbert_tiny/model.safetensors");
  CHECK(model::load_state_dict(*bert, *w).complete());
  bert->eval();
  const torch::Tensor mask = get("batch_mask"), want = get("batch_hidden");
  const torch::Tensor got = bert->forward(get("batch_ids"), mask);
  // Padded positions' outputs are meaningless but computed by both; compare the real tokens.
  const torch::Tensor m = mask.unsqueeze(-1).to(torch::kFloat);
  const double err = ((got - want).abs() * m).max().item<double>();
  MESSAGE("BertModel padded batch max abs error ", err);
  CHECK(err < TOL_BERT);
}

TEST_CASE("Sentence-BERT tag similarity: cosine, best synonym") {
  model::register_sbert_similarity();
  auto sim = text::make_sbert_similarity(kDir + "/sbert_tiny", {"lake", "house, home", "sky"}, "cpu");
  auto enc = model::SentenceEncoder::load(kDir + "/sbert_tiny");
  const torch::Tensor e = enc->encode({"pond", "lake", "house", "home", "sky"});
  auto cos = [&](int a, int b) { return (e[a] * e[b]).sum().item<double>(); };  // normalized embeddings
  const std::vector<double> s = sim->scores("pond");
  REQUIRE(s.size() == 3);
  CHECK(s[0] == doctest::Approx(cos(0, 1)).epsilon(1e-6));
  CHECK(s[1] == doctest::Approx(std::max(cos(0, 2), cos(0, 3))).epsilon(1e-6));
  CHECK(s[2] == doctest::Approx(cos(0, 4)).epsilon(1e-6));
  CHECK(sim->scores("lake")[0] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(sim->name() == "sbert");
}

TEST_CASE("Sentence-BERT folders: pytorch_model.bin only, missing parts") {
  test::TempDir tmp;
  fs::copy(kDir + "/sbert_tiny", tmp.path + "/m", fs::copy_options::recursive);
  fs::rename(tmp.path + "/m/model.safetensors", tmp.path + "/m/pytorch_model.bin");
  CHECK_THROWS_WITH_AS(model::SentenceEncoder::load(tmp.path + "/m"), doctest::Contains("never unpickles"), Error);
  fs::remove(tmp.path + "/m/pytorch_model.bin");
  CHECK_THROWS_WITH_AS(model::SentenceEncoder::load(tmp.path + "/m"), doctest::Contains("model.safetensors: missing"),
                       Error);
  fs::copy(kDir + "/sbert_tiny/model.safetensors", tmp.path + "/m/model.safetensors");
  std::ofstream(tmp.path + "/m/1_Pooling/config.json") << R"({"pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": true})";
  CHECK_THROWS_WITH_AS(model::SentenceEncoder::load(tmp.path + "/m"), doctest::Contains("exactly one of"), Error);
}
