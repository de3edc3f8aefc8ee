#include "rass/model/prompt.hpp"

#include <algorithm>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/text_lines.hpp"
#include "rass/core/strings.hpp"

namespace rass::model {

std::vector<std::string> split_tags(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line + ",") {
    if (c == ',' || c == '|') {
      std::string t = trim(cur);
      if (!t.empty()) out.push_back(t);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

std::string build_prompt(PromptStyle style, const std::vector<std::string>& tags, const std::string& user_prompt) {
  std::string joined;
  for (size_t i = 0; i < tags.size(); ++i) joined += (i ? ", " : "") + tags[i];
  if (style == PromptStyle::osediff) return joined + ", " + user_prompt + ",";
  std::string text = joined;
  if (!user_prompt.empty()) text += (text.empty() ? "" : ", ") + user_prompt;
  std::string out;
  for (char c : text)
    if (c != ',') out += c;
  return out;
}

TagLines read_tag_lines(const std::string& path) {
  const std::string name = path == "-" ? "<stdin>" : path;
  TagLines t;
  t.path = name;
  // A lone CR ends a line too (classic Mac files; read as one line, every
  // prompt would have been the whole file's tags run together).
  const std::vector<std::string> lines = text_lines(read_text_file_bytes(path));
  size_t with_tab = 0, non_empty = 0;
  for (const auto& l : lines) {
    if (trim(l).empty()) continue;
    ++non_empty;
    if (l.find('\t') != std::string::npos) ++with_tab;
  }
  if (with_tab > 0 && with_tab != non_empty)
    throw_bad_input(name, "mixes KEY<TAB>tags lines with plain tag lines; use one form");
  t.keyed = with_tab > 0;
  if (!t.keyed) {
    t.lines = lines;
    return t;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    const size_t tab = lines[i].find('\t');
    // The key as written (an item key may begin or end with a space), and
    // trimmed for a lookup that finds no such key ("a <TAB>tags" for item a).
    const std::string key = lines[i].substr(0, tab), trimmed = trim(key);
    if (trimmed.empty()) throw_bad_input(name, "line " + std::to_string(i + 1) + ": empty key before the TAB");
    if (!t.by_key.emplace(key, lines[i].substr(tab + 1)).second || !t.trimmed_keys.emplace(trimmed, key).second)
      throw_bad_input(name, "line " + std::to_string(i + 1) + ": key '" + trimmed + "' given twice");
  }
  return t;
}

std::optional<TagLines> read_item_tags(const std::string& path, size_t inputs) {
  if (path.empty()) return std::nullopt;
  TagLines t = read_tag_lines(path);
  t.check_no_extra_lines(inputs);
  return t;
}

std::optional<TagLines> read_item_tags(const std::string& path, size_t inputs, const std::vector<batch::Item>& items,
                                       const std::vector<size_t>& input_index) {
  std::optional<TagLines> t = read_item_tags(path, inputs);
  if (t) t->check_has_lines(items, input_index);
  return t;
}

std::string TagLines::for_item(size_t index, const std::string& key) const {
  if (keyed) {
    auto it = by_key.find(key);
    if (it == by_key.end())
      if (auto t = trimmed_keys.find(key); t != trimmed_keys.end()) it = by_key.find(t->second);
    if (it == by_key.end()) throw_bad_input(path, "no tags for item '" + key + "' (no line KEY<TAB>tags with that key)");
    return it->second;
  }
  if (index >= lines.size())
    throw_bad_input(path, "has " + std::to_string(lines.size()) + " line(s); item " + std::to_string(index + 1) + " ('" +
                              key + "') has no tag line (one line per input, in input order)");
  return lines[index];
}

void TagLines::check_has_lines(const std::vector<batch::Item>& items, const std::vector<size_t>& input_index) const {
  if (keyed || input_index.empty()) return;
  // The shard's items are in key order: the last input is the one to check.
  const size_t k = size_t(std::max_element(input_index.begin(), input_index.end()) - input_index.begin());
  (void)for_item(input_index[k], items[k].key);
}

void TagLines::check_no_extra_lines(size_t inputs) const {
  if (keyed) return;
  for (size_t i = lines.size(); i-- > inputs;)
    if (!trim(lines[i]).empty())
      throw_bad_input(path, "line " + std::to_string(i + 1) + " has tags but there are " + std::to_string(inputs) +
                                " input(s) (one line per input, in input order: a stray line shifts every later "
                                "prompt); remove it, or give KEY<TAB>tags lines");
}

std::string prompt_cut_warning(const std::string& name, size_t tokens, int64_t max_tokens) {
  if (int64_t(tokens) <= max_tokens - 2) return "";
  return "warning: " + name + ": the prompt has " + std::to_string(tokens) + " tokens; the text encoder takes " +
         std::to_string(max_tokens - 2) + " (+ start and end): the rest is cut off, as the tokenizer's truncation does";
}

std::string read_prompt_file(const std::string& path) {
  // A prompt is a line or a paragraph (the text encoder takes 75 tokens):
  // 1 MiB is far past any, and an endless stream (`yes |`) stops there.
  const std::vector<uint8_t> b = read_text_file_bytes(path, size_t(1) << 20);
  std::string text(b.begin() + std::ptrdiff_t(utf8_bom_size(b.data(), b.size())), b.end());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string ItemPrompts::for_item(size_t index, const std::string& key) const {
  if (!tags) return user_prompt;
  return build_prompt(style, split_tags(tags->for_item(index, key)), user_prompt);
}

}  // namespace rass::model
