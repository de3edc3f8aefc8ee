// Unicode ranges of the BERT basic tokenizer (generated: tests/text/make_wordpiece_tables.py).
#pragma once
#include <cstddef>

namespace rass::text::tables {

struct CodeRange {
  char32_t first, last;
};
extern const CodeRange kMarkNonspacing[];  // category Mn
extern const size_t kMarkNonspacing_size;
extern const CodeRange kPunctuation[];     // BasicTokenizer's _is_punctuation
extern const size_t kPunctuation_size;

}  // namespace rass::text::tables
