// The HDF5 file rass-caption-map writes per image, for SCL training (rass-train
// scr reads it). Layout, format_version 1 (T terms, H x W the label map, L the
// tokenizer's max_length 77, N classes in the list, M tags given):
//
// Root attributes
//   format           string  "rass-caption-map"
//   format_version   int64   1
//   key              string  the item key (batch: relative path without extension)
//   label_map        string  the label map's path as given ("-" for stdin)
//   prompt           string  the prompt, exactly what was printed
//   prompt_style     string  "osediff" (terms joined by ", ") or "rass" (by " ")
//   similarity       string  "wordnet", "table" or "sbert"
//   threshold        float64 the similarity a tag needed to inherit a mask
//   height, width    int64   the label map's size
//   max_length       int64   L
// Datasets (strings are variable-length UTF-8)
//   terms            str[T]       prompt terms in prompt order
//   term_source      uint8[T]     1: a class present in the label map; 0: a tag
//   class_index      int32[T]     the class whose region is the term's mask; -1: none
//   class_name       str[T]       that class's name in the list; "" for none
//   score            float64[T]   1 for label-map classes; a tag's best similarity
//                                 (even when below the threshold); NaN: no score
//   has_mask         uint8[T]     1 when the mask has at least one pixel
//   masks            uint8[T,H,W] 1 inside the term's mask (deflate-compressed)
//   token_ids        int32[L]     the padded CLIP prompt (bos ... eos pad ...)
//   token_mask       uint8[T,L]   1 at the positions of the term's tokens
//   token_count      int32[T]     the term's token count before truncation
//   truncated        uint8[T]     1 when truncation at L cut some of its tokens
//   classes          str[N]       the class list (index = label value)
//   classes_present  int32[K]     the label map's classes, in prompt order
//   tags             str[M]       the tags given, in order (before de-duplication)
//   tag_class_index  int32[M]     each tag's most similar class (-1: no score)
//   tag_score        float64[M]   its score (NaN: none)
//   tag_kept         uint8[M]     score >= threshold
//   tag_term         int32[M]     the term the tag is (or duplicates)
//
// SCL uses, for each term t with has_mask[t], the cross-attention maps at the
// positions where token_mask[t] is 1, against masks[t].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/text/caption_map.hpp"

namespace rass::text {

struct PackInfo {
  std::string key, label_map, prompt_style, similarity;
  double threshold = 0.5;
};

// The file's bytes (write them with write_file_atomic). Needs token positions
// (build_caption_map with a tokenizer). Throws Error(runtime) on HDF5 failures.
std::vector<uint8_t> caption_pack_bytes(const CaptionMap& cm, const LabelMap& map,
                                        const std::vector<std::string>& classes, const PackInfo& info);

// What rass-train scr needs of a pack, read back.
struct CaptionPack {
  std::string path;  // as given (for messages)
  std::string key, prompt, prompt_style;
  int64_t height = 0, width = 0, max_length = 77;
  std::vector<std::string> terms;     // [T]
  std::vector<uint8_t> has_mask;      // [T]
  std::vector<uint8_t> masks;         // [T, height, width] row-major, 0/1
  std::vector<int32_t> token_ids;     // [max_length]
  std::vector<uint8_t> token_mask;    // [T, max_length], 0/1
  size_t term_count() const { return terms.size(); }
};

// Reads and checks a pack: format "rass-caption-map", format_version 1, and
// every dataset SCL uses with the shape the header promises (T terms, H x W,
// L tokens; 0/1 masks; token ids >= 0). Throws Error(bad_input) naming the
// file and what is wrong (an attribute or dataset missing, a wrong shape).
CaptionPack read_caption_pack(const std::string& path);

}  // namespace rass::text
