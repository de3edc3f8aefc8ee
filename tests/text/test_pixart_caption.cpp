// PixArt's caption cleaning (T5Embedder.text_preprocessing: clean_caption
// twice) against the reference run by tests/text/make_t5_tokenizer_fixture.py
// (with ftfy and BeautifulSoup) on captions that exercise each of its steps.
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/text/pixart_caption.hpp"

using rass::text::pixart_text_preprocessing;

TEST_CASE("pixart_text_preprocessing equals PixArt's clean_caption (twice) on every golden caption") {
  std::ifstream f(std::string(RASS_FIXTURES) + "/text/t5_tokenizer_golden.json");
  REQUIRE(f.good());
  const nlohmann::json g = nlohmann::json::parse(f);
  REQUIRE(g["clean"].size() >= 30);
  for (const auto& e : g["clean"]) {
    const std::string t = e["text"].get<std::string>();
    CAPTURE(t);
    CHECK(pixart_text_preprocessing(t) == e["cleaned"].get<std::string>());
  }
}

TEST_CASE("clean_caption's URL and file-name steps equal the regular expressions they replace") {
  // Random strings over the characters those patterns turn on.
  const std::wstring alphabet = L"ab.c/-@:_ 1%wxhtpsmoneruigvjdfk4\u00e9\u00a0";
  uint64_t state = 20261206;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return uint32_t(state >> 33);
  };
  const std::vector<std::wstring> seeds = {L" . ", L"  .", L". ", L"\t.\n", L"http://", L"https:", L"www:", L".com", L".co", L".org/", L".it", L".png",
                                           L".jpeg", L".jpg", L"@", L"/", L"-"};
  for (int t = 0; t < 4000; ++t) {
    std::wstring s;
    const size_t len = next() % 40;
    while (s.size() < len) {
      if (next() % 4 == 0) s += seeds[next() % seeds.size()];
      else s += alphabet[next() % alphabet.size()];
    }
    CAPTURE(t);
    CHECK(bool(rass::text::caption_detail::remove_urls(s, false) == rass::text::caption_detail::remove_urls_regex(s, false)));
    CHECK(bool(rass::text::caption_detail::remove_urls(s, true) == rass::text::caption_detail::remove_urls_regex(s, true)));
    CHECK(bool(rass::text::caption_detail::remove_file_names(s) == rass::text::caption_detail::remove_file_names_regex(s)));
    CHECK(bool(rass::text::caption_detail::collapse_spaced_dots(s) ==
               rass::text::caption_detail::collapse_spaced_dots_regex(s)));
  }
}

TEST_CASE("lower_strip is str.lower().strip()") {
  CHECK(rass::text::lower_strip("  A Cat\t\n") == "a cat");
  CHECK(rass::text::lower_strip("\xc3\x89T\xc3\x89 \xe2\x80\x83") == "\xc3\xa9t\xc3\xa9");  // ÉTÉ, em space
  CHECK(rass::text::lower_strip("") == "");
}

TEST_CASE("pixart_clean_caption: long captions do not exhaust the stack") {
  // 16 KiB (rass-t5's limit) of one word, of a dotted name, of digits and
  // letters, of words: every regex runs over them, some once per character.
  const std::string word(16384, 'a');
  CHECK(rass::text::pixart_clean_caption(word) == word);
  std::string dotted, mixed, words;
  while (dotted.size() < 16384) dotted += "ab.";
  while (mixed.size() < 16384) mixed += "a1";
  while (words.size() < 16384) words += "a cat. ";
  CHECK(rass::text::pixart_clean_caption(dotted + "com/x").empty());  // a URL, as Python's re sees it
  CHECK(rass::text::pixart_clean_caption(dotted).size() > 16384);      // "ab. ab. ...": spaces after the dots
  CHECK(rass::text::pixart_clean_caption(mixed + "-").size() < 10);
  CHECK(rass::text::pixart_clean_caption(words).size() > 10000);
  CHECK(rass::text::pixart_clean_caption("a" + std::string(16300, ' ') + "b") == "a b");
}
