// A small CLIP-layout BPE vocabulary learned from a word list, so that every
// listed word is one token (the tiny text encoder of the mini world sees
// "windowpane" as one id, as SD's 49k-entry vocabulary sees common words).
//
// Layout as OpenAI CLIP's vocab.json: the 256 byte symbols of
// bytes_to_unicode in its order, the same 256 with "</w>", then one entry per
// merge in merge order, then <|startoftext|> and <|endoftext|>. Merges are
// learned by plain BPE on the words (each word once, lower-cased as the
// tokenizer lower-cases; "</w>" on the last symbol): repeatedly the most
// frequent adjacent pair, ties broken by the pair's text, until every word is
// one symbol. Applying merges in rank order (what the tokenizer does)
// reproduces the learned segmentation of every training word, so each listed
// word encodes to exactly one id; any other text still tokenizes (down to
// single bytes at worst).
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace rass::text {

struct BpeVocab {
  std::vector<std::string> tokens;                           // id -> token string (vocab.json order)
  std::vector<std::pair<std::string, std::string>> merges;   // rank order
};

// `words`: letters only after lower-casing (what the CLIP regex keeps as one
// word: [\p{L}]+); anything else throws rass::Error (usage) naming the word.
// Duplicates are ignored. Deterministic: the same list (in any order) gives
// the same vocabulary.
BpeVocab learn_word_bpe(const std::vector<std::string>& words);

// Writes a CLIPTokenizer folder of SD 2.x's layout: vocab.json, merges.txt
// ("#version: 0.2" then one "a b" line per merge), special_tokens_map.json and
// tokenizer_config.json (pad "!", model_max_length 77, name_or_path `name`).
// Atomic per file; throws rass::Error on a failed write.
void write_clip_tokenizer(const BpeVocab& vocab, const std::string& dir, const std::string& name);

// The byte symbols of CLIP's bytes_to_unicode, as UTF-8 strings, in vocab order.
std::vector<std::string> clip_byte_symbols();

}  // namespace rass::text
