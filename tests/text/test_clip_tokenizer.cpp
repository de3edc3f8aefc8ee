// CLIP tokenizer against the reference (transformers' slow CLIPTokenizer), on the
// synthetic vocabulary and goldens of tests/text/make_tokenizer_golden.py, plus
// the Unicode helpers against CPython (unicode_golden.json), errors, the merges
// limit, tag positions, threads and speed. With RASS_SD21_TOKENIZER set to a real
// Stable Diffusion 2.1 `tokenizer/` folder, also known ids of the real vocabulary.
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unordered_set>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/text/clip_tokenizer.hpp"
#include "rass/text/unicode.hpp"

using rass::text::ClipTokenizer;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/text";

nlohmann::json load_json(const std::string& name) {
  std::ifstream f(kDir + "/" + name);
  REQUIRE_MESSAGE(f.good(), "missing fixture " << name);
  return nlohmann::json::parse(f);
}

const nlohmann::json& golden() {
  static const nlohmann::json g = load_json("tokenizer_golden.json");
  return g;
}

// The "added" variant: tiny-clip's vocabulary with added/tokenizer_config.json,
// in a temporary folder removed at exit.
struct AddedDir {
  fs::path dir = fs::temp_directory_path() / ("rass-tok-added-" + std::to_string(::getpid()));
  AddedDir() {
    fs::create_directories(dir);
    for (const char* f : {"vocab.json", "merges.txt"})
      fs::copy_file(kDir + "/tiny-clip/" + f, dir / f, fs::copy_options::overwrite_existing);
    fs::copy_file(kDir + "/added/tokenizer_config.json", dir / "tokenizer_config.json",
                  fs::copy_options::overwrite_existing);
  }
  ~AddedDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string added_dir() {
  static const AddedDir d;
  return d.dir.string();
}

const ClipTokenizer& tok(const std::string& kind) {
  static const ClipTokenizer sd2 = ClipTokenizer::load(kDir + "/tiny-clip");
  static const ClipTokenizer sd1 = ClipTokenizer::load(kDir + "/tiny-clip/vocab.json");
  static const ClipTokenizer added = ClipTokenizer::load(added_dir());
  static const ClipTokenizer quirks =
      ClipTokenizer::load(kDir + "/tiny-clip/vocab.json", kDir + "/quirks/merges.txt");
  if (kind == "sd2") return sd2;
  if (kind == "sd1") return sd1;
  if (kind == "added") return added;
  return quirks;
}

std::vector<int> ints(const nlohmann::json& j) { return j.get<std::vector<int>>(); }

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream f(p, std::ios::binary);
  f << content;
}

template <class F>
rass::Error catch_error(F&& f) {
  try {
    f();
  } catch (const rass::Error& e) {
    return e;
  }
  FAIL("no rass::Error thrown");
  return rass::Error(rass::ExitCode::ok, "");
}

}  // namespace

TEST_CASE("unicode helpers: NFC and str.lower() equal CPython's") {
  const nlohmann::json cases = load_json("unicode_golden.json");
  REQUIRE(cases.size() >= 1000);
  int bad_nfc = 0, bad_lower = 0;
  for (const auto& c : cases) {
    const std::u32string s = rass::text::utf8_decode(c["s"].get<std::string>());
    if (rass::text::utf8_encode(rass::text::nfc(s)) != c["nfc"].get<std::string>()) {
      if (++bad_nfc <= 5) CHECK_MESSAGE(false, "NFC differs for " << c["s"].dump());
    }
    if (rass::text::utf8_encode(rass::text::to_lower(s)) != c["lower"].get<std::string>()) {
      if (++bad_lower <= 5) CHECK_MESSAGE(false, "lower() differs for " << c["s"].dump());
    }
  }
  CHECK(bad_nfc == 0);
  CHECK(bad_lower == 0);
}

TEST_CASE("unicode helpers: UTF-8 decoding replaces maximal subparts like Python") {
  using rass::text::utf8_decode;
  CHECK(utf8_decode("a\xff" "b") == U"a\uFFFDb");
  CHECK(utf8_decode("\xf0\x9f\x90") == U"\uFFFD");             // truncated 4-byte: one
  CHECK(utf8_decode("\xed\xa0\x80") == U"\uFFFD\uFFFD\uFFFD");  // surrogate: three
  CHECK(utf8_decode("\xc0\xaf") == U"\uFFFD\uFFFD");            // overlong
  CHECK(utf8_decode("\xf0\x9f\x90\xb1") == U"\U0001F431");
  for (const auto& c : golden()["invalid_utf8"]) {
    const std::string raw = from_hex(c["hex"].get<std::string>());
    CHECK(rass::text::utf8_encode(utf8_decode(raw)) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("special tokens and pad: SD 2.x config pads with \"!\", SD 1.x defaults to <|endoftext|>") {
  const auto& g = golden();
  const int n = g["vocab_size"].get<int>();
  CHECK(tok("sd2").vocab_size() == n);
  CHECK(tok("sd2").bos() == n - 2);
  CHECK(tok("sd2").eos() == n - 1);
  CHECK(tok("sd2").unk() == n - 1);
  CHECK(tok("sd2").pad() == 0);
  CHECK(tok("sd1").pad() == n - 1);
  CHECK(tok("added").pad() == 0);
  CHECK(tok("added").token_to_id("<rass>") == n);
  for (const auto& [kind, id] : g["reference"]["pad_ids"].items()) CHECK(tok(kind).pad() == id.get<int>());
  CHECK(tok("sd2").token_to_id("!") == 0);
  CHECK(tok("sd2").token_to_id("!</w>") == 256);
  CHECK(tok("sd2").token_to_id("no such token") == -1);
}

TEST_CASE("every golden string encodes exactly as the reference (4 tokenizer configurations)") {
  const auto& g = golden();
  const auto& cases = g["cases"];
  REQUIRE(cases.size() >= 300);
  int checked = 0, failures = 0, ftfy_same = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const auto& sd2 = c["sd2"];
    for (const char* kind : {"sd2", "sd1", "added", "quirks"}) {
      const auto& r = c[kind];
      const std::vector<int> want_ids = ints(r.contains("ids") ? r["ids"] : sd2["ids"]);
      const std::vector<int> ids = tok(kind).encode(text);
      bool ok = ids == want_ids;
      if (std::string(kind) != "quirks") {
        std::vector<int> want = ints(r.contains("padded") ? r["padded"] : sd2["padded"]);
        want.resize(77, tok(kind).pad());
        ok = ok && tok(kind).encode_padded(text) == want;
      }
      if (!ok && ++failures <= 10) CHECK_MESSAGE(false, kind << " differs for " << nlohmann::json(text).dump());
      ++checked;
    }
    if (sd2.contains("tokens")) CHECK(tok("sd2").tokenize(text) == sd2["tokens"].get<std::vector<std::string>>());
    CHECK(tok("sd2").decode(ints(sd2["padded"])) == sd2["decoded"].get<std::string>());
    CHECK(tok("sd2").decode(ints(sd2["padded"]), true) == sd2["decoded_skip"].get<std::string>());
    ftfy_same += c.value("ftfy_same", false);
  }
  CHECK(failures == 0);
  MESSAGE(cases.size() << " strings, " << checked << " encodings checked; the ftfy path of the reference gives the "
                       << "same ids on " << ftfy_same << " of them");
  for (const auto& c : g["invalid_utf8"]) {
    const std::string raw = from_hex(c["hex"].get<std::string>());
    CHECK(tok("sd2").encode(raw) == ints(c["sd2"]["ids"]));
    std::vector<int> want = ints(c["sd2"]["padded"]);
    want.resize(77, 0);
    CHECK(tok("sd2").encode_padded(raw) == want);
  }
}

TEST_CASE("decode of random id sequences equals the reference") {
  for (const auto& c : golden()["decode"]) {
    const ClipTokenizer& t = tok(c.value("kind", std::string("sd2")));
    const std::vector<int> ids = ints(c["ids"]);
    CHECK(t.decode(ids) == c["text"].get<std::string>());
    CHECK(t.decode(ids, true) == c["skip"].get<std::string>());
  }
  CHECK_THROWS_AS(tok("sd2").decode({999999}), rass::Error);
}

TEST_CASE("SD 2.x: \"!\" is the pad token and so an added token of its own") {
  const ClipTokenizer& sd2 = tok("sd2");
  const ClipTokenizer& sd1 = tok("sd1");
  CHECK(sd2.encode("! !! !!!") == std::vector<int>(6, 0));
  CHECK(sd1.encode("! !! !!!")[0] == 256);  // "!</w>"
  CHECK(sd2.encode_padded("").size() == 77);
  CHECK(sd2.encode_padded("")[0] == sd2.bos());
  CHECK(sd2.encode_padded("")[1] == sd2.eos());
  CHECK(sd2.encode_padded("")[2] == 0);
  CHECK(sd1.encode_padded("")[2] == sd1.eos());
}

TEST_CASE("truncation keeps bos, the first max_len - 2 ids and eos") {
  const ClipTokenizer& t = tok("sd2");
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat dog ";
  const std::vector<int> ids = t.encode(text);
  REQUIRE(ids.size() > 75);
  const std::vector<int> p = t.encode_padded(text);
  REQUIRE(p.size() == 77);
  CHECK(p.front() == t.bos());
  CHECK(p.back() == t.eos());
  CHECK(std::equal(ids.begin(), ids.begin() + 75, p.begin() + 1));
  const std::vector<int> p10 = t.encode_padded(text, 10);
  CHECK(p10.size() == 10);
  CHECK(p10.back() == t.eos());
  CHECK(t.encode_padded("cat", 2) == std::vector<int>{t.bos(), t.eos()});
  CHECK_THROWS_AS(t.encode_padded("cat", 1), rass::Error);
}

TEST_CASE("tag positions: each tag's tokens in the padded sequence") {
  const ClipTokenizer& t = tok("sd2");
  auto check_plain = [&](const std::string& prompt) {
    const rass::text::TagPrompt tp = t.tag_positions(prompt);
    CHECK(tp.ids == t.encode_padded(prompt));
    return tp;
  };
  {
    const auto tp = check_plain("cat, dog, green grass");
    REQUIRE(tp.tags.size() == 3);
    CHECK(tp.tags[0].tag == "cat");
    CHECK(tp.tags[0].positions == std::vector<int>{1});
    CHECK(tp.tags[1].tag == "dog");
    CHECK(tp.tags[1].positions == std::vector<int>{3});
    CHECK(tp.tags[2].tag == "green grass");
    CHECK(tp.tags[2].positions == std::vector<int>{5, 6});
  }
  {
    // Empty segments are no tags; whitespace does not matter.
    const auto tp = check_plain(" ,cat,,  DOG ,\tgreen   grass,");
    REQUIRE(tp.tags.size() == 3);
    CHECK(tp.tags[1].tag == "DOG");
    CHECK(tp.tags[0].positions == std::vector<int>{2});
    CHECK(tp.tags[1].positions == std::vector<int>{5});
    CHECK(tp.tags[2].positions == std::vector<int>{7, 8});
  }
  {
    // ")," is one word (here two BPE tokens): it belongs to no tag. SD 2.x's "!"
    // is an added token, inside its tag.
    const std::string prompt = "dog (small), cat!, tree";
    const auto tp = check_plain(prompt);
    REQUIRE(tp.tags.size() == 3);
    const int n0 = static_cast<int>(t.encode("dog (small").size());
    const int sep = static_cast<int>(t.encode("),").size());
    const int n1 = static_cast<int>(t.encode("cat").size());
    const int n2 = static_cast<int>(t.encode("tree").size());
    std::vector<int> want0, want1, want2;
    for (int i = 1; i <= n0; ++i) want0.push_back(i);
    for (int i = 0; i <= n1; ++i) want1.push_back(n0 + sep + 1 + i);  // cat, then "!"
    for (int i = 0; i < n2; ++i) want2.push_back(n0 + sep + n1 + 3 + i);
    CHECK(tp.tags[0].positions == want0);
    CHECK(tp.tags[1].positions == want1);
    CHECK(tp.tags[2].positions == want2);
    CHECK(tp.ids[want1.back()] == 0);
    CHECK(tp.ids[want2.back() + 1] == t.eos());
  }
  {
    // Truncation: tags past max_len - 2 tokens lose their positions.
    std::string prompt;
    for (int i = 0; i < 60; ++i) prompt += "cat, ";
    const auto tp = check_plain(prompt);
    REQUIRE(tp.tags.size() == 60);
    CHECK(tp.tags[37].positions == std::vector<int>{75});
    CHECK(tp.tags[38].positions.empty());
    const auto short_tp = t.tag_positions(prompt, 10);
    CHECK(short_tp.ids == t.encode_padded(prompt, 10));
    CHECK(short_tp.tags[3].positions == std::vector<int>{7});
    CHECK(short_tp.tags[4].positions.empty());
  }
  // Golden tag prompts: tags that start and end with a letter are exactly their
  // own encoding, in place.
  int checked = 0;
  for (const auto& c : golden()["cases"]) {
    const std::string prompt = c["text"].get<std::string>();
    if (prompt.find(", ") == std::string::npos && prompt.find(',') == std::string::npos) continue;
    for (const char* kind : {"sd2", "sd1"}) {
      const ClipTokenizer& k = tok(kind);
      const auto tp = k.tag_positions(prompt);
      CHECK(tp.ids == k.encode_padded(prompt));
      std::vector<int> all;
      for (const auto& tag : tp.tags) all.insert(all.end(), tag.positions.begin(), tag.positions.end());
      CHECK(std::is_sorted(all.begin(), all.end()));
      CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
      for (const auto& tag : tp.tags) {
        const std::u32string u = rass::text::utf8_decode(tag.tag);
        auto alpha = [](char32_t ch) { return rass::text::clip_class(ch) == rass::text::ClipClass::letter; };
        if (u.empty() || !alpha(u.front()) || !alpha(u.back()) || tag.positions.empty()) continue;
        const std::vector<int> own = k.encode(tag.tag);
        if (tag.positions.back() >= 75) continue;  // maybe cut by the truncation
        std::vector<int> at;
        for (int p : tag.positions) at.push_back(tp.ids[p]);
        CHECK(at == own);
        CHECK(tag.positions.back() - tag.positions.front() + 1 == static_cast<int>(own.size()));
        ++checked;
      }
    }
  }
  CHECK(checked > 200);
}

TEST_CASE("merges.txt: only the first 48894 merges count") {
  const fs::path d = fs::temp_directory_path() / ("rass-tok-limit-" + std::to_string(::getpid()));
  fs::create_directories(d);
  fs::copy_file(kDir + "/tiny-clip/vocab.json", d / "vocab.json", fs::copy_options::overwrite_existing);
  for (int filler : {48893, 48894}) {
    std::string merges = "#version: 0.2\n";
    for (int i = 0; i < filler; ++i) merges += "q" + std::to_string(i) + " z\n";
    merges += "q a</w>\n";
    write_file(d / "merges.txt", merges);
    const ClipTokenizer t = ClipTokenizer::load((d / "vocab.json").string());
    const std::vector<std::string> want =
        filler == 48893 ? std::vector<std::string>{"qa</w>"} : std::vector<std::string>{"q", "a</w>"};
    CHECK(t.tokenize("qa") == want);
  }
  fs::remove_all(d);
}

TEST_CASE("a vocabulary of CLIP's size (49408 tokens, 48894 merges) loads quickly") {
  const fs::path d = fs::temp_directory_path() / ("rass-tok-big-" + std::to_string(::getpid()));
  fs::create_directories(d);
  // The byte symbols come from the tiny vocabulary; the rest are made-up merges
  // of two earlier tokens, like a real BPE vocabulary.
  const nlohmann::json tiny = load_json("tiny-clip/vocab.json");
  std::vector<std::string> tokens;
  for (const auto& [token, id] : tiny.items())
    if (id.get<int>() < 512) tokens.push_back(token);
  std::sort(tokens.begin(), tokens.end(), [&](const std::string& a, const std::string& b) {
    return tiny[a].get<int>() < tiny[b].get<int>();
  });
  std::string merges = "#version: 0.2\n";
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(state >> 33);
  };
  std::unordered_set<std::string> seen(tokens.begin(), tokens.end());
  while (tokens.size() < 49406) {
    const std::string& a = tokens[next() % 256];
    const std::string& b = tokens[next() % tokens.size()];
    if (a.size() + b.size() > 24 || !seen.insert(a + b).second) continue;
    merges += a + " " + b + "\n";
    tokens.push_back(a + b);
  }
  tokens.push_back("<|startoftext|>");
  tokens.push_back("<|endoftext|>");
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = static_cast<int>(i);
  write_file(d / "vocab.json", vocab.dump());
  write_file(d / "merges.txt", merges);
  const ClipTokenizer t = ClipTokenizer::load(d.string());
  CHECK(t.vocab_size() == 49408);
  CHECK(t.bos() == 49406);
  CHECK(t.pad() == 49407);
  CHECK(t.encode_padded("a photo of a cat").size() == 77);
  fs::remove_all(d);
}

TEST_CASE("missing or corrupt files are bad input naming the file") {
  const fs::path d = fs::temp_directory_path() / ("rass-tok-bad-" + std::to_string(::getpid()));
  fs::create_directories(d);
  auto expect_bad = [&](const std::string& arg, const std::string& merges, const std::string& name) {
    const rass::Error e = catch_error([&] { ClipTokenizer::load(arg, merges); });
    CHECK(e.code() == rass::ExitCode::bad_input);
    CHECK_MESSAGE(std::string(e.what()).find(name) != std::string::npos, e.what());
  };
  expect_bad((d / "nothing-here").string(), "", "nothing-here");
  expect_bad(d.string(), "", "vocab.json");  // folder without vocab.json
  fs::copy_file(kDir + "/tiny-clip/vocab.json", d / "vocab.json", fs::copy_options::overwrite_existing);
  expect_bad(d.string(), "", "merges.txt");  // folder without merges.txt
  write_file(d / "merges.txt", "#version: 0.2\n\xff\xfe bad\n");
  expect_bad(d.string(), "", "merges.txt");
  write_file(d / "merges.txt", "");
  expect_bad(d.string(), "", "merges.txt");
  fs::copy_file(kDir + "/tiny-clip/merges.txt", d / "merges.txt", fs::copy_options::overwrite_existing);
  CHECK_NOTHROW(ClipTokenizer::load(d.string()));
  write_file(d / "vocab.json", "{\"a\": 1, \"b\": ");
  expect_bad(d.string(), "", "vocab.json");
  write_file(d / "vocab.json", "[1, 2, 3]");
  expect_bad(d.string(), "", "vocab.json");
  write_file(d / "vocab.json", "{\"a\": \"one\"}");
  expect_bad(d.string(), "", "vocab.json");
  fs::copy_file(kDir + "/tiny-clip/vocab.json", d / "vocab.json", fs::copy_options::overwrite_existing);
  write_file(d / "tokenizer_config.json", "{not json");
  expect_bad(d.string(), "", "tokenizer_config.json");
  write_file(d / "tokenizer_config.json", "{\"pad_token\": 5}");
  expect_bad(d.string(), "", "tokenizer_config.json");
  fs::remove(d / "tokenizer_config.json");
  write_file(d / "special_tokens_map.json", "{\"pad_token\": \"!\"");
  expect_bad(d.string(), "", "special_tokens_map.json");
  write_file(d / "special_tokens_map.json", "{\"pad_token\": \"!\"}");
  CHECK(ClipTokenizer::load(d.string()).pad() == 0);
  fs::remove_all(d);
}

TEST_CASE("a vocabulary without the special tokens is bad input naming vocab.json at load") {
  const fs::path d = fs::temp_directory_path() / ("rass-tok-nospecial-" + std::to_string(::getpid()));
  fs::create_directories(d);
  fs::copy_file(kDir + "/tiny-clip/merges.txt", d / "merges.txt", fs::copy_options::overwrite_existing);
  const nlohmann::json full = load_json("tiny-clip/vocab.json");
  auto expect_refused = [&](const std::string& drop, const std::string& config, const std::string& named) {
    CAPTURE(drop);
    nlohmann::json v = full;
    v.erase(drop);
    write_file(d / "vocab.json", v.dump());
    fs::remove(d / "tokenizer_config.json");
    if (!config.empty()) write_file(d / "tokenizer_config.json", config);
    const rass::Error e = catch_error([&] { ClipTokenizer::load(d.string()); });
    CHECK(e.code() == rass::ExitCode::bad_input);
    CHECK_MESSAGE(std::string(e.what()).find((d / "vocab.json").string()) != std::string::npos, e.what());
    CHECK_MESSAGE(std::string(e.what()).find(named) != std::string::npos, e.what());
  };
  expect_refused("<|startoftext|>", "", "bos_token");
  expect_refused("<|endoftext|>", "", "eos_token");  // also unk and pad by default
  expect_refused("!", "{\"pad_token\": \"!\"}", "pad_token");
  expect_refused("!", "{\"unk_token\": \"!\"}", "unk_token");
  // bos given an id by added_tokens_decoder (as transformers saves it) is fine; unk must be in vocab.json.
  nlohmann::json v = full;
  const int bos_id = v["<|startoftext|>"];
  v.erase("<|startoftext|>");
  write_file(d / "vocab.json", v.dump());
  write_file(d / "tokenizer_config.json",
             "{\"added_tokens_decoder\": {\"" + std::to_string(bos_id) + "\": {\"content\": \"<|startoftext|>\"}}}");
  CHECK(ClipTokenizer::load(d.string()).bos() == bos_id);
  fs::remove_all(d);
}

TEST_CASE("threads share one tokenizer and its cache") {
  const ClipTokenizer& t = tok("sd2");
  std::vector<std::string> prompts;
  for (const auto& c : golden()["cases"]) prompts.push_back(c["text"].get<std::string>());
  std::vector<std::vector<int>> want;
  for (const auto& p : prompts) want.push_back(t.encode_padded(p));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      const ClipTokenizer copy = t;  // copies share the implementation
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < prompts.size(); ++i) {
          const size_t j = (i * 7 + static_cast<size_t>(k) * 13) % prompts.size();
          if (copy.encode_padded(prompts[j]) != want[j]) ++mismatches[k];
        }
    });
  for (auto& th : threads) th.join();
  for (int m : mismatches) CHECK(m == 0);
}

// Its own CTest entry (unit.text.sd21_tokenizer); skipped (exit 77) unless
// RASS_SD21_TOKENIZER names a Stable Diffusion 2.1 tokenizer/ folder (vocab.json
// + merges.txt; nothing in ../shared provides one).
TEST_CASE("real Stable Diffusion 2.1 tokenizer (RASS_SD21_TOKENIZER)") {
  const std::string dir = rass::test::require_data("RASS_SD21_TOKENIZER", "", "a Stable Diffusion 2.1 tokenizer/ folder");
  const ClipTokenizer t = ClipTokenizer::load(dir);
  CHECK(t.vocab_size() == 49408);
  CHECK(t.bos() == 49406);
  CHECK(t.eos() == 49407);
  CHECK(t.pad() == 0);  // SD 2.x's special_tokens_map: pad_token "!"
  CHECK(t.encode("a photo of a cat") == std::vector<int>{320, 1125, 539, 320, 2368});
  const std::vector<int> p = t.encode_padded("a photo of a cat");
  CHECK(std::vector<int>(p.begin(), p.begin() + 7) == std::vector<int>{49406, 320, 1125, 539, 320, 2368, 49407});
  CHECK(std::all_of(p.begin() + 7, p.end(), [](int id) { return id == 0; }));
  CHECK(t.encode("cat, dog") == std::vector<int>{2368, 267, 1929});
  CHECK(t.decode(t.encode("a photo of a cat")) == "a photo of a cat");
}
