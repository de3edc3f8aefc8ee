#include "rass/text/caption_map.hpp"

#include <algorithm>
#include <unordered_map>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

#include "rass/core/error.hpp"
#include "rass/core/strings.hpp"
#include "rass/io/image_io.hpp"
#include "rass/text/wordnet.hpp"

namespace rass::text {

TagMatch match_tag(const TagSimilarity& sim, const std::string& tag, double threshold) {
  TagMatch m;
  m.tag = tag;
  m.score = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> s = sim.scores(tag);
  for (size_t c = 0; c < s.size(); ++c)
    if (!std::isnan(s[c]) && (m.class_index < 0 || s[c] > m.score)) m.class_index = static_cast<int>(c), m.score = s[c];
  m.kept = m.class_index >= 0 && m.score >= threshold;
  return m;
}

std::string clean_tag(const std::string& raw) {
  std::string out;
  bool names_something = false;
  for (char ch : raw) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == ',' || std::isspace(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    names_something = names_something || std::isalnum(c) || c >= 0x80;
    out += ch;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return names_something ? out : std::string();
}

std::vector<std::string> parse_tag_list(const std::string& line) {
  std::string s = trim(line);
  static const std::string kLabel = "Image Tags:";
  if (s.compare(0, kLabel.size(), kLabel) == 0) s = s.substr(kLabel.size());
  const char sep = s.find('|') != std::string::npos ? '|' : ',';
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    const std::string t = clean_tag(s.substr(start, end - start));
    if (!t.empty()) out.push_back(t);
    start = end + 1;
  }
  return out;
}

LabelMap read_label_map(const std::string& path, size_t num_classes, bool reduce_zero_label) {
  const std::string name = path == "-" ? "<stdin>" : path;
  const Image img = read_label_image(path);
  if (img.channels != 1)
    throw_bad_input(name, "is not a label map: it has " + std::to_string(img.channels) +
                              " channels (expected one channel of class indices, or a palette PNG)");
  LabelMap m;
  m.width = img.width;
  m.height = img.height;
  m.pixels.assign(num_classes, 0);
  const size_t n = size_t(img.width) * img.height;
  m.labels.resize(n);
  for (size_t i = 0; i < n; ++i) {
    long v = img.depth == 16 ? img.u16()[i] : img.u8()[i];
    if (v == 255) v = -1;
    else if (reduce_zero_label) v = v == 0 ? -1 : v - 1;
    if (v >= static_cast<long>(num_classes))
      throw_bad_input(name, "label value " + std::to_string(reduce_zero_label ? v + 1 : v) + " at (" +
                                std::to_string(i % img.width) + ", " + std::to_string(i / img.width) +
                                ") is beyond the " + std::to_string(num_classes) + " classes of the class list" +
                                (reduce_zero_label ? " (after --reduce-zero-label)" : "") +
                                " (wrong --classes? raw ADE20K annotations need --reduce-zero-label)");
    m.labels[i] = static_cast<int32_t>(v);
    if (v >= 0) ++m.pixels[v];
  }
  return m;
}

CaptionMap build_caption_map(const LabelMap& map, const std::vector<std::string>& classes,
                             const std::vector<TagMatch>& tags, PromptStyle style, const ClipTokenizer* tokenizer,
                             int max_length) {
  CaptionMap cm;
  cm.max_length = max_length;
  std::vector<int> present;
  for (size_t c = 0; c < map.pixels.size(); ++c)
    if (map.pixels[c]) present.push_back(static_cast<int>(c));
  std::stable_sort(present.begin(), present.end(), [&](int a, int b) { return map.pixels[a] > map.pixels[b]; });
  // Normalised term text -> its first term (a map: a list searched per tag
  // made 60000 tags take 24 s).
  std::unordered_map<std::string, int> spelled;
  for (int c : present) {
    Term t;
    t.text = class_prompt_name(classes[c]);
    t.from_label_map = true;
    t.class_index = c;
    t.pixels = map.pixels[c];
    spelled.emplace(normalize_phrase(t.text), static_cast<int>(cm.terms.size()));
    cm.terms.push_back(t);
  }
  for (const TagMatch& m : tags) {
    cm.tags.push_back(m);
    const std::string norm = normalize_phrase(m.tag);
    const auto same = spelled.find(norm);
    if (same != spelled.end()) {
      cm.tag_term.push_back(same->second);
      continue;
    }
    Term t;
    t.text = m.tag;
    t.score = m.score;
    if (m.kept) {
      t.class_index = m.class_index;
      t.pixels = map.pixels[m.class_index];
    }
    cm.tag_term.push_back(static_cast<int>(cm.terms.size()));
    spelled.emplace(norm, static_cast<int>(cm.terms.size()));
    cm.terms.push_back(t);
  }
  for (size_t i = 0; i < cm.terms.size(); ++i)
    cm.prompt += (i ? (style == PromptStyle::osediff ? ", " : " ") : "") + cm.terms[i].text;

  if (!tokenizer) return cm;
  cm.token_ids = tokenizer->encode_padded(cm.prompt, max_length);
  for (Term& t : cm.terms) t.tokens = static_cast<int>(tokenizer->encode(t.text).size());
  const int room = max_length - 2;  // bos and eos
  if (style == PromptStyle::osediff) {
    const TagPrompt tp = tokenizer->tag_positions(cm.prompt, max_length);
    // The same split without truncation: a term's token count is what it has
    // in this prompt (punctuation ending a tag merges with the ", " after it
    // into a token of no tag), so "truncated" means only what max_length cut.
    const int whole = static_cast<int>(tokenizer->encode(cm.prompt).size()) + 2;
    const TagPrompt full = tokenizer->tag_positions(cm.prompt, std::max(whole, max_length));
    if (tp.tags.size() != cm.terms.size() || full.tags.size() != cm.terms.size())
      throw_runtime("caption-map: the tokenizer splits the prompt into " + std::to_string(tp.tags.size()) +
                    " tags, not " + std::to_string(cm.terms.size()) + ": " + cm.prompt);
    for (size_t i = 0; i < cm.terms.size(); ++i) {
      cm.terms[i].positions = tp.tags[i].positions;
      cm.terms[i].tokens = static_cast<int>(full.tags[i].positions.size());
    }
  } else {
    // Without commas the terms' tokens follow each other: BPE never merges across a space.
    std::vector<int> ids;
    int next = 1;
    for (Term& t : cm.terms) {
      const std::vector<int> own = tokenizer->encode(t.text);
      for (size_t k = 0; k < own.size(); ++k, ++next)
        if (next <= room) t.positions.push_back(next);
      ids.insert(ids.end(), own.begin(), own.end());
    }
    const std::vector<int> whole = tokenizer->encode(cm.prompt);
    if (ids != whole) throw_runtime("caption-map: the prompt's tokens are not its terms' tokens in a row: " + cm.prompt);
  }
  return cm;
}

std::vector<uint8_t> term_masks(const CaptionMap& cm, const LabelMap& map) {
  const size_t plane = size_t(map.width) * map.height;
  std::vector<uint8_t> out(cm.terms.size() * plane, 0);
  // One pass over the pixels: each class lists the terms whose mask it is.
  std::vector<std::vector<size_t>> terms_of(map.pixels.size());
  for (size_t t = 0; t < cm.terms.size(); ++t) {
    const int c = cm.terms[t].class_index;
    if (c >= 0 && cm.terms[t].pixels) terms_of[c].push_back(t * plane);
  }
  for (size_t i = 0; i < plane; ++i) {
    const int32_t c = map.labels[i];
    if (c >= 0)
      for (size_t base : terms_of[c]) out[base + i] = 1;
  }
  return out;
}

}  // namespace rass::text
