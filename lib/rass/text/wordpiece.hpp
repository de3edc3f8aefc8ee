// BERT's WordPiece tokenizer, torch-free, equal to transformers' slow
// BertTokenizer with do_lower_case=True (what sentence-transformers models such
// as all-MiniLM / all-mpnet-base ship; goldens: tests/nn/make_bert_fixture.py):
//   1. the special tokens ([CLS], [SEP], [PAD], [MASK], [UNK]) are cut out of the
//      raw text and kept whole; the rest is
//   2. cleaned (BasicTokenizer._clean_text: NUL, U+FFFD and control characters
//      dropped, whitespace to " "), CJK ideographs padded with spaces, NFC,
//      split on whitespace; each word lower-cased (str.lower()) and stripped of
//      accents (NFD, category Mn dropped), then split at every punctuation
//      character (ASCII punctuation and categories P*);
//   3. each word is split greedily into the longest vocabulary pieces, the
//      non-initial ones prefixed "##"; a word with an unmatched rest, or longer
//      than 100 code points, becomes [UNK].
// encode() adds [CLS] ... [SEP] and truncates to max_length (the model's
// max_seq_length) keeping [SEP] last.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

namespace rass::text {

class WordPiece {
 public:
  // vocab.txt: one token per line, id = line number. `lower_case`: from
  // tokenizer_config.json's do_lower_case (default true). Throws
  // Error(bad_input) naming the file when it is missing, empty or lacks [UNK].
  static WordPiece load(const std::string& vocab_txt, bool lower_case = true);

  std::vector<std::string> tokenize(const std::string& text) const;  // tokenizer.tokenize(text)
  // [CLS] ids [SEP], cut to max_length.
  std::vector<int> encode(const std::string& text, int max_length = 512) const;
  int token_to_id(const std::string& token) const;  // -1 when absent
  int cls() const { return cls_; }
  int sep() const { return sep_; }
  int pad() const { return pad_; }
  int unk() const { return unk_; }
  int vocab_size() const { return static_cast<int>(vocab_.size()); }

 private:
  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> specials_;
  bool lower_ = true;
  int cls_ = -1, sep_ = -1, pad_ = -1, unk_ = -1;
  void basic_and_wordpiece(const std::string& text, std::vector<std::string>& out) const;
};

}  // namespace rass::text
