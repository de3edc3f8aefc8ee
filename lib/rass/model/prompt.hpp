// The text prompt of rass-restore, torch-free: tag lists as RAM/DAPE print
// them, joined with a user prompt as OSEDiff or RASS do (REFERENCE.md 3, 4).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rass/batch/inputs.hpp"

namespace rass::model {

enum class PromptStyle { osediff, rass };

// A tag line split into tags: separators ',' (RAM/DAPE in OSEDiff print
// "a, b, c") and '|' (upstream RAM prints "a | b | c"); tags are stripped of
// surrounding whitespace, empty ones dropped.
std::vector<std::string> split_tags(const std::string& line);

// osediff: f"{tags}, {prompt}," with tags joined by ", " (OSEDiff's test
// script; an empty user prompt gives "a, b, ,"). With no tags at all the
// reference would start with ", ": kept as the reference does.
// rass: the tags joined by ", " and, when given, ", " + prompt, then every
// comma removed ("a, b, c" -> "a b c", RASS stage 2).
std::string build_prompt(PromptStyle style, const std::vector<std::string>& tags, const std::string& user_prompt);

// The tag lines of --tags FILE|- : either every non-empty line is
// "KEY<TAB>tags" (matched to items by key), or no line has a TAB and line i
// (blank lines included) belongs to item i in input order. Mixing the two
// forms, or a key given twice, throws Error(bad_input) naming the file.
struct TagLines {
  std::string path;
  bool keyed = false;
  std::vector<std::string> lines;             // positional form
  std::map<std::string, std::string> by_key;  // keyed form, the keys as written
  std::map<std::string, std::string> trimmed_keys;  // a key without its outer spaces -> as written
  // The tags of item `index` / `key`. Throws Error(bad_input) naming the file
  // when the file has no line for it.
  std::string for_item(size_t index, const std::string& key) const;
  // Positional form: throws Error(bad_input) naming the file when a non-blank
  // line has no input (a stray line would shift every later prompt by one).
  // Blank lines past the last input are allowed (a file ending in blank lines).
  void check_no_extra_lines(size_t inputs) const;
  // Positional form: throws Error(bad_input) naming the file when it has no
  // line for one of `items` (a shard's, input_index their input positions),
  // before any work: a file short of lines has likely lost one somewhere,
  // which shifts every later prompt. Keyed form: nothing (a key the file
  // lacks fails that item alone, the others go on).
  void check_has_lines(const std::vector<batch::Item>& items, const std::vector<size_t>& input_index) const;
};
TagLines read_tag_lines(const std::string& path);
// --tags of a run over `inputs` inputs: none for "", else read_tag_lines with
// check_no_extra_lines(inputs), before any work; for a batch run also
// check_has_lines for its shard's `items` (at input positions `input_index`).
std::optional<TagLines> read_item_tags(const std::string& path, size_t inputs);
std::optional<TagLines> read_item_tags(const std::string& path, size_t inputs, const std::vector<batch::Item>& items,
                                       const std::vector<size_t>& input_index);

// --prompt-file FILE|- : the file's text, trailing line ends dropped.
std::string read_prompt_file(const std::string& path);

// The warning rass-restore and rass-segment give for a prompt of `tokens`
// tokens past the text encoder's `max_tokens` (start and end included);
// "" when it fits.
std::string prompt_cut_warning(const std::string& name, size_t tokens, int64_t max_tokens);

// The prompt of each item of rass-restore and rass-segment: the user's text
// (--prompt or --prompt-file) and, with --tags, the item's tags joined with
// it by the style.
struct ItemPrompts {
  PromptStyle style = PromptStyle::rass;
  std::string user_prompt;
  std::optional<TagLines> tags;
  // Without tags the user's text as given; with tags, build_prompt's join.
  std::string for_item(size_t index, const std::string& key) const;
};

}  // namespace rass::model
