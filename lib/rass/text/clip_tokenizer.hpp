// The CLIP byte-level BPE tokenizer of Stable Diffusion (1.x: OpenAI CLIP ViT-L;
// 2.x: OpenCLIP ViT-H, same vocabulary), torch-free, equal to transformers'
// slow CLIPTokenizer as diffusers loads it from a model's `tokenizer/` folder
// (CLIPTokenizer.from_pretrained; reference: transformers main at commit
// b499a14b17062257a41accc12e833f48f0a69409, 4.52.0.dev0; the goldens of
// tests/text/make_tokenizer_golden.py check every behaviour below).
//
// Text cleaning is the path transformers takes when the optional `ftfy` package
// is NOT installed (a plain `pip install diffusers transformers`):
// BasicTokenizer(strip_accents=False, do_split_on_punc=False) — drop control
// characters, NUL and U+FFFD; whitespace to " "; spaces around CJK ideographs;
// NFC; split on whitespace; str.lower() — then the CLIP regex
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (IGNORECASE), bytes_to_unicode, BPE with the merges' ranks and "</w>" on the
// last symbol of a word. With ftfy installed, transformers instead runs
// ftfy.fix_text + whitespace collapsing + lower(); the two agree on plain text
// (ASCII, Latin letters with accents, digits, tag prompts) and differ on CJK
// ideographs (split one per word here), curly quotes, ligatures, HTML entities,
// full-width forms and mojibake (which ftfy rewrites). The golden set records
// which of its strings the ftfy path tokenizes identically.
//
// Added tokens: the special tokens (bos, eos, unk, pad and any additional ones)
// and the tokens of `added_tokens_decoder` are cut out of the raw text before
// cleaning (transformers' Trie.split) and map to their ids directly. SD 2.x's
// pad token is "!" (id 0), so there every "!" in a prompt becomes id 0 (not the
// "!</w>" id, and "!!" is two tokens): this is what diffusers feeds the SD 2.x
// text encoder, and it is reproduced on purpose.
//
// Not supported: tokenizer.json (fast tokenizer) and added_tokens.json files,
// AddedToken.single_word, and ftfy's cleaning.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace rass::text {

// Token positions of the tags of a comma-separated tag prompt (RASS' SCL loss
// compares each tag's cross-attention maps with its mask).
//
// The prompt is split at every ',' (U+002C) into segments. Each segment whose
// text, with Python-whitespace stripped from both ends, is not empty is a tag,
// in order; empty segments ("a,,b", a trailing ",") are no tags. A token of
// encode_padded(prompt, max_len) belongs to tag k when every character of the
// text it was made from comes from segment k: a BPE token from a regex word,
// that word's characters; an added token (e.g. SD 2.x's "!"), its characters.
// Tokens whose word contains a separating comma (",", or punctuation merged with
// it as in "dog)," -> ")," ) belong to no tag, and neither do bos, eos and pad.
// `positions` are indices into the padded sequence (1 = first token after bos),
// ascending; a tag cut off by the max_len truncation has fewer positions, or
// none. Whitespace and characters the cleaning drops never affect positions.
struct TagTokens {
  std::string tag;             // the segment, stripped
  std::vector<int> positions;  // into `ids`
};
struct TagPrompt {
  std::vector<int> ids;  // == encode_padded(prompt, max_len)
  std::vector<TagTokens> tags;
};

class ClipTokenizer {
 public:
  // `tokenizer_dir_or_vocab`: a folder with vocab.json and merges.txt, and
  // optionally tokenizer_config.json / special_tokens_map.json, read as
  // transformers does (SD 2.x's give pad_token "!"; SD 1.x's "<|endoftext|>",
  // also the default). Or the path of vocab.json itself, with `merges` (default:
  // merges.txt beside it); then no config is read and the defaults apply
  // (bos <|startoftext|>, eos = unk = pad = <|endoftext|>).
  // A missing or malformed file throws rass::Error (bad_input) naming it.
  static ClipTokenizer load(const std::string& tokenizer_dir_or_vocab, const std::string& merges = "");

  // BPE ids without special tokens (tokenizer(text, add_special_tokens=False)).
  std::vector<int> encode(const std::string& text) const;
  // <bos> ids <eos>, ids cut to max_len - 2, padded with pad() to max_len
  // (tokenizer(text, padding="max_length", max_length=max_len, truncation=True)).
  std::vector<int> encode_padded(const std::string& text, int max_len = 77) const;
  // The token strings of encode() (byte-level symbols, "</w>" ends a word).
  std::vector<std::string> tokenize(const std::string& text) const;
  // tokenizer.decode(ids, skip_special_tokens=skip_special,
  // clean_up_tokenization_spaces=False). An unknown id throws rass::Error (usage).
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const;

  TagPrompt tag_positions(const std::string& prompt, int max_len = 77) const;

  int bos() const;
  int eos() const;
  int pad() const;
  int unk() const;
  // Number of entries of vocab.json (the id range of the text encoder's embedding
  // is larger only when added tokens outside the vocabulary exist).
  int vocab_size() const;
  // The id of a vocabulary or added token string, or -1.
  int token_to_id(const std::string& token) const;

  struct Impl;

 private:
  explicit ClipTokenizer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;  // immutable but for a thread-safe word cache
};

}  // namespace rass::text
