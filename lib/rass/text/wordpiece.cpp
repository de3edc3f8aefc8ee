#include "rass/text/wordpiece.hpp"

#include <algorithm>
#include <fstream>

#include "rass/core/error.hpp"
#include "rass/text/unicode.hpp"
#include "rass/text/wordpiece_tables.hpp"

namespace rass::text {

namespace {

bool in_ranges(const tables::CodeRange* r, size_t n, char32_t c) {
  const auto* it = std::upper_bound(r, r + n, c, [](char32_t v, const tables::CodeRange& x) { return v < x.first; });
  return it != r && c <= (it - 1)->last;
}
bool is_punctuation(char32_t c) { return in_ranges(tables::kPunctuation, tables::kPunctuation_size, c); }
bool is_mark_nonspacing(char32_t c) { return in_ranges(tables::kMarkNonspacing, tables::kMarkNonspacing_size, c); }

// str.split(): runs of Python whitespace.
std::vector<std::u32string> split_ws(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::u32string cur;
  for (char32_t c : s) {
    if (py_isspace(c)) {
      if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

constexpr size_t kMaxWordChars = 100;  // WordpieceTokenizer.max_input_chars_per_word

}  // namespace

WordPiece WordPiece::load(const std::string& vocab_txt, bool lower_case) {
  WordPiece wp;
  wp.lower_ = lower_case;
  std::ifstream in(vocab_txt, std::ios::binary);
  if (!in) throw_bad_input(vocab_txt, "cannot be opened (the BERT vocabulary, vocab.txt)");
  std::string line;
  int id = 0;
  while (std::getline(in, line)) {
    // transformers' load_vocab: token = line.rstrip("\n"); a later duplicate gets the later id.
    wp.vocab_[line] = id++;
  }
  if (id == 0) throw_bad_input(vocab_txt, "is empty");
  auto find = [&](const char* t) {
    auto it = wp.vocab_.find(t);
    return it == wp.vocab_.end() ? -1 : it->second;
  };
  wp.unk_ = find("[UNK]");
  wp.cls_ = find("[CLS]");
  wp.sep_ = find("[SEP]");
  wp.pad_ = find("[PAD]");
  if (wp.unk_ < 0 || wp.cls_ < 0 || wp.sep_ < 0 || wp.pad_ < 0)
    throw_bad_input(vocab_txt, "lacks one of [UNK], [CLS], [SEP], [PAD]: not a BERT vocabulary");
  for (const char* s : {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"})
    if (find(s) >= 0) wp.specials_.push_back(s);
  return wp;
}

int WordPiece::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void WordPiece::basic_and_wordpiece(const std::string& text, std::vector<std::string>& out) const {
  // _clean_text and _tokenize_chinese_chars.
  std::u32string s;
  for (char32_t c : utf8_decode(text)) {
    const CleanClass k = clean_class(c);
    if (k == CleanClass::drop) continue;
    if (k == CleanClass::space) {
      s.push_back(U' ');
    } else if (is_cjk_ideograph(c)) {
      s.push_back(U' ');
      s.push_back(c);
      s.push_back(U' ');
    } else {
      s.push_back(c);
    }
  }
  s = nfc(s);
  std::vector<std::u32string> words;
  for (std::u32string w : split_ws(s)) {
    if (lower_) {
      w = to_lower(w);
      std::u32string stripped;
      for (char32_t c : nfd(w))
        if (!is_mark_nonspacing(c)) stripped.push_back(c);
      w.swap(stripped);
    }
    std::u32string cur;
    for (char32_t c : w) {
      if (is_punctuation(c)) {
        if (!cur.empty()) words.push_back(std::move(cur)), cur.clear();
        words.push_back(std::u32string(1, c));
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) words.push_back(std::move(cur));
  }
  // Greedy longest-match-first WordPiece.
  for (const std::u32string& w : words) {
    if (w.size() > kMaxWordChars) {
      out.push_back("[UNK]");
      continue;
    }
    std::vector<std::string> pieces;
    size_t start = 0;
    bool bad = false;
    while (start < w.size()) {
      size_t end = w.size();
      std::string found;
      while (start < end) {
        std::string sub = (start > 0 ? "##" : "") + utf8_encode(w.substr(start, end - start));
        if (vocab_.count(sub)) {
          found = std::move(sub);
          break;
        }
        --end;
      }
      if (found.empty()) {
        bad = true;
        break;
      }
      pieces.push_back(std::move(found));
      start = end;
    }
    if (bad) out.push_back("[UNK]");
    else out.insert(out.end(), pieces.begin(), pieces.end());
  }
}

std::vector<std::string> WordPiece::tokenize(const std::string& text) const {
  // Special tokens are cut out first (transformers' added-tokens trie: the
  // longest match at the earliest position).
  std::vector<std::string> out;
  size_t pos = 0, piece = 0;
  while (pos < text.size()) {
    const std::string* hit = nullptr;
    for (const std::string& sp : specials_)
      if (text.compare(pos, sp.size(), sp) == 0 && (!hit || sp.size() > hit->size())) hit = &sp;
    if (!hit) {
      ++pos;
      continue;
    }
    basic_and_wordpiece(text.substr(piece, pos - piece), out);
    out.push_back(*hit);
    pos += hit->size();
    piece = pos;
  }
  basic_and_wordpiece(text.substr(piece), out);
  return out;
}

std::vector<int> WordPiece::encode(const std::string& text, int max_length) const {
  std::vector<int> ids{cls_};
  for (const std::string& t : tokenize(text)) ids.push_back(vocab_.at(t));
  if (max_length >= 2 && static_cast<int>(ids.size()) > max_length - 1) ids.resize(max_length - 1);
  ids.push_back(sep_);
  return ids;
}

}  // namespace rass::text
