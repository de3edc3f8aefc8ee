// CLIP BPE tokenizer; the header says what it matches. Comments name the
// transformers functions each step reproduces.
#include "rass/text/clip_tokenizer.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "rass/batch/inputs.hpp"  // valid_utf8
#include "rass/core/error.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/text/unicode.hpp"

namespace rass::text {
namespace {

// CLIPTokenizer keeps at most this many merges: merges.txt lines 1 .. 49152-256-2.
constexpr size_t kMaxMerges = 49152 - 256 - 2;
// The bpe() cache of transformers is unbounded; this one is cleared when full.
constexpr size_t kMaxCacheEntries = 1 << 18;

// A tokenizer file whole: text (a NUL byte refused at once) of at most
// 64 MiB (CLIP's vocab.json is 1.6 MB): one linked to /dev/zero grew until
// the memory ran out.
std::string read_file(const std::string& path, const char* what) {
  if (!file_exists(path)) throw_bad_input(path, std::string("cannot open the ") + what);
  const std::vector<uint8_t> bytes = read_text_file_bytes(path, kMaxJsonFileBytes);
  return std::string(bytes.begin(), bytes.end());
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

// str.split() on Python whitespace.
std::vector<std::u32string> py_split(const std::u32string& s) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && py_isspace(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !py_isspace(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// The order of CLIP's vocabulary: bs = printable bytes ascending, then the rest.
std::vector<int> byte_order() {
  std::vector<int> order;
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  for (int b = 0; b < 256; ++b)
    if (printable(b)) order.push_back(b);
  for (int b = 0; b < 256; ++b)
    if (!printable(b)) order.push_back(b);
  return order;
}

struct AddedToken {
  std::u32string content;
  std::string content8;
  int id = -1;
  bool lstrip = false, rstrip = false, special = true;
};

// A special-token value of tokenizer_config.json / special_tokens_map.json: a
// string, or an AddedToken dict {"content", "lstrip", "rstrip", ...}.
bool parse_token_value(const nlohmann::json& v, const std::string& file, AddedToken& out) {
  if (v.is_null()) return false;
  if (v.is_string()) {
    out.content8 = v.get<std::string>();
    out.lstrip = out.rstrip = false;
    return true;
  }
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    out.content8 = v["content"].get<std::string>();
    out.lstrip = v.value("lstrip", false);
    out.rstrip = v.value("rstrip", false);
    if (v.contains("special") && v["special"].is_boolean()) out.special = v["special"].get<bool>();
    return true;
  }
  throw_bad_input(file, "a special token must be a string or an object with \"content\"");
}

nlohmann::ordered_json parse_json(const std::string& path, const char* what) {
  const std::string text = read_file(path, what);
  try {
    return parse_json_bounded<nlohmann::ordered_json>(text);
  } catch (const std::exception& e) {
    throw_bad_input(path, std::string("not valid JSON (") + e.what() + ")");
  }
}

// A pre-token or added-token piece of the cleaned text: code point range and the
// group (tag) of its characters, -1 when none or mixed.
struct Piece {
  std::string bytes;  // UTF-8 of the word
  int added = -1;     // index into added tokens, or -1 for a BPE word
  int group = -1;
};

// SAX reader of vocab.json: one flat object of string -> integer, in file order.
struct VocabReader : nlohmann::json::json_sax_t {
  std::vector<std::pair<std::string, int>> entries;
  std::unordered_map<std::string, size_t> index;
  std::string current_key, error;
  int depth = 0;

  bool fail(const std::string& what) {
    if (error.empty()) error = what;
    return false;
  }
  bool value(long long v) {
    if (depth != 1) return fail("expected a JSON object of token -> id");
    if (v < INT32_MIN || v > INT32_MAX) return fail("the id of \"" + current_key + "\" is out of range");
    auto it = index.find(current_key);
    if (it == index.end()) {
      index.emplace(current_key, entries.size());
      entries.emplace_back(current_key, static_cast<int>(v));
    } else {
      entries[it->second].second = static_cast<int>(v);
    }
    return true;
  }
  bool not_an_id() { return fail("the id of \"" + current_key + "\" is not an integer"); }
  bool null() override { return depth == 1 ? not_an_id() : fail("expected a JSON object of token -> id"); }
  bool boolean(bool) override { return null(); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return v > static_cast<number_unsigned_t>(INT32_MAX) ? fail("the id of \"" + current_key + "\" is out of range")
                                                          : value(static_cast<long long>(v));
  }
  bool number_float(number_float_t, const string_t&) override { return null(); }
  bool string(string_t&) override { return null(); }
  bool binary(binary_t&) override { return null(); }
  bool start_object(std::size_t) override {
    return ++depth == 1 ? true : (depth == 2 ? not_an_id() : fail("expected a JSON object of token -> id"));
  }
  bool key(string_t& k) override {
    current_key = k;
    return true;
  }
  bool end_object() override {
    --depth;
    return true;
  }
  bool start_array(std::size_t) override { return depth == 1 ? not_an_id() : fail("expected a JSON object of token -> id"); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) override {
    return fail("not valid JSON at byte " + std::to_string(pos) + " (" + e.what() + ")");
  }
};

}  // namespace

struct ClipTokenizer::Impl {
  // vocab.json
  std::unordered_map<std::string, int> encoder;
  std::unordered_map<int, std::string> decoder;
  // BPE symbols: interned strings, their vocabulary ids (-1: not in vocab).
  std::vector<std::string> sym_str;
  std::unordered_map<std::string, int> sym_id;
  std::vector<int> sym_vocab;
  int base[256], base_w[256];  // byte symbol, and with "</w>"
  // (left symbol, right symbol) -> (rank, merged symbol)
  std::unordered_map<uint64_t, std::pair<int, int>> merges;
  int sym_sot = -1, sym_eot = -1;  // the two strings bpe() returns unchanged
  std::vector<char32_t> byte_encoder;
  std::unordered_map<char32_t, int> byte_decoder;
  // Added tokens (specials first); the trie that cuts them out of the text.
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int> added_by_content;  // -> index into added
  std::unordered_map<int, int> added_by_id;
  struct Node {
    std::map<char32_t, int> next;
    bool end = false;
  };
  std::vector<Node> trie{Node{}};
  int bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  int unk_vocab_id = -1;  // what an out-of-vocabulary BPE symbol becomes
  std::vector<std::string> all_special;  // contents
  std::vector<int> all_special_ids;
  std::vector<std::string> additional_special;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int>> cache;  // word bytes -> symbols

  int intern(const std::string& s) {
    auto it = sym_id.find(s);
    if (it != sym_id.end()) return it->second;
    const int id = static_cast<int>(sym_str.size());
    sym_str.push_back(s);
    sym_id.emplace(s, id);
    auto v = encoder.find(s);
    sym_vocab.push_back(v == encoder.end() ? -1 : v->second);
    return id;
  }

  void add_to_trie(const std::u32string& word) {
    if (word.empty()) return;
    int node = 0;
    for (char32_t c : word) {
      auto it = trie[node].next.find(c);
      if (it == trie[node].next.end()) {
        trie.push_back(Node{});
        const int child = static_cast<int>(trie.size()) - 1;
        trie[node].next.emplace(c, child);
        node = child;
      } else {
        node = it->second;
      }
    }
    trie[node].end = true;
  }

  int child(int node, char32_t c) const {
    auto it = trie[node].next.find(c);
    return it == trie[node].next.end() ? -1 : it->second;
  }

  // transformers' Trie.split, as cut offsets into `text`.
  std::vector<std::pair<size_t, size_t>> trie_split(const std::u32string& text) const {
    const long n = static_cast<long>(text.size());
    std::vector<long> offsets{0};
    std::vector<std::pair<long, int>> states;  // (start, node), in insertion order
    long skip = 0;
    for (long current = 0; current < n; ++current) {
      if (skip && current < skip) continue;
      const char32_t ch = text[current];
      std::vector<long> to_remove;
      bool reset = false;
      for (size_t si = 0; si < states.size(); ++si) {
        long start = states[si].first;
        const int ptr = states[si].second;
        if (trie[ptr].end) {
          long end = current;
          for (size_t li = 0; li < states.size(); ++li) {
            const long lookstart = states[li].first;
            int lptr = states[li].second;
            long lookahead;
            if (lookstart > start) break;
            if (lookstart < start) {
              lookahead = current + 1;
              end = current + 1;
            } else {
              lookahead = current;
              end = current;
            }
            if (trie[lptr].end) {
              start = lookstart;
              end = lookahead;
              skip = lookahead;
            }
            while (lookahead < n) {
              const int next = child(lptr, text[lookahead]);
              if (next < 0) break;
              lptr = next;
              ++lookahead;
              if (trie[lptr].end) {
                start = lookstart;
                end = lookahead;
                skip = lookahead;
              }
              if (lookahead == n) break;
            }
          }
          offsets.push_back(start);
          offsets.push_back(end);
          reset = true;
          break;
        }
        const int next = child(ptr, ch);
        if (next >= 0) {
          states[si].second = next;
        } else {
          to_remove.push_back(start);
        }
      }
      if (reset) {
        states.clear();
      } else if (!to_remove.empty()) {
        states.erase(std::remove_if(states.begin(), states.end(),
                                    [&](const std::pair<long, int>& s) {
                                      return std::find(to_remove.begin(), to_remove.end(), s.first) != to_remove.end();
                                    }),
                     states.end());
      }
      if (current >= skip) {
        const int next = child(0, ch);
        if (next >= 0) states.emplace_back(current, next);
      }
    }
    for (const auto& [start, ptr] : states)
      if (trie[ptr].end) {
        offsets.push_back(start);
        offsets.push_back(n);
        break;
      }
    // cut_text
    offsets.push_back(n);
    std::vector<std::pair<size_t, size_t>> pieces;
    long start = 0;
    for (long end : offsets) {
      if (start >= end) continue;  // start > end: the "bug in Trie" case, skipped like transformers
      pieces.emplace_back(static_cast<size_t>(start), static_cast<size_t>(end));
      start = end;
    }
    return pieces;
  }

  // bpe(): the merged symbols of one pre-token (its UTF-8 bytes), cached.
  std::vector<int> bpe(const std::string& word) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = cache.find(word);
      if (it != cache.end()) return it->second;
    }
    std::vector<int> w;
    if (word == "<|startoftext|>") {
      w = {sym_sot};
    } else if (word == "<|endoftext|>") {
      w = {sym_eot};
    } else {
      w.reserve(word.size());
      for (size_t i = 0; i < word.size(); ++i) {
        const auto b = static_cast<unsigned char>(word[i]);
        w.push_back(i + 1 == word.size() ? base_w[b] : base[b]);
      }
      std::vector<int> next;
      while (w.size() > 1) {
        int best_rank = -1, best_sym = -1;
        for (size_t i = 0; i + 1 < w.size(); ++i) {
          auto it = merges.find(key(w[i], w[i + 1]));
          if (it != merges.end() && (best_rank < 0 || it->second.first < best_rank)) {
            best_rank = it->second.first;
            best_sym = it->second.second;
          }
        }
        if (best_rank < 0) break;
        // The pair with that rank (ranks are unique per pair).
        int first = -1, second = -1;
        for (size_t i = 0; i + 1 < w.size(); ++i) {
          auto it = merges.find(key(w[i], w[i + 1]));
          if (it != merges.end() && it->second.first == best_rank) {
            first = w[i];
            second = w[i + 1];
            break;
          }
        }
        next.clear();
        for (size_t i = 0; i < w.size();) {
          if (w[i] == first && i + 1 < w.size() && w[i + 1] == second) {
            next.push_back(best_sym);
            i += 2;
          } else {
            next.push_back(w[i]);
            ++i;
          }
        }
        w.swap(next);
      }
    }
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(word, w);
    return w;
  }

  static uint64_t key(int a, int b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

  // BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize, joined
  // by " ": the cleaned text, with the origin of every code point.
  static void basic_clean(const std::u32string& in, const std::vector<int>& in_origin, std::u32string& out,
                          std::vector<int>& origin) {
    // _clean_text, _tokenize_chinese_chars
    std::u32string s;
    std::vector<int> so;
    s.reserve(in.size());
    so.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      const char32_t c = in[i];
      switch (clean_class(c)) {
        case CleanClass::drop:
          continue;
        case CleanClass::space:
          s.push_back(U' ');
          so.push_back(-1);
          continue;
        case CleanClass::keep:
          break;
      }
      if (is_cjk_ideograph(c)) {
        s.push_back(U' ');
        s.push_back(c);
        s.push_back(U' ');
        so.push_back(-1);
        so.push_back(in_origin[i]);
        so.push_back(-1);
      } else {
        s.push_back(c);
        so.push_back(in_origin[i]);
      }
    }
    // unicodedata.normalize("NFC")
    nfc_inplace(s, &so);
    // whitespace_tokenize, lower() per token, " ".join
    out.clear();
    origin.clear();
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && py_isspace(s[i])) ++i;
      size_t j = i;
      while (j < s.size() && !py_isspace(s[j])) ++j;
      if (j > i) {
        std::u32string tok = s.substr(i, j - i);
        std::vector<int> to(so.begin() + static_cast<long>(i), so.begin() + static_cast<long>(j));
        to_lower_inplace(tok, &to);
        if (!out.empty()) {
          out.push_back(U' ');
          origin.push_back(-1);
        }
        out += tok;
        origin.insert(origin.end(), to.begin(), to.end());
      }
      i = j;
    }
  }

  // Does `lit` (ASCII) match at s[i] under the regex's IGNORECASE (simple case
  // folding: ASCII letters both cases, and U+017F LONG S for "s").
  static bool match_literal(const std::u32string& s, size_t i, std::string_view lit) {
    if (i + lit.size() > s.size()) return false;
    for (size_t k = 0; k < lit.size(); ++k) {
      const char32_t c = s[i + k];
      const char l = lit[k];
      if (l >= 'a' && l <= 'z') {
        if (c != static_cast<char32_t>(l) && c != static_cast<char32_t>(l - 32) && !(l == 's' && c == 0x17F))
          return false;
      } else if (c != static_cast<char32_t>(l)) {
        return false;
      }
    }
    return true;
  }

  // re.findall(pat, text): the [begin, end) ranges of the pre-tokens.
  static std::vector<std::pair<size_t, size_t>> pretokenize(const std::u32string& s) {
    static const std::string_view kLiterals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re",
                                                 "'ve", "'m", "'ll", "'d"};
    std::vector<std::pair<size_t, size_t>> out;
    size_t i = 0;
    while (i < s.size()) {
      bool matched = false;
      for (std::string_view lit : kLiterals)
        if (match_literal(s, i, lit)) {
          out.emplace_back(i, i + lit.size());
          i += lit.size();
          matched = true;
          break;
        }
      if (matched) continue;
      const ClipClass k = clip_class(s[i]);
      if (k == ClipClass::none) {
        ++i;
        continue;
      }
      size_t j = i + 1;
      if (k != ClipClass::number)
        while (j < s.size() && clip_class(s[j]) == k) ++j;
      out.emplace_back(i, j);
      i = j;
    }
    return out;
  }

  // tokenize() down to pieces: added tokens, and the BPE words of the rest.
  // `group` (optional) gives each input code point a group; a piece gets the
  // group all its code points share, else -1.
  std::vector<Piece> pieces(const std::u32string& text, const std::vector<int>* group) const {
    std::vector<std::pair<size_t, size_t>> parts = trie_split(text);
    std::vector<int> part_added(parts.size(), -1);
    for (size_t i = 0; i < parts.size(); ++i) {
      auto it = added_by_content.find(utf8_encode(std::u32string_view(text).substr(parts[i].first, parts[i].second - parts[i].first)));
      if (it != added_by_content.end()) part_added[i] = it->second;
    }
    // AddedToken.rstrip / lstrip eat the whitespace beside the token.
    for (size_t i = 0; i < parts.size(); ++i) {
      if (part_added[i] < 0) continue;
      const AddedToken& t = added[part_added[i]];
      if (t.rstrip && i + 1 < parts.size() && parts[i + 1].first < parts[i + 1].second) {
        auto& r = parts[i + 1];
        while (r.first < r.second && py_isspace(text[r.first])) ++r.first;
      }
      if (t.lstrip && i > 0 && parts[i - 1].first < parts[i - 1].second) {
        auto& l = parts[i - 1];
        while (l.second > l.first && py_isspace(text[l.second - 1])) --l.second;
      }
    }
    auto group_of = [&](const std::vector<int>& origins) {
      if (!group) return -1;
      int g = -2;
      for (int o : origins) {
        const int og = o < 0 ? -1 : (*group)[o];
        if (og < 0 || (g != -2 && og != g)) return -1;
        g = og;
      }
      return g < 0 ? -1 : g;
    };
    std::vector<Piece> out;
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto [b, e] = parts[i];
      if (b >= e) continue;
      std::vector<int> origin(e - b);
      for (size_t k = 0; k < origin.size(); ++k) origin[k] = static_cast<int>(b + k);
      const std::u32string part = text.substr(b, e - b);
      // A piece equal to an added token's content (after stripping) is that token.
      auto it = added_by_content.find(utf8_encode(part));
      if (it != added_by_content.end()) {
        Piece p;
        p.added = it->second;
        p.group = group_of(origin);
        out.push_back(std::move(p));
        continue;
      }
      std::u32string clean;
      std::vector<int> corigin;
      basic_clean(part, origin, clean, corigin);
      for (const auto& [pb, pe] : pretokenize(clean)) {
        Piece p;
        p.bytes = utf8_encode(std::u32string_view(clean).substr(pb, pe - pb));
        p.group = group_of(std::vector<int>(corigin.begin() + static_cast<long>(pb), corigin.begin() + static_cast<long>(pe)));
        out.push_back(std::move(p));
      }
    }
    return out;
  }

  int symbol_to_id(int sym) const { return sym_vocab[sym] >= 0 ? sym_vocab[sym] : unk_vocab_id; }

  // encode(): ids, and (optionally) the group of each id.
  void encode(const std::u32string& u, const std::vector<int>* group, std::vector<int>& ids,
              std::vector<int>* id_group) const {
    for (const Piece& p : pieces(u, group)) {
      if (p.added >= 0) {
        ids.push_back(added[p.added].id);
        if (id_group) id_group->push_back(p.group);
        continue;
      }
      for (int sym : bpe(p.bytes)) {
        const int id = symbol_to_id(sym);
        if (id < 0) throw_runtime("the unknown token is not in the vocabulary");
        ids.push_back(id);
        if (id_group) id_group->push_back(p.group);
      }
    }
  }

  std::vector<int> pad_ids(std::vector<int> ids, int max_len) const {
    if (max_len < 2) throw_usage("max_len must be at least 2 (bos and eos)");
    if (static_cast<int>(ids.size()) > max_len - 2) ids.resize(static_cast<size_t>(max_len - 2));
    std::vector<int> out;
    out.reserve(static_cast<size_t>(max_len));
    out.push_back(bos_id);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(eos_id);
    out.resize(static_cast<size_t>(max_len), pad_id);
    return out;
  }

  // convert_tokens_to_string()
  std::string tokens_to_string(const std::vector<const std::string*>& tokens) const {
    std::string bytes;
    for (const std::string* t : tokens)
      for (char32_t c : utf8_decode(*t)) {
        auto it = byte_decoder.find(c);
        if (it == byte_decoder.end()) throw_usage("token \"" + *t + "\" is not made of byte-level symbols");
        bytes.push_back(static_cast<char>(it->second));
      }
    std::string text = utf8_encode(utf8_decode(bytes));  // errors="replace"
    std::string replaced;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 4, "</w>") == 0) {
        replaced.push_back(' ');
        i += 4;
      } else {
        replaced.push_back(text[i++]);
      }
    }
    std::u32string u = utf8_decode(replaced);
    size_t b = 0, e = u.size();
    while (b < e && py_isspace(u[b])) ++b;
    while (e > b && py_isspace(u[e - 1])) --e;
    return utf8_encode(std::u32string_view(u).substr(b, e - b));
  }
};

ClipTokenizer ClipTokenizer::load(const std::string& tokenizer_dir_or_vocab, const std::string& merges_arg) {
  auto impl = std::make_shared<Impl>();
  Impl& m = *impl;
  std::string vocab_path, merges_path, dir;
  if (is_directory(tokenizer_dir_or_vocab)) {
    dir = tokenizer_dir_or_vocab;
    vocab_path = dir + "/vocab.json";
    merges_path = merges_arg.empty() ? dir + "/merges.txt" : merges_arg;
    require_found_file(vocab_path, "the tokenizer's vocab.json");  // found here, not named: a FIFO would block
  } else {
    vocab_path = tokenizer_dir_or_vocab;
    if (!merges_arg.empty()) {
      merges_path = merges_arg;
    } else {
      const size_t slash = vocab_path.find_last_of('/');
      merges_path = (slash == std::string::npos ? std::string() : vocab_path.substr(0, slash + 1)) + "merges.txt";
    }
  }
  if (merges_arg.empty()) require_found_file(merges_path, "the tokenizer's merges.txt");

  // vocab.json: {token: id}, read in file order (a repeated token keeps its
  // first place and its last id, as a Python dict); decoder = {id: token} over
  // that order, so of two tokens with one id the later wins.
  {
    VocabReader reader;
    const std::string text = read_file(vocab_path, "vocabulary (vocab.json)");
    bool ok = false;
    try {
      ok = nlohmann::json::sax_parse(text, &reader);
    } catch (const nlohmann::json::exception& e) {
      throw_bad_input(vocab_path, std::string("not valid JSON (") + e.what() + ")");
    }
    if (!ok || !reader.error.empty())
      throw_bad_input(vocab_path, reader.error.empty() ? "not valid JSON" : reader.error);
    if (reader.entries.empty()) throw_bad_input(vocab_path, "empty vocabulary");
    m.encoder.reserve(reader.entries.size());
    for (const auto& [token, id] : reader.entries) m.encoder[token] = id;
    for (const auto& [token, id] : reader.entries) {
      (void)id;
      m.decoder[m.encoder[token]] = token;
    }
  }

  // Byte-level symbols.
  m.byte_encoder = clip_bytes_to_unicode();
  for (int b = 0; b < 256; ++b) m.byte_decoder[m.byte_encoder[b]] = b;
  for (int b : byte_order()) {
    std::string s;
    utf8_append(s, m.byte_encoder[b]);
    m.base[b] = m.intern(s);
  }
  for (int b : byte_order()) {
    std::string s;
    utf8_append(s, m.byte_encoder[b]);
    m.base_w[b] = m.intern(s + "</w>");
  }
  m.sym_sot = m.intern("<|startoftext|>");
  m.sym_eot = m.intern("<|endoftext|>");

  // merges.txt: universal newlines, strip(), split("\n"), lines 1..48894, each
  // split() into a pair; a pair listed twice keeps its later rank.
  std::string raw = read_file(merges_path, "BPE merges (merges.txt)");
  // Strict UTF-8: Python's open(..., encoding="utf-8") raises on bad bytes.
  if (!batch::valid_utf8(raw)) throw_bad_input(merges_path, "not valid UTF-8");
  std::u32string text = utf8_decode(raw);
  {
    std::u32string t;
    t.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == U'\r') {
        t.push_back(U'\n');
        if (i + 1 < text.size() && text[i + 1] == U'\n') ++i;
      } else {
        t.push_back(text[i]);
      }
    }
    size_t b = 0, e = t.size();
    while (b < e && py_isspace(t[b])) ++b;
    while (e > b && py_isspace(t[e - 1])) --e;
    text = t.substr(b, e - b);
  }
  {
    size_t line = 0, pos = 0;
    int rank = 0;
    while (pos <= text.size()) {
      size_t nl = text.find(U'\n', pos);
      if (nl == std::u32string::npos) nl = text.size();
      if (line >= 1) {
        if (line > kMaxMerges) break;
        const std::vector<std::u32string> parts = py_split(text.substr(pos, nl - pos));
        if (parts.size() == 2) {
          const std::string a = utf8_encode(parts[0]), b = utf8_encode(parts[1]);
          const int sa = m.intern(a), sb = m.intern(b), sab = m.intern(a + b);
          m.merges[Impl::key(sa, sb)] = {rank, sab};
        }
        ++rank;
      }
      ++line;
      pos = nl + 1;
    }
    if (line < 1 || text.empty()) throw_bad_input(merges_path, "empty merges file");
  }

  // Special and added tokens, as PreTrainedTokenizerBase.from_pretrained reads them.
  AddedToken bos, eos, unk, pad;
  bos.content8 = "<|startoftext|>";
  eos.content8 = unk.content8 = pad.content8 = "<|endoftext|>";
  std::vector<AddedToken> additional;
  std::vector<AddedToken> decoder_tokens;  // added_tokens_decoder
  if (!dir.empty()) {
    nlohmann::ordered_json config = nlohmann::ordered_json::object();
    const std::string config_path = dir + "/tokenizer_config.json";
    if (is_file(config_path)) {
      config = parse_json(config_path, "tokenizer config");
      if (!config.is_object()) throw_bad_input(config_path, "expected a JSON object");
    }
    const std::string map_path = dir + "/special_tokens_map.json";
    if (config.contains("added_tokens_decoder")) {
      const auto& dec = config["added_tokens_decoder"];
      if (!dec.is_object()) throw_bad_input(config_path, "added_tokens_decoder must be an object");
      for (const auto& [id, tok] : dec.items()) {
        AddedToken t;
        if (!tok.is_object() || !parse_token_value(tok, config_path, t))
          throw_bad_input(config_path, "bad added_tokens_decoder entry " + id);
        try {
          t.id = std::stoi(id);
        } catch (const std::exception&) {
          throw_bad_input(config_path, "bad added_tokens_decoder id \"" + id + "\"");
        }
        t.special = tok.value("special", false);
        decoder_tokens.push_back(t);
      }
    } else if (is_file(map_path)) {
      const auto map = parse_json(map_path, "special tokens map");
      if (!map.is_object()) throw_bad_input(map_path, "expected a JSON object");
      for (const auto& [key, value] : map.items()) config[key] = value;
    }
    auto take = [&](const char* key, AddedToken& t) {
      if (config.contains(key)) parse_token_value(config[key], config_path, t);
    };
    take("bos_token", bos);
    take("eos_token", eos);
    take("unk_token", unk);
    take("pad_token", pad);
    if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array())
      for (const auto& v : config["additional_special_tokens"]) {
        AddedToken t;
        if (parse_token_value(v, config_path, t)) additional.push_back(t);
      }
  }
  // PreTrainedTokenizer.__init__: the added_tokens_decoder first, then every special
  // token not yet added: its vocabulary id, or the next free one.
  auto register_token = [&](AddedToken t) {
    t.content = utf8_decode(t.content8);
    const int idx = static_cast<int>(m.added.size());
    m.added_by_content[t.content8] = idx;
    m.added_by_id[t.id] = idx;
    m.add_to_trie(t.content);
    m.added.push_back(std::move(t));
  };
  for (auto& t : decoder_tokens) {
    // A special token of the config replaces the entry of the same content.
    for (AddedToken* s : {&bos, &eos, &unk, &pad})
      if (s->content8 == t.content8) {
        s->lstrip = t.lstrip;
        s->rstrip = t.rstrip;
      }
    register_token(t);
  }
  // The special tokens must have ids the text encoder knows: bos, eos and pad
  // from vocab.json or added_tokens_decoder; unk from vocab.json, which is what
  // an out-of-vocabulary symbol becomes. transformers would give a missing one
  // an id past the vocabulary, which the text encoder's embedding lacks.
  for (const auto& [role, t] : {std::pair<const char*, const AddedToken*>{"bos_token", &bos}, {"eos_token", &eos},
                                {"pad_token", &pad}, {"unk_token", &unk}}) {
    const bool in_vocab = m.encoder.count(t->content8) > 0;
    const bool added_id = std::any_of(decoder_tokens.begin(), decoder_tokens.end(),
                                      [&](const AddedToken& d) { return d.content8 == t->content8; });
    if (!in_vocab && (t == &unk || !added_id))
      throw_bad_input(vocab_path, std::string("lacks the ") + role + " \"" + t->content8 +
                                      "\" that a CLIP tokenizer needs" + (t == &unk ? "" : " (nor does added_tokens_decoder have it)") +
                                      " (is this the model's tokenizer folder?)");
  }
  std::vector<AddedToken*> specials{&bos, &eos, &unk, &pad};
  for (auto& t : additional) specials.push_back(&t);
  int next_free = static_cast<int>(m.encoder.size());
  for (const auto& t : m.added)
    if (!m.encoder.count(t.content8)) ++next_free;
  for (AddedToken* s : specials) {
    s->special = true;
    auto it = m.added_by_content.find(s->content8);
    if (it != m.added_by_content.end()) {
      m.added[it->second].special = true;
      s->id = m.added[it->second].id;
      continue;
    }
    auto v = m.encoder.find(s->content8);
    s->id = v != m.encoder.end() ? v->second : next_free++;
    if (s->content8.empty()) continue;
    register_token(*s);
  }
  m.bos_id = bos.id;
  m.eos_id = eos.id;
  m.unk_id = unk.id;
  m.pad_id = pad.id;
  auto unk_v = m.encoder.find(unk.content8);
  m.unk_vocab_id = unk_v != m.encoder.end() ? unk_v->second : -1;
  for (AddedToken* s : specials) {
    if (std::find(m.all_special.begin(), m.all_special.end(), s->content8) == m.all_special.end()) {
      m.all_special.push_back(s->content8);
      m.all_special_ids.push_back(s->id);
    }
  }
  for (const auto& t : additional) m.additional_special.push_back(t.content8);
  return ClipTokenizer(std::move(impl));
}

std::vector<int> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  impl_->encode(utf8_decode(text), nullptr, ids, nullptr);
  return ids;
}

std::vector<int> ClipTokenizer::encode_padded(const std::string& text, int max_len) const {
  return impl_->pad_ids(encode(text), max_len);
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  const Impl& m = *impl_;
  for (const Piece& p : m.pieces(utf8_decode(text), nullptr)) {
    if (p.added >= 0) {
      out.push_back(m.added[p.added].content8);
      continue;
    }
    for (int sym : m.bpe(p.bytes)) out.push_back(m.sym_str[sym]);
  }
  return out;
}

std::string ClipTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  const Impl& m = *impl_;
  auto is_special_id = [&](int id) {
    return std::find(m.all_special_ids.begin(), m.all_special_ids.end(), id) != m.all_special_ids.end();
  };
  auto is_special_token = [&](const std::string& t) {
    return std::find(m.all_special.begin(), m.all_special.end(), t) != m.all_special.end();
  };
  // Non-special added tokens (and additional specials beyond the vocabulary) are
  // "legacy" tokens: written as they are, the text around them decoded apart.
  auto is_legacy = [&](const std::string& t) {
    auto it = m.added_by_content.find(t);
    if (it == m.added_by_content.end()) return false;
    if (!is_special_token(t)) return true;
    return std::find(m.additional_special.begin(), m.additional_special.end(), t) != m.additional_special.end() &&
           m.added[it->second].id >= static_cast<int>(m.encoder.size());
  };
  std::vector<const std::string*> tokens;
  for (int id : ids) {
    if (skip_special && is_special_id(id)) continue;
    auto a = m.added_by_id.find(id);
    if (a != m.added_by_id.end()) {
      tokens.push_back(&m.added[a->second].content8);
      continue;
    }
    auto d = m.decoder.find(id);
    if (d == m.decoder.end()) throw_usage("token id " + std::to_string(id) + " is not in the vocabulary");
    tokens.push_back(&d->second);
  }
  std::vector<std::string> sub_texts;
  std::vector<const std::string*> current;
  for (const std::string* t : tokens) {
    if (skip_special && is_special_token(*t)) continue;
    if (is_legacy(*t)) {
      if (!current.empty()) {
        std::string s = m.tokens_to_string(current);
        if (!s.empty()) sub_texts.push_back(s);
        current.clear();
      }
      sub_texts.push_back(*t);
    } else {
      current.push_back(t);
    }
  }
  if (!current.empty()) sub_texts.push_back(m.tokens_to_string(current));
  std::string text;
  for (size_t i = 0; i < sub_texts.size(); ++i) {
    if (i) text.push_back(' ');
    text += sub_texts[i];
  }
  return text;
}

TagPrompt ClipTokenizer::tag_positions(const std::string& prompt, int max_len) const {
  const std::u32string u = utf8_decode(prompt);
  // Segment index of every code point; separators -1.
  std::vector<int> group(u.size(), -1);
  std::vector<std::pair<size_t, size_t>> segments;
  size_t start = 0;
  for (size_t i = 0; i <= u.size(); ++i) {
    if (i == u.size() || u[i] == U',') {
      for (size_t k = start; k < i; ++k) group[k] = static_cast<int>(segments.size());
      segments.emplace_back(start, i);
      start = i + 1;
    }
  }
  std::vector<int> ids, id_group;
  impl_->encode(u, &group, ids, &id_group);
  TagPrompt out;
  out.ids = impl_->pad_ids(ids, max_len);
  std::vector<int> tag_of_segment(segments.size(), -1);
  for (size_t s = 0; s < segments.size(); ++s) {
    auto [b, e] = segments[s];
    while (b < e && py_isspace(u[b])) ++b;
    while (e > b && py_isspace(u[e - 1])) --e;
    if (b == e) continue;
    tag_of_segment[s] = static_cast<int>(out.tags.size());
    out.tags.push_back({utf8_encode(std::u32string_view(u).substr(b, e - b)), {}});
  }
  const size_t kept = std::min(ids.size(), static_cast<size_t>(std::max(max_len - 2, 0)));
  for (size_t i = 0; i < kept; ++i) {
    const int g = id_group[i];
    if (g >= 0 && tag_of_segment[g] >= 0) out.tags[tag_of_segment[g]].positions.push_back(static_cast<int>(i) + 1);
  }
  return out;
}

int ClipTokenizer::bos() const { return impl_->bos_id; }
int ClipTokenizer::eos() const { return impl_->eos_id; }
int ClipTokenizer::pad() const { return impl_->pad_id; }
int ClipTokenizer::unk() const { return impl_->unk_id; }
int ClipTokenizer::vocab_size() const { return static_cast<int>(impl_->encoder.size()); }

int ClipTokenizer::token_to_id(const std::string& token) const {
  auto a = impl_->added_by_content.find(token);
  if (a != impl_->added_by_content.end()) return impl_->added[a->second].id;
  auto v = impl_->encoder.find(token);
  return v == impl_->encoder.end() ? -1 : v->second;
}

}  // namespace rass::text
