// SentencePiece's unigram tokenizer (what T5's spiece.model holds), torch-free,
// equal to the sentencepiece library's encode (goldens:
// tests/text/make_t5_tokenizer_fixture.py):
//   1. normalization by the model's precompiled character map (a Darts
//      double-array trie of rewrite rules; T5's is nmt_nfkc: NFKC plus
//      control characters dropped and white space variants made " "): at each
//      position the longest rule that matches is applied, else one UTF-8
//      character is copied; leading, trailing and repeated spaces are
//      dropped, a space is put in front ("dummy prefix") and spaces become
//      U+2581 "▁" (the spec's add_dummy_prefix, remove_extra_whitespaces and
//      escape_whitespaces);
//   2. the Viterbi best segmentation into vocabulary pieces by their scores
//      (unigram language model); a character no piece covers is <unk> with
//      the lowest score minus 10, and runs of <unk> merge into one.
// For text with single spaces and no leading or trailing space (what PixArt's
// caption cleaning gives) transformers' fast T5 tokenizer gives the same ids;
// the fixture script checks that on every caption it writes.
// Only what unigram models use is read: a BPE, word or char model is refused.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rass::text {

class SentencePiece {
 public:
  // The protobuf ModelProto of a .model file. Throws Error(bad_input) naming
  // `name` for a malformed file, a model type other than unigram, ids (unk,
  // eos, pad) outside the vocabulary, and what the sentencepiece library
  // refuses: a piece of unknown type, not UTF-8 or given twice, not exactly
  // one unknown-token piece (at unk_id); also scores that are not finite.
  static SentencePiece parse(const std::vector<uint8_t>& bytes, const std::string& name);
  static SentencePiece load(const std::string& path);

  // Step 1: the normalized text ("▁" for spaces). `text` must be valid UTF-8.
  std::string normalize(std::string_view text) const;
  // Steps 1 and 2: the pieces' ids (no end-of-sequence token).
  std::vector<int> encode(std::string_view text) const;
  // The pieces' strings of encode (merged <unk> runs as their text).
  std::vector<std::string> encode_pieces(std::string_view text) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  int unk_id() const { return unk_id_; }
  int eos_id() const { return eos_id_; }  // -1: none
  int pad_id() const { return pad_id_; }  // -1: none
  const std::string& piece(int id) const { return pieces_.at(static_cast<size_t>(id)).text; }
  int piece_to_id(const std::string& piece) const;  // any type; -1 when absent

 private:
  struct Piece {
    std::string text;
    float score = 0;
    int type = 1;  // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
  };
  std::vector<Piece> pieces_;
  std::unordered_map<std::string, int> lookup_;  // NORMAL, USER_DEFINED and UNUSED pieces
  std::unordered_map<std::string, int> ids_;     // every piece
  size_t max_piece_bytes_ = 0;
  float min_score_ = 0, max_score_ = 0;
  int unk_id_ = 0, eos_id_ = -1, pad_id_ = -1;
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  std::vector<uint32_t> trie_;     // the charsmap's double array
  std::string normalized_pool_;    // its NUL-separated replacement strings

  struct Segment {
    size_t begin, end;
    int id;
  };
  std::vector<Segment> segment(const std::string& normalized) const;
  // The longest rule matching at the start of `s`: (replacement, bytes consumed); consumed 0: none.
  std::pair<std::string_view, size_t> longest_rule(std::string_view s) const;
};

// What PixArt's T5Embedder asks of the tokenizer (padding="max_length",
// truncation, special tokens): the pieces cut to max_length - 1, then </s>,
// then <pad> up to max_length; mask 1 on the pieces and </s>, 0 on padding.
// </s> and <pad> are found by their pieces, as transformers finds them.
struct T5Tokens {
  std::vector<int64_t> ids, mask;
  size_t pieces = 0;       // pieces before the cut
  bool truncated = false;  // pieces > max_length - 1
};
T5Tokens t5_tokens(const SentencePiece& sp, std::string_view text, int max_length);

}  // namespace rass::text
