// SentencePiece unigram tokenizer against the sentencepiece library and
// transformers' T5 tokenizer on the texts of tests/text/make_t5_tokenizer_fixture.py
// (spacing, NFKC, ligatures, unknown characters and their merging, control
// characters, truncation to 120 tokens with </s> and padding).
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/text/sentencepiece.hpp"

using rass::text::SentencePiece;

namespace {
const std::string kDir = std::string(RASS_FIXTURES) + "/text";
nlohmann::json golden() {
  std::ifstream f(kDir + "/t5_tokenizer_golden.json");
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}
}  // namespace

TEST_CASE("SentencePiece equals the sentencepiece library on every golden text") {
  const nlohmann::json g = golden();
  const SentencePiece sp = SentencePiece::load(kDir + "/t5_tiny_spiece.model");
  CHECK(sp.pad_id() == 0);
  CHECK(sp.eos_id() == 1);
  CHECK(sp.unk_id() == 2);
  CHECK(sp.piece(1) == "</s>");
  REQUIRE(g["spm"].size() >= 30);
  for (const auto& e : g["spm"]) {
    const std::string t = e["text"].get<std::string>();
    CAPTURE(t);
    CHECK(bool(sp.encode(t) == e["ids"].get<std::vector<int>>()));
    CHECK(bool(sp.encode_pieces(t) == e["pieces"].get<std::vector<std::string>>()));
  }
}

TEST_CASE("t5_tokens equals transformers' T5 tokenizer as PixArt calls it (120 tokens, </s>, padding)") {
  const nlohmann::json g = golden();
  const SentencePiece sp = SentencePiece::load(kDir + "/t5_tiny_spiece.model");
  REQUIRE(g["hf"].size() >= 10);
  bool saw_truncated = false, saw_empty = false;
  for (const auto& e : g["hf"]) {
    const std::string t = e["text"].get<std::string>();
    CAPTURE(t);
    const rass::text::T5Tokens k = rass::text::t5_tokens(sp, t, 120);
    CHECK(bool(k.ids == e["ids"].get<std::vector<int64_t>>()));
    CHECK(bool(k.mask == e["mask"].get<std::vector<int64_t>>()));
    saw_truncated |= k.truncated;
    saw_empty |= k.pieces == 0;
  }
  CHECK(saw_truncated);
  CHECK(saw_empty);
}

TEST_CASE("SentencePiece: the normalized text") {
  const SentencePiece sp = SentencePiece::load(kDir + "/t5_tiny_spiece.model");
  // Worked by hand from the nmt_nfkc rules: spaces collapse and become U+2581,
  // fullwidth letters and the fi ligature are NFKC-folded, tabs are spaces.
  CHECK(sp.normalize("  a \t b  ") == "\xe2\x96\x81" "a" "\xe2\x96\x81" "b");
  CHECK(sp.normalize("\xef\xbc\xa1\xef\xac\x81") == "\xe2\x96\x81" "Afi");
  CHECK(sp.normalize("") == "");
  CHECK(sp.normalize("   ") == "");
}

TEST_CASE("SentencePiece: malformed model files are refused naming the file") {
  auto refused = [](const std::vector<uint8_t>& bytes, const std::string& what, const std::string& needle = "") {
    try {
      SentencePiece::parse(bytes, "m.model");
      FAIL("accepted: " << what);
    } catch (const rass::Error& e) {
      CAPTURE(e.what());
      CHECK(e.exit_code() == 3);
      CHECK(std::string(e.what()).rfind("m.model: ", 0) == 0);
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  refused({}, "empty");
  refused({0x0a, 0x05, 0x0a}, "a piece longer than the file");
  refused({0x0a, 0x80}, "a truncated length");
  refused({0x0f}, "wire type 7");
  // A BPE model (trainer_spec.model_type = 2) with one piece.
  refused({0x0a, 0x03, 0x0a, 0x01, 'a', 0x12, 0x02, 0x18, 0x02}, "BPE");
  // One piece and unk_id 5.
  refused({0x0a, 0x03, 0x0a, 0x01, 'a', 0x12, 0x02, 0xc0, 0x02, 0x05}, "unk id outside");
  // What the sentencepiece library refuses at load, built piece by piece.
  auto piece = [](const std::string& text, int type, float score = 0) {
    std::vector<uint8_t> body;
    body.push_back(0x0a);
    body.push_back(uint8_t(text.size()));
    for (char c : text) body.push_back(uint8_t(c));
    uint8_t f[4];
    std::memcpy(f, &score, 4);
    body.push_back(0x15);
    body.insert(body.end(), f, f + 4);
    body.push_back(0x18);
    body.push_back(uint8_t(type));
    std::vector<uint8_t> out;
    out.push_back(0x0a);
    out.push_back(uint8_t(body.size()));
    for (uint8_t b : body) out.push_back(b);
    return out;
  };
  auto model = [](std::initializer_list<std::vector<uint8_t>> pieces) {
    std::vector<uint8_t> out;
    for (const auto& p : pieces) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  // eos_id defaults to 2 (the proto's default): "</s>" there.
  CHECK_NOTHROW(SentencePiece::parse(model({piece("<unk>", 2), piece("a", 1), piece("</s>", 3)}), "ok.model"));
  refused(model({piece("a", 1), piece("b", 1), piece("</s>", 3)}), "no unknown-token piece at unk_id 0", "not the model's one unknown-token piece");
  refused(model({piece("<unk>", 2), piece("a", 99), piece("</s>", 3)}), "type 99", "has type 99");
  refused(model({piece("<unk>", 2), piece("a", 1), piece("a", 1)}), "a piece given twice", "repeats piece 1");
  refused(model({piece("<unk>", 2), piece("a", 1, std::nanf("")), piece("</s>", 3)}), "a NaN score", "not finite");
  refused(model({piece("<unk>", 2), piece("<unk2>", 2), piece("</s>", 3)}), "two unknown-token pieces", "but unk_id is 0");
  refused(model({piece("<unk>", 2), piece("\xff", 1), piece("</s>", 3)}), "a piece that is not UTF-8", "is not UTF-8");
  const std::vector<uint8_t> good = rass::read_file_bytes(kDir + "/t5_tiny_spiece.model");
  refused(std::vector<uint8_t>(good.begin(), good.begin() + long(good.size() / 2)), "truncated at half");
}
