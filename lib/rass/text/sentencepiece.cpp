#include "rass/text/sentencepiece.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rass/batch/inputs.hpp"  // valid_utf8
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass::text {
namespace {

// The protobuf wire format, as far as sentencepiece_model.proto needs it.
class ProtoReader {
 public:
  ProtoReader(const uint8_t* p, size_t n, const std::string& name) : p_(p), end_(p + n), name_(name) {}
  bool done() const { return p_ == end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) bad("ends inside a number");
      const uint8_t b = *p_++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    bad("holds a number longer than 10 bytes");
  }
  // Field number and wire type of the next field.
  std::pair<uint32_t, int> key() {
    const uint64_t k = varint();
    return {uint32_t(k >> 3), int(k & 7)};
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > uint64_t(end_ - p_)) bad("has a field longer than the file");
    const std::string_view s(reinterpret_cast<const char*>(p_), size_t(n));
    p_ += n;
    return s;
  }
  uint32_t fixed32() {
    if (end_ - p_ < 4) bad("ends inside a 32-bit field");
    uint32_t v;
    std::memcpy(&v, p_, 4);  // little-endian on every machine this builds for
    p_ += 4;
    return v;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1:
        if (end_ - p_ < 8) bad("ends inside a 64-bit field");
        p_ += 8;
        break;
      case 2: bytes(); break;
      case 5: fixed32(); break;
      default: bad("has a field of unknown wire type " + std::to_string(wire));
    }
  }
  [[noreturn]] void bad(const std::string& what) const {
    throw_bad_input(name_, "not a SentencePiece model: the protobuf " + what);
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& name_;
};

// Bytes of the UTF-8 character that starts with `lead` (SentencePiece's OneCharLen).
size_t one_char_len(uint8_t lead) {
  static const size_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return len[lead >> 4];
}

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";  // U+2581
constexpr float kUnkPenalty = 10.0f;
constexpr size_t kMaxTrieResults = 32;  // SentencePiece's kMaxTrieResultsSize

}  // namespace

SentencePiece SentencePiece::load(const std::string& path) {
  // T5's model is 0.8 MB; a vocabulary of a million pieces stays under 64 MiB.
  return parse(read_file_bytes(path, size_t(64) << 20), path);
}

SentencePiece SentencePiece::parse(const std::vector<uint8_t>& bytes, const std::string& name) {
  SentencePiece m;
  ProtoReader r(bytes.data(), bytes.size(), name);
  int model_type = 1;  // UNIGRAM (the proto's default)
  bool have_unk = false, have_eos = false, byte_fallback = false;
  std::string charsmap;
  while (!r.done()) {
    const auto [field, wire] = r.key();
    if (field == 1 && wire == 2) {  // pieces
      const std::string_view s = r.bytes();
      ProtoReader pr(reinterpret_cast<const uint8_t*>(s.data()), s.size(), name);
      Piece p;
      while (!pr.done()) {
        const auto [f, w] = pr.key();
        if (f == 1 && w == 2) p.text = std::string(pr.bytes());
        else if (f == 2 && w == 5) {
          const uint32_t v = pr.fixed32();
          std::memcpy(&p.score, &v, 4);
        } else if (f == 3 && w == 0) p.type = int(pr.varint());
        else pr.skip(w);
      }
      m.pieces_.push_back(std::move(p));
    } else if (field == 2 && wire == 2) {  // trainer_spec
      const std::string_view s = r.bytes();
      ProtoReader tr(reinterpret_cast<const uint8_t*>(s.data()), s.size(), name);
      while (!tr.done()) {
        const auto [f, w] = tr.key();
        if (w != 0) {
          tr.skip(w);
          continue;
        }
        const int64_t v = int64_t(tr.varint());
        if (f == 3) model_type = int(v);
        else if (f == 40) m.unk_id_ = int(v), have_unk = true;
        else if (f == 42) m.eos_id_ = int(v), have_eos = true;
        else if (f == 35) byte_fallback = v != 0;
        else if (f == 43) m.pad_id_ = int(v);
      }
    } else if (field == 3 && wire == 2) {  // normalizer_spec
      const std::string_view s = r.bytes();
      ProtoReader nr(reinterpret_cast<const uint8_t*>(s.data()), s.size(), name);
      while (!nr.done()) {
        const auto [f, w] = nr.key();
        if (f == 2 && w == 2) charsmap = std::string(nr.bytes());
        else if (f == 3 && w == 0) m.add_dummy_prefix_ = nr.varint() != 0;
        else if (f == 4 && w == 0) m.remove_extra_whitespaces_ = nr.varint() != 0;
        else if (f == 5 && w == 0) m.escape_whitespaces_ = nr.varint() != 0;
        else nr.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  if (model_type != 1)
    throw_bad_input(name, "a SentencePiece model of type " + std::to_string(model_type) +
                              " (1 is unigram, what T5 uses; BPE, word and char models are not supported)");
  if (m.pieces_.empty()) throw_bad_input(name, "a SentencePiece model without pieces");
  const int n = int(m.pieces_.size());
  // The proto's defaults: unk 0, eos 2, pad -1 (T5's file sets pad 0, eos 1, unk 2).
  if (!have_unk) m.unk_id_ = 0;
  if (!have_eos) m.eos_id_ = 2;
  if (byte_fallback)
    throw_bad_input(name, "a SentencePiece model with byte fallback (not supported: T5's has none)");
  auto check_id = [&](int id, const char* what) {
    if (id < -1 || id >= n)
      throw_bad_input(name, std::string("the ") + what + " id " + std::to_string(id) + " is outside the " +
                                std::to_string(n) + " pieces");
  };
  check_id(m.unk_id_, "unknown-token");
  check_id(m.eos_id_, "end-of-sequence");
  check_id(m.pad_id_, "padding");
  if (m.unk_id_ < 0) throw_bad_input(name, "a SentencePiece model without an unknown token");

  // What the sentencepiece library refuses when it loads a model: a piece
  // of no known type, not UTF-8, or given twice; no <unk> at unk_id or a
  // second one. Scores must be finite (the Viterbi sums them).
  std::unordered_map<std::string, int> seen;
  int unknowns = 0;
  for (int i = 0; i < n; ++i) {
    const Piece& p = m.pieces_[size_t(i)];
    const std::string at = "piece " + std::to_string(i);
    if (p.type < 1 || p.type > 6) throw_bad_input(name, at + " has type " + std::to_string(p.type) + " (1..6)");
    if (!batch::valid_utf8(p.text)) throw_bad_input(name, at + " is not UTF-8");
    if (!std::isfinite(p.score)) throw_bad_input(name, at + " has a score that is not finite");
    if (!seen.emplace(p.text, i).second)
      throw_bad_input(name, at + " repeats piece " + std::to_string(seen[p.text]) + " (a piece is given once)");
    if (p.type == 2) {
      ++unknowns;
      if (i != m.unk_id_)
        throw_bad_input(name, at + " is an unknown-token piece, but unk_id is " + std::to_string(m.unk_id_));
    }
  }
  if (unknowns != 1 || m.pieces_[size_t(m.unk_id_)].type != 2)
    throw_bad_input(name, "piece " + std::to_string(m.unk_id_) + " (unk_id) is not the model's one unknown-token piece");
  for (int i = 0; i < n; ++i) m.ids_.emplace(m.pieces_[size_t(i)].text, i);

  bool any_normal = false;
  m.min_score_ = 0, m.max_score_ = 0;
  for (int i = 0; i < n; ++i) {
    const Piece& p = m.pieces_[size_t(i)];
    if (p.type == 1 || p.type == 4 || p.type == 5) {
      if (p.text.empty()) throw_bad_input(name, "piece " + std::to_string(i) + " is empty");
      m.lookup_.emplace(p.text, i);  // the first of duplicates, as the trie builder keeps
      m.max_piece_bytes_ = std::max(m.max_piece_bytes_, p.text.size());
    }
    if (p.type == 1) {
      if (!any_normal) m.min_score_ = m.max_score_ = p.score;
      m.min_score_ = std::min(m.min_score_, p.score);
      m.max_score_ = std::max(m.max_score_, p.score);
      any_normal = true;
    }
  }

  // The charsmap: u32 trie size in bytes, the trie's units, then the pool.
  if (!charsmap.empty()) {
    if (charsmap.size() < 4) throw_bad_input(name, "the normalizer's character map is shorter than its header");
    uint32_t trie_bytes;
    std::memcpy(&trie_bytes, charsmap.data(), 4);
    if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > charsmap.size() - 4)
      throw_bad_input(name, "the normalizer's character map has a trie of " + std::to_string(trie_bytes) +
                                " bytes in " + std::to_string(charsmap.size() - 4));
    m.trie_.resize(trie_bytes / 4);
    std::memcpy(m.trie_.data(), charsmap.data() + 4, trie_bytes);
    m.normalized_pool_ = charsmap.substr(4 + trie_bytes);
  }
  return m;
}

std::pair<std::string_view, size_t> SentencePiece::longest_rule(std::string_view s) const {
  if (trie_.empty()) return {{}, 0};
  // Darts-clone's commonPrefixSearch over the double array; a unit's fields:
  // label (bits 0-7 and 31), has_leaf (bit 8), offset (bits 10-31, shifted
  // by 8 when bit 9 is set); a leaf unit's value is its low 31 bits.
  auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  size_t pos = 0, longest = 0, results = 0;
  uint32_t value = 0;
  pos ^= offset(trie_[0]);
  for (size_t i = 0; i < s.size(); ++i) {
    const uint8_t c = uint8_t(s[i]);
    pos ^= c;
    if (pos >= trie_.size()) break;
    const uint32_t unit = trie_[pos];
    if ((unit & ((1u << 31) | 0xffu)) != c) break;
    pos ^= offset(unit);
    if (pos >= trie_.size()) break;
    if ((unit >> 8) & 1) {
      // SentencePiece keeps the first kMaxTrieResults matches and takes the longest of them.
      if (results++ < kMaxTrieResults) {
        longest = i + 1;
        value = trie_[pos] & ((1u << 31) - 1);
      }
    }
  }
  if (longest == 0) return {{}, 0};
  if (value >= normalized_pool_.size()) return {std::string_view(), longest};  // a rule to nothing
  const char* r = normalized_pool_.data() + value;
  return {std::string_view(r, strnlen(r, normalized_pool_.size() - value)), longest};
}

std::string SentencePiece::normalize(std::string_view input) const {
  auto prefix = [&](std::string_view s) -> std::pair<std::string_view, size_t> {
    const auto rule = longest_rule(s);
    if (rule.second > 0) return rule;
    const size_t n = std::min(one_char_len(uint8_t(s[0])), s.size());
    return {s.substr(0, n), n};
  };
  // Leading white space (after normalization) is dropped.
  if (remove_extra_whitespaces_) {
    while (!input.empty()) {
      const auto p = prefix(input);
      if (p.first != " ") break;
      input.remove_prefix(p.second);
    }
  }
  std::string out;
  if (input.empty()) return out;
  out.reserve(input.size() * 3 + 3);
  auto space = [&] {
    if (escape_whitespaces_) out += kSpaceSymbol;
    else out += ' ';
  };
  if (add_dummy_prefix_) space();
  bool prev_space = remove_extra_whitespaces_;
  while (!input.empty()) {
    const auto p = prefix(input);
    std::string_view sp = p.first;
    while (prev_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
    if (!sp.empty()) {
      for (char c : sp) {
        if (c == ' ' && escape_whitespaces_) out += kSpaceSymbol;
        else out += c;
      }
      prev_space = sp.back() == ' ';
    }
    input.remove_prefix(p.second);
    if (!remove_extra_whitespaces_) prev_space = false;
  }
  if (remove_extra_whitespaces_) {
    const std::string_view sym = escape_whitespaces_ ? kSpaceSymbol : std::string_view(" ");
    while (out.size() >= sym.size() && std::string_view(out).substr(out.size() - sym.size()) == sym)
      out.resize(out.size() - sym.size());
  }
  return out;
}

std::vector<SentencePiece::Segment> SentencePiece::segment(const std::string& s) const {
  // SentencePiece's EncodeOptimized: the best path ending at each byte
  // position, pieces tried shortest first from each character start; a
  // later candidate replaces the kept one only with a strictly higher score.
  struct Best {
    int id = -1;
    float score = 0;
    long begin = -1;
  };
  const size_t size = s.size();
  std::vector<Best> best(size + 1);
  const float unk_score = min_score_ - kUnkPenalty;
  size_t begin = 0;
  while (begin < size) {
    const float here = best[begin].score;
    const size_t mblen = std::min(one_char_len(uint8_t(s[begin])), size - begin);
    bool single = false;
    const size_t longest = std::min(max_piece_bytes_, size - begin);
    for (size_t len = 1; len <= longest; ++len) {
      const auto it = lookup_.find(s.substr(begin, len));
      if (it == lookup_.end()) continue;
      const Piece& p = pieces_[size_t(it->second)];
      if (p.type == 5) continue;  // UNUSED: in the trie, never chosen
      Best& t = best[begin + len];
      const float score = (p.type == 4 ? float(double(len) * max_score_ - 0.1) : p.score) + here;
      if (t.begin == -1 || score > t.score) t = {it->second, score, long(begin)};
      if (len == mblen) single = true;
    }
    if (!single) {
      Best& t = best[begin + mblen];
      const float score = unk_score + here;
      if (t.begin == -1 || score > t.score) t = {unk_id_, score, long(begin)};
    }
    begin += mblen;
  }
  std::vector<Segment> out;
  for (size_t end = size; end > 0;) {
    const Best& b = best[end];
    out.push_back({size_t(b.begin), end, b.id});
    end = size_t(b.begin);
  }
  std::reverse(out.begin(), out.end());
  // Runs of unknown pieces merge (SentencePieceProcessor's output step).
  std::vector<Segment> merged;
  for (const Segment& g : out) {
    if (!merged.empty() && g.id == unk_id_ && merged.back().id == unk_id_) merged.back().end = g.end;
    else merged.push_back(g);
  }
  return merged;
}

int SentencePiece::piece_to_id(const std::string& piece) const {
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> SentencePiece::encode(std::string_view text) const {
  std::vector<int> ids;
  for (const Segment& g : segment(normalize(text))) ids.push_back(g.id);
  return ids;
}

std::vector<std::string> SentencePiece::encode_pieces(std::string_view text) const {
  const std::string n = normalize(text);
  std::vector<std::string> out;
  for (const Segment& g : segment(n)) out.push_back(n.substr(g.begin, g.end - g.begin));
  return out;
}

T5Tokens t5_tokens(const SentencePiece& sp, std::string_view text, int max_length) {
  if (max_length < 1) throw_runtime("t5_tokens: max_length " + std::to_string(max_length));
  // transformers finds </s> and <pad> by their pieces (T5's file also names them by id, 1 and 0).
  const int eos = sp.piece_to_id("</s>"), pad = sp.piece_to_id("<pad>");
  if (eos < 0 || pad < 0) throw_runtime("t5_tokens: the SentencePiece model has no </s> or <pad> piece");
  const std::vector<int> pieces = sp.encode(text);
  T5Tokens t;
  t.pieces = pieces.size();
  const size_t keep = std::min(pieces.size(), size_t(max_length - 1));
  t.truncated = keep < pieces.size();
  t.ids.assign(size_t(max_length), pad);
  t.mask.assign(size_t(max_length), 0);
  for (size_t i = 0; i < keep; ++i) t.ids[i] = pieces[i], t.mask[i] = 1;
  t.ids[keep] = eos;
  t.mask[keep] = 1;
  return t;
}

}  // namespace rass::text
