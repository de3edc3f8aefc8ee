// rass-caption-map's core, torch-free: a label map and image tags -> the prompt
// terms (seed 000 section 3.2: T = T_Seg u T_RAM), the class each tag inherits
// its mask from (section 8.3), and each term's CLIP token positions, which is
// what the semantic-constrained loss (SCL) needs.
//
// Terms, in prompt order:
//   1. the classes present in the label map (pixels != ignore), by pixel count,
//      largest first (ties: lower class index first), so that truncation at 77
//      tokens drops the smallest regions; each is spelt by its prompt name
//      (class_prompt_name) and its mask is its own region;
//   2. the tags, in the order given, except a tag whose normalised spelling
//      equals an earlier term's (the union of T_Seg and T_RAM: "lake" from RAM
//      next to the class "lake" is one term). A tag whose best class scores at
//      least the threshold inherits that class's region as its mask (empty when
//      the class is not in this label map); other tags have no class and no
//      mask (seed 000 Figure 3: "spire" is excluded from SCL).
// Prompt: the terms joined with ", " (--prompt-style osediff, OSEDiff's tag
// prompt) or with " " (rass: RASS stage 2 removes the commas).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/text/clip_tokenizer.hpp"
#include "rass/text/tag_similarity.hpp"

namespace rass::text {

// A tag and its best class.
struct TagMatch {
  std::string tag;
  int class_index = -1;  // the most similar class (ties: lowest index); -1: no score at all
  double score = 0;      // its score (NaN when class_index is -1)
  bool kept = false;     // score >= threshold: the tag inherits the class's mask
};
TagMatch match_tag(const TagSimilarity& sim, const std::string& tag, double threshold);

// One tag as it goes into a prompt: each comma becomes a space, every run of
// whitespace one space, both ends trimmed, so the osediff prompt ("a, b, c")
// splits back into the same tags. A tag without any letter or digit (ASCII
// alphanumerics; any non-ASCII character counts as one) names nothing: ""
// is returned and the tag is dropped.
std::string clean_tag(const std::string& raw);

// One line of tags as RAM, DAPE or caption-map print them: "a | b | c" (RAM's
// " | " separator: used when the line has a '|') or "a, b, c"; a leading
// "Image Tags:" label (RAM's inference script) is dropped; each tag is cleaned
// (clean_tag: a RAM tag holding commas keeps them as spaces); empty ones dropped.
std::vector<std::string> parse_tag_list(const std::string& line);

// A label map as class indices (-1 = ignore), with pixel counts per class.
struct LabelMap {
  int width = 0, height = 0;
  std::vector<int32_t> labels;  // row-major
  std::vector<uint64_t> pixels;  // per class
};
// Reads a single-channel 8/16-bit label map (io read_label_image; "-" = stdin).
// Value 255 is ignore; with reduce_zero_label (raw ADE20K annotations) 0 also
// becomes ignore and every other value v is class v - 1, as mmseg does. Throws
// Error(bad_input) naming the file for an unreadable or multi-channel image and
// for a value outside the class list (giving the value and the class count).
LabelMap read_label_map(const std::string& path, size_t num_classes, bool reduce_zero_label);

enum class PromptStyle { osediff, rass };

struct Term {
  std::string text;          // as in the prompt
  bool from_label_map = false;
  int class_index = -1;      // whose region is the mask (-1: none)
  double score = 1.0;        // label-map classes 1; tags their similarity (NaN: none)
  uint64_t pixels = 0;       // mask area (0: no mask)
  std::vector<int> positions;  // token positions in the padded prompt (1 = after bos)
  int tokens = 0;            // the term's tokens in the untruncated prompt (osediff: a tag's closing
                             // punctuation merged with the ", " after it belongs to no tag)
  bool truncated() const { return static_cast<int>(positions.size()) < tokens; }
};

struct CaptionMap {
  std::vector<Term> terms;
  std::vector<TagMatch> tags;      // every tag given, in order
  std::vector<int> tag_term;       // per tag: its term index, or the earlier term it duplicates
  std::string prompt;
  std::vector<int> token_ids;      // the padded prompt (empty without a tokenizer)
  int max_length = 77;
};

// `tokenizer` may be null: no token positions then.
CaptionMap build_caption_map(const LabelMap& map, const std::vector<std::string>& classes,
                             const std::vector<TagMatch>& tags, PromptStyle style, const ClipTokenizer* tokenizer,
                             int max_length = 77);

// The binary masks [terms, height, width] (1 inside a term's class region).
std::vector<uint8_t> term_masks(const CaptionMap& cm, const LabelMap& map);

}  // namespace rass::text
