// Tag -> class similarity backends of rass-caption-map (seed 000 section 8.3:
// each tag goes to its most similar class, kept when the score reaches the
// threshold). A backend scores one tag against every class of a class list.
//
// Class names may carry synonyms separated by commas, as ADE20K's
// objectInfo150 names do ("building, edifice"); mmseg's built-in names have
// none. A class scores the maximum over its synonyms; its prompt name is the
// first synonym.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace rass::text {

// "building, edifice" -> {"building", "edifice"} (trimmed, empty ones dropped).
std::vector<std::string> class_synonyms(const std::string& name);
// The class's name in prompts: its first synonym ("bed " -> "bed").
std::string class_prompt_name(const std::string& name);

class TagSimilarity {
 public:
  virtual ~TagSimilarity() = default;
  // The score of `tag` for each class, in class-list order; NaN where the
  // backend has no score (a word WordNet lacks, a pair the table lacks).
  // Thread-safe.
  virtual std::vector<double> scores(const std::string& tag) const = 0;
  virtual std::string name() const = 0;  // "wordnet", "table", "sbert"
};

// WordNet Wu-Palmer over the first `senses` noun senses (0 = all), see wordnet.hpp.
std::unique_ptr<TagSimilarity> make_wordnet_similarity(const std::string& wordnet_dir, int senses,
                                                       const std::vector<std::string>& classes);

// A table file: lines "tag<TAB>class<TAB>score" (UTF-8; '#' starts a comment
// line; empty lines skipped; a trailing '\r' ignored). Tags are compared in
// normalize_phrase() spelling; the class column names a class of the list by
// its whole name or one of its synonyms (normalised). A tag absent from the
// table, or a class it has no row for, has no score. Throws Error(bad_input)
// "FILE:LINE: what" for a line without three fields, an unknown class, a score
// that is not a finite number, or a (tag, class) pair given twice.
std::unique_ptr<TagSimilarity> make_table_similarity(const std::string& path, const std::vector<std::string>& classes);

// Sentence-BERT (LibTorch). Programs built with the network layer register it;
// without, make_sbert_similarity throws Error(usage) saying so.
using SbertFactory = std::unique_ptr<TagSimilarity> (*)(const std::string& model_dir,
                                                        const std::vector<std::string>& classes,
                                                        const std::string& device);
void register_sbert_similarity(SbertFactory factory);
std::unique_ptr<TagSimilarity> make_sbert_similarity(const std::string& model_dir,
                                                     const std::vector<std::string>& classes,
                                                     const std::string& device);

}  // namespace rass::text
