// WordNet reader and Wu-Palmer similarity against NLTK (the goldens of
// tests/text/make_wordnet_golden.py, written by NLTK 3.10.4 reading the same
// Debian wordnet-base files), plus its errors on damaged files. The NLTK
// comparison needs /usr/share/wordnet (or RASS_WORDNET_DIR) and skips without it.
#include <doctest/doctest.h>

#include "test_support.hpp"

#include <cmath>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "rass/core/error.hpp"
#include "rass/text/wordnet.hpp"

using rass::text::WordNet;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream ss(s);
  while (std::getline(ss, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

std::string join_names(const WordNet& wn, const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : " ") + wn.name(id);
  return out;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A four-synset noun taxonomy: entity <- object <- {dog, cat}; "dogs" as an exception.
void write_tiny(const std::string& dir) {
  write(dir + "/data.noun",
        "  1 license line\n"
        "00000001 03 n 01 entity 0 000 | root\n"
        "00000002 03 n 01 object 0 001 @ 00000001 n 0000 | thing\n"
        "00000003 03 n 02 Dog 0 domestic_dog 0 001 @ 00000002 n 0000 | dog\n"
        "00000004 03 n 01 cat 0 001 @i 00000002 n 0000 | cat\n");
  write(dir + "/index.noun",
        "  1 license line\n"
        "cat n 1 1 @i 1 0 00000004\n"
        "dog n 1 1 @ 1 0 00000003\n"
        "domestic_dog n 1 1 @ 1 0 00000003\n"
        "entity n 1 0 1 0 00000001\n"
        "object n 1 1 @ 1 0 00000002\n");
  write(dir + "/noun.exc", "doggies dog\n");
}

}  // namespace

TEST_CASE("WordNet matches NLTK (needs wordnet-base)") {
  const std::string dir =
      rass::test::require_data("RASS_WORDNET_DIR", "/usr/share/wordnet", "WordNet data (Debian: wordnet-base)");
  const WordNet wn = WordNet::load(dir);
  std::unordered_map<std::string, int> by_name;
  for (int i = 0; i < wn.size(); ++i) by_name[wn.name(i)] = i;
  CHECK(by_name.size() == size_t(wn.size()));  // names are unique, as NLTK's

  std::ifstream in(std::string(RASS_FIXTURES) + "/text/wordnet_golden.tsv");
  REQUIRE(in.good());
  std::string line;
  size_t counts[6] = {};
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split(line, '\t');
    CAPTURE(line);
    if (f[0] == "morphy") {
      std::string got;
      for (const std::string& m : wn.morphy(f[1])) got += (got.empty() ? "" : ",") + m;
      CHECK(got == f[2]);
      ++counts[0];
    } else if (f[0] == "synsets") {
      CHECK(join_names(wn, wn.synsets(f[1])) == f[2]);
      ++counts[1];
    } else if (f[0] == "depth") {
      REQUIRE(by_name.count(f[1]));
      CHECK(wn.min_depth(by_name[f[1]]) == std::stoi(f[2]));
      CHECK(wn.max_depth(by_name[f[1]]) == std::stoi(f[3]));
      ++counts[2];
    } else if (f[0] == "wup") {
      REQUIRE(by_name.count(f[1]));
      REQUIRE(by_name.count(f[2]));
      CHECK(std::fabs(wn.wup(by_name[f[1]], by_name[f[2]]) - std::stod(f[3])) < 1e-12);
      ++counts[3];
    } else if (f[0] == "sim") {
      CHECK(std::fabs(wn.similarity(f[2], f[3], std::stoi(f[1])) - std::stod(f[4])) < 1e-12);
      ++counts[4];
    } else if (f[0] == "map") {
      ++counts[5];  // checked by the caption-map tests (tests/text/test_caption_map.cpp)
    } else {
      FAIL("unknown golden line kind");
    }
  }
  for (size_t c : counts) CHECK(c > 10);
}

TEST_CASE("WordNet: a hand-made taxonomy") {
  rass::test::TempDir tmp;
  write_tiny(tmp.path);
  const WordNet wn = WordNet::load(tmp.path);
  REQUIRE(wn.size() == 4);
  CHECK(wn.name(2) == "dog.n.01");  // first lemma lower-cased, its sense number
  CHECK(join_names(wn, wn.synsets("Dogs")) == "dog.n.01");     // rule s -> ""
  CHECK(join_names(wn, wn.synsets("doggies")) == "dog.n.01");  // noun.exc
  CHECK(join_names(wn, wn.phrase_synsets("domestic  dog")) == "dog.n.01");
  CHECK(join_names(wn, wn.phrase_synsets("big cat")) == "cat.n.01");  // head noun
  CHECK(wn.phrase_synsets("unknown").empty());
  CHECK(wn.min_depth(3) == 2);  // through the instance hypernym
  // dog and cat: lcs object (depth 1 + 1 = 2), each one edge below: 2*2 / (3 + 3).
  CHECK(wn.wup(2, 3) == doctest::Approx(4.0 / 6.0).epsilon(1e-15));
  CHECK(wn.wup(2, 2) == 1.0);
  // dog and object: lcs object, 2*2 / (3 + 2).
  CHECK(wn.wup(2, 1) == doctest::Approx(4.0 / 5.0).epsilon(1e-15));
  CHECK(wn.similarity("Domestic_Dog", "domestic dog") == 1.0);  // spelling equality
  CHECK(wn.similarity("xyzzy", "xyzzy ") == 1.0);               // even without synsets
  CHECK(wn.similarity("xyzzy", "dog") < 0);
}

TEST_CASE("WordNet: damaged files are named") {
  rass::test::TempDir tmp;
  write_tiny(tmp.path);
  write(tmp.path + "/index.noun", "dog n 1 0 1 0 00000099\n");
  try {
    WordNet::load(tmp.path);
    FAIL("no error");
  } catch (const rass::Error& e) {
    CHECK(e.exit_code() == 3);
    CHECK(std::string(e.what()).find("index.noun:1") != std::string::npos);
  }
  write_tiny(tmp.path);
  write(tmp.path + "/data.noun", "00000001 03 n zz entity 0 000 | root\n");
  CHECK_THROWS_WITH_AS(WordNet::load(tmp.path), doctest::Contains("data.noun:1"), rass::Error);
  CHECK_THROWS_WITH_AS(WordNet::load(tmp.path + "/missing"), doctest::Contains("cannot be opened"), rass::Error);
}
