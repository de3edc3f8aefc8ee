#include "rass/text/tag_similarity.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <unordered_map>

#include "rass/batch/inputs.hpp"  // valid_utf8
#include "rass/core/decimal.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"  // utf8_bom_size
#include "rass/core/strings.hpp"
#include "rass/text/wordnet.hpp"

namespace rass::text {

namespace {

constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

class WordNetSimilarity : public TagSimilarity {
 public:
  WordNetSimilarity(WordNet wn, int senses, const std::vector<std::string>& classes)
      : wn_(std::move(wn)), senses_(senses) {
    for (const std::string& c : classes) synonyms_.push_back(class_synonyms(c));
  }
  std::vector<double> scores(const std::string& tag) const override {
    std::vector<double> out(synonyms_.size(), kNone);
    for (size_t c = 0; c < synonyms_.size(); ++c)
      for (const std::string& name : synonyms_[c]) {
        const double v = wn_.similarity(tag, name, senses_);
        if (v >= 0 && !(out[c] >= v)) out[c] = v;
      }
    return out;
  }
  std::string name() const override { return "wordnet"; }

 private:
  WordNet wn_;
  int senses_;
  std::vector<std::vector<std::string>> synonyms_;
};

class TableSimilarity : public TagSimilarity {
 public:
  TableSimilarity(const std::string& path, const std::vector<std::string>& classes) : count_(classes.size()) {
    std::unordered_map<std::string, size_t> class_of;
    for (size_t c = 0; c < classes.size(); ++c) {
      class_of.emplace(normalize_phrase(classes[c]), c);
      for (const std::string& s : class_synonyms(classes[c])) class_of.emplace(normalize_phrase(s), c);
    }
    // Read through the text reader: /dev/zero (or a binary file) is refused
    // at its first block; a stream read grew one endless line until the
    // memory ran out.
    const std::vector<uint8_t> bytes = read_text_file_bytes(path, size_t(4) << 30);
    const std::string text(bytes.begin(), bytes.end());
    std::string line;
    size_t n = 0, at = 0;
    while (at < text.size()) {
      const size_t end = std::min(text.find('\n', at), text.size());
      line.assign(text, at, end - at);
      at = end + 1;
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (n == 1) line.erase(0, utf8_bom_size(reinterpret_cast<const uint8_t*>(line.data()), line.size()));
      const std::string where = path + ":" + std::to_string(n);
      // Tags are matched as text (and written to JSON reports): bytes that
      // are not UTF-8 would never match a tag and could not be reported.
      if (!batch::valid_utf8(line)) throw_bad_input(where, "is not UTF-8 text (--table)");
      if (trim(line).empty() || line[0] == '#') continue;
      const size_t t1 = line.find('\t'), t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
      if (t2 == std::string::npos || line.find('\t', t2 + 1) != std::string::npos)
        throw_bad_input(where, "expected three tab-separated fields: tag, class, score");
      const std::string tag = normalize_phrase(line.substr(0, t1));
      // The score as the flags take numbers: " 0.8" is refused (as --threshold ' 0.5').
      const std::string cls = line.substr(t1 + 1, t2 - t1 - 1), num = line.substr(t2 + 1);
      if (tag.empty()) throw_bad_input(where, "empty tag");
      auto c = class_of.find(normalize_phrase(cls));
      if (c == class_of.end()) throw_bad_input(where, "class '" + cls + "' is not in the class list (see --classes)");
      double v = 0;
      if (num != trim(num)) throw_bad_input(where, "score '" + num + "' has blanks around it");
      if (!parse_decimal(num, &v))
        throw_bad_input(where, "score '" + num + "' is not a finite number");
      std::vector<double>& row = table_[tag];
      if (row.empty()) row.assign(count_, kNone);
      if (!std::isnan(row[c->second]))
        throw_bad_input(where, "the pair (" + tag + ", " + classes[c->second] + ") is given twice");
      row[c->second] = v;
    }
  }
  std::vector<double> scores(const std::string& tag) const override {
    auto it = table_.find(normalize_phrase(tag));
    return it == table_.end() ? std::vector<double>(count_, kNone) : it->second;
  }
  std::string name() const override { return "table"; }

 private:
  size_t count_;
  std::unordered_map<std::string, std::vector<double>> table_;
};

SbertFactory& sbert_factory() {
  static SbertFactory f = nullptr;
  return f;
}

}  // namespace

std::vector<std::string> class_synonyms(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t comma = name.find(',', start);
    if (comma == std::string::npos) comma = name.size();
    const std::string s = trim(name.substr(start, comma - start));
    if (!s.empty()) out.push_back(s);
    start = comma + 1;
  }
  return out;
}

std::string class_prompt_name(const std::string& name) {
  const std::vector<std::string> s = class_synonyms(name);
  return s.empty() ? trim(name) : s[0];
}

std::unique_ptr<TagSimilarity> make_wordnet_similarity(const std::string& wordnet_dir, int senses,
                                                       const std::vector<std::string>& classes) {
  return std::make_unique<WordNetSimilarity>(WordNet::load(wordnet_dir), senses, classes);
}

std::unique_ptr<TagSimilarity> make_table_similarity(const std::string& path, const std::vector<std::string>& classes) {
  return std::make_unique<TableSimilarity>(path, classes);
}

void register_sbert_similarity(SbertFactory factory) { sbert_factory() = factory; }

std::unique_ptr<TagSimilarity> make_sbert_similarity(const std::string& model_dir,
                                                     const std::vector<std::string>& classes,
                                                     const std::string& device) {
  if (!sbert_factory())
    throw_usage("--similarity sbert needs the LibTorch network layer, which this build of rass-caption-map lacks; "
                "use --similarity wordnet or --table FILE");
  return sbert_factory()(model_dir, classes, device);
}

}  // namespace rass::text
