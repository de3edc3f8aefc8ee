// BERT WordPiece tokenizer against transformers' BertTokenizer (do_lower_case)
// on the strings of tests/nn/make_bert_fixture.py (accents, punctuation, CJK,
// control characters, unknown and over-long words, special tokens, truncation).
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/text/wordpiece.hpp"

using rass::text::WordPiece;

namespace {
const std::string kDir = std::string(RASS_FIXTURES) + "/nn";
}

TEST_CASE("WordPiece equals transformers' BertTokenizer on every golden string") {
  std::ifstream f(kDir + "/sbert_tiny_golden.json");
  REQUIRE(f.good());
  const nlohmann::json g = nlohmann::json::parse(f);
  const WordPiece wp = WordPiece::load(kDir + "/sbert_tiny/vocab.txt");
  const int max_len = g["max_seq_length"].get<int>();
  REQUIRE(g["strings"].size() >= 50);
  for (size_t i = 0; i < g["strings"].size(); ++i) {
    const std::string s = g["strings"][i].get<std::string>();
    CAPTURE(s);
    CHECK(wp.tokenize(s) == g["tokens"][i].get<std::vector<std::string>>());
    CHECK(wp.encode(s, max_len) == g["ids"][i].get<std::vector<int>>());
  }
  CHECK(wp.cls() == 2);
  CHECK(wp.sep() == 3);
  CHECK(wp.pad() == 0);
  CHECK(wp.unk() == 1);
}

TEST_CASE("WordPiece: vocabularies that are not BERT's are refused") {
  rass::test::TempDir tmp;
  std::ofstream(tmp.path + "/v.txt") << "a\nb\n";
  CHECK_THROWS_WITH_AS(WordPiece::load(tmp.path + "/v.txt"), doctest::Contains("lacks one of [UNK]"), rass::Error);
  CHECK_THROWS_WITH_AS(WordPiece::load(tmp.path + "/none.txt"), doctest::Contains("cannot be opened"), rass::Error);
  std::ofstream(tmp.path + "/e.txt") << "";
  CHECK_THROWS_WITH_AS(WordPiece::load(tmp.path + "/e.txt"), doctest::Contains("is empty"), rass::Error);
}
