// The word-level BPE vocabulary of the mini world's tokenizer: merges worked
// by hand on small word lists, and the property it exists for, checked with
// the project's CLIP tokenizer (itself checked against transformers): every
// listed word encodes to one id, other text still tokenizes.
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <set>

#include "rass/core/error.hpp"
#include "rass/scenes/generate.hpp"
#include "rass/text/bpe_vocab.hpp"
#include "rass/text/clip_tokenizer.hpp"

using namespace rass::text;

TEST_CASE("bpe vocab: no words is CLIP's byte-level layout") {
  const BpeVocab v = learn_word_bpe({});
  REQUIRE(v.tokens.size() == 514);
  CHECK(v.tokens[0] == "!");
  CHECK(v.tokens[93] == "~");
  CHECK(v.tokens[94] == "\xC2\xA1");          // U+00A1, the first printable non-ASCII byte
  CHECK(v.tokens[188] == "\xC4\x80");         // U+0100: byte 0, the first remapped one
  CHECK(v.tokens[256] == "!</w>");
  CHECK(v.tokens[512] == "<|startoftext|>");
  CHECK(v.tokens[513] == "<|endoftext|>");
  CHECK(v.merges.empty());
}

TEST_CASE("bpe vocab: merges worked by hand") {
  // "ab", "ac": pairs (a, b</w>) and (a, c</w>) once each; the tie goes to the
  // smaller pair text, so ab</w> first.
  BpeVocab v = learn_word_bpe({"ac", "AB", "ab"});
  REQUIRE(v.merges.size() == 2);
  CHECK(v.merges[0] == std::make_pair(std::string("a"), std::string("b</w>")));
  CHECK(v.merges[1] == std::make_pair(std::string("a"), std::string("c</w>")));
  REQUIRE(v.tokens.size() == 516);
  CHECK(v.tokens[512] == "ab</w>");
  CHECK(v.tokens[513] == "ac</w>");
  // "abc", "abd", "xab": (a,b) three times wins, then (ab,c</w>), (ab,d</w>), (x,ab</w>).
  v = learn_word_bpe({"abc", "abd", "xab"});
  REQUIRE(v.merges.size() == 5);
  CHECK(v.merges[0] == std::make_pair(std::string("a"), std::string("b")));
  CHECK(v.merges[1] == std::make_pair(std::string("a"), std::string("b</w>")));
  CHECK(v.merges[2] == std::make_pair(std::string("ab"), std::string("c</w>")));
  CHECK(v.merges[3] == std::make_pair(std::string("ab"), std::string("d</w>")));
  CHECK(v.merges[4] == std::make_pair(std::string("x"), std::string("ab</w>")));
  CHECK_THROWS_AS(learn_word_bpe({"two words"}), rass::Error);
  CHECK_THROWS_AS(learn_word_bpe({"caf\xC3\xA9"}), rass::Error);
}

TEST_CASE("bpe vocab: every scene word is one token of the written tokenizer") {
  rass::test::TempDir dir;
  const std::vector<std::string> words = rass::scenes::scene_words();
  REQUIRE(words.size() >= 30);
  write_clip_tokenizer(learn_word_bpe(words), dir.path, "rass-mini-words");
  const ClipTokenizer tok = ClipTokenizer::load(dir.path);
  std::set<int> ids;
  for (const std::string& w : words) {
    const std::vector<int> e = tok.encode(w);
    REQUIRE_MESSAGE(e.size() == 1, w);
    CHECK(tok.tokenize(w)[0] == w + "</w>");
    ids.insert(e[0]);
  }
  CHECK(ids.size() == words.size());
  // A tag prompt: one token per tag, the comma its own token.
  const std::vector<int> p = tok.encode("sky, building, windowpane");
  CHECK(p.size() == 5);
  CHECK(tok.tag_positions("sky, building, windowpane").tags.at(2).positions == std::vector<int>{5});
  // Words outside the list still tokenize, into several symbols.
  CHECK(tok.encode("skyscraper").size() > 1);
  CHECK(tok.bos() == tok.token_to_id("<|startoftext|>"));
  CHECK(tok.pad() == 0);  // "!", as SD 2.x's tokenizer
}
