// WordNet 3.0 noun taxonomy, torch-free, read from the Princeton database files
// Debian's wordnet-base installs in /usr/share/wordnet (index.noun, data.noun,
// noun.exc), for rass-caption-map's default tag -> class similarity.
//
// Every rule below is NLTK's (nltk.corpus.reader.wordnet, version 3.10.4,
// WordNetCorpusReader reading the same files); tests/text/make_wordnet_golden.py
// writes the goldens that pin it:
//   - synsets(word): lower-cased; base forms by morphy: the word's noun.exc
//     entry when it has one (the word and its listed bases), else the word plus
//     one application of the detachment rules (s->"", ses->s, ves->f, xes->x,
//     zes->z, ches->ch, shes->sh, men->man, ies->y); the forms present in
//     index.noun, in that order, each giving its synsets in index.noun order.
//   - hypernyms are the '@' and '@i' (instance hypernym) pointers.
//   - wup(a, b) (NLTK's wup_similarity for nouns of WordNet 3.0: no simulated
//     root): the lowest common hypernyms are the common ancestors (each synset
//     counts as its own ancestor) of greatest min_depth; ties are broken by
//     synset name ("lemma.n.NN", byte order), unless `a` itself is one of them;
//     depth = max_depth(lcs) + 1; len_x = the shortest path distance between x
//     and the lcs (NLTK's: the minimum over all common ancestors c of
//     dist(x, c) + dist(lcs, c), which can be shorter than dist(x, lcs)) + depth;
//     wup = 2 depth / (len_a + len_b). Note the asymmetry: wup(a, b) may differ
//     from wup(b, a) when several lcs tie; similarity() calls wup(tag, class).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace rass::text {

class WordNet {
 public:
  // Reads index.noun, data.noun and noun.exc from `dir`. A missing or malformed
  // file throws Error(bad_input) naming the file (and line for syntax errors).
  static WordNet load(const std::string& dir);
  // Where the data is looked for by default: $RASS_WORDNET_DIR, else /usr/share/wordnet.
  static std::string default_dir();

  // The noun base forms of `word` found in the index (NLTK's _morphy), `word`
  // lower-cased first. Multi-word lemmas are spelled with '_' as in the files.
  std::vector<std::string> morphy(const std::string& word) const;
  // Synset ids of `word` as noun (NLTK's synsets(word, 'n')), possibly repeated.
  std::vector<int> synsets(const std::string& word) const;
  int size() const { return static_cast<int>(synsets_.size()); }
  // NLTK's synset name, e.g. "dog.n.01".
  const std::string& name(int synset) const { return synsets_[synset].name; }
  // Direct hypernyms and instance hypernyms.
  const std::vector<int>& hypernyms(int synset) const { return synsets_[synset].hypernyms; }
  int min_depth(int synset) const { return min_depth_[synset]; }
  int max_depth(int synset) const { return max_depth_[synset]; }
  // NLTK's wup_similarity(a, b) (see the header comment).
  double wup(int a, int b) const;

  // The synsets a phrase stands for: spaces (runs of whitespace) become '_'
  // (WordNet's collocations: "traffic light" -> traffic_light); when that has
  // no synsets and the phrase has several words, the last word's (English
  // compounds are head-final: "wooden bench" -> bench). Empty when unknown.
  std::vector<int> phrase_synsets(const std::string& phrase) const;
  // The similarity of a tag and a class name: 1.0 when their normalised
  // spellings are equal (lower-case, whitespace collapsed, '_' as space),
  // otherwise the maximum of wup(t, c) over the first `senses` phrase synsets t
  // of the tag and c of the name (WordNet lists senses by frequency; 0 = all);
  // a negative value when either has no synsets.
  double similarity(const std::string& tag, const std::string& class_name, int senses = 0) const;

 private:
  struct Synset {
    std::string name;
    std::vector<int> hypernyms;
  };
  std::vector<Synset> synsets_;
  std::unordered_map<std::string, std::vector<int>> index_;                // lemma -> synsets
  std::unordered_map<std::string, std::vector<std::string>> exceptions_;   // noun.exc
  std::vector<int> min_depth_, max_depth_;                                 // NLTK's min_depth/max_depth
};

// Lower-case ASCII, whitespace runs and '_' as one space, trimmed: the spelling
// two names are compared in.
std::string normalize_phrase(const std::string& s);

}  // namespace rass::text
