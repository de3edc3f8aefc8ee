#include "rass/text/wordnet.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"

namespace rass::text {

namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The lines of a database file; license lines start with two spaces and are skipped.
template <class F>
void for_each_line(const std::string& path, F&& f) {
  // Files this tool finds in the WordNet folder: a FIFO there blocked the
  // run, /dev/zero grew one endless line until the memory ran out.
  require_found_file(path, "WordNet data");
  if (!std::ifstream(path, std::ios::binary))
    throw_bad_input(path, "cannot be opened (WordNet data: install wordnet-base, or set RASS_WORDNET_DIR)");
  const std::vector<uint8_t> bytes = read_text_file_bytes(path, size_t(256) << 20);  // data.noun is 15 MB
  const std::string text(bytes.begin(), bytes.end());
  std::string line;
  size_t n = 0, at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    line.assign(text, at, end - at);
    at = end + 1;
    ++n;
    if (line.empty() || line[0] == ' ') continue;
    f(line, n);
  }
}

[[noreturn]] void malformed(const std::string& path, size_t line, const std::string& what) {
  throw_bad_input(path + ":" + std::to_string(line), "malformed WordNet line: " + what);
}

// Breadth-first distances from `s` to each of its ancestors (itself at 0), as
// NLTK's _shortest_hypernym_paths.
std::vector<std::pair<int, int>> ancestor_distances(const WordNet& wn, int s) {
  std::vector<std::pair<int, int>> out;
  std::unordered_set<int> seen;
  std::deque<std::pair<int, int>> queue{{s, 0}};
  while (!queue.empty()) {
    auto [x, d] = queue.front();
    queue.pop_front();
    if (!seen.insert(x).second) continue;
    out.emplace_back(x, d);
    for (int h : wn.hypernyms(x)) queue.emplace_back(h, d + 1);
  }
  return out;
}

// The space-separated fields of a database line, up to a gloss (" | ").
std::vector<std::string_view> fields(const std::string& line) {
  std::vector<std::string_view> out;
  const std::string_view v(line);
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && v[i] == ' ') ++i;
    if (i >= v.size() || v[i] == '|') break;
    size_t j = i;
    while (j < v.size() && v[j] != ' ') ++j;
    out.push_back(v.substr(i, j - i));
    i = j;
  }
  return out;
}

bool parse_long(std::string_view s, int base, long* out) {
  if (s.empty() || s.size() > 20) return false;
  char buf[24];
  s.copy(buf, s.size());
  buf[s.size()] = 0;
  char* end = nullptr;
  *out = std::strtol(buf, &end, base);
  return end == buf + s.size();
}

int distance_to(const std::vector<std::pair<int, int>>& a, const std::vector<std::pair<int, int>>& b) {
  int best = -1;
  for (const auto& [x, dx] : a)
    for (const auto& [y, dy] : b)
      if (x == y && (best < 0 || dx + dy < best)) best = dx + dy;
  return best;
}

}  // namespace

std::string normalize_phrase(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isspace(u) || c == '_') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(u));
  }
  return out;
}

std::string WordNet::default_dir() {
  const char* env = std::getenv("RASS_WORDNET_DIR");
  return env && *env ? env : "/usr/share/wordnet";
}

WordNet WordNet::load(const std::string& dir) {
  WordNet wn;
  const std::string data_path = path_join(dir, "data.noun"), index_path = path_join(dir, "index.noun"),
                    exc_path = path_join(dir, "noun.exc");
  std::unordered_map<long, int> by_offset;
  std::vector<std::vector<long>> hyper_offsets;
  std::vector<std::string> first_lemma;
  for_each_line(data_path, [&](const std::string& line, size_t n) {
    // offset lex_filenum ss_type w_cnt(hex) {word lex_id} p_cnt {symbol offset pos src/tgt} ... | gloss
    const std::vector<std::string_view> f = fields(line);
    size_t i = 4;
    long wcnt = 0;
    if (f.size() < 5 || !parse_long(f[3], 16, &wcnt) || wcnt < 1) malformed(data_path, n, "header fields");
    long offset = 0;
    if (!parse_long(f[0], 10, &offset)) malformed(data_path, n, "offset");
    if (f.size() < i + 2 * size_t(wcnt) + 1) malformed(data_path, n, "words");
    first_lemma.push_back(lower_ascii(std::string(f[i])));
    i += 2 * size_t(wcnt);
    long pcnt = 0;
    if (!parse_long(f[i++], 10, &pcnt) || pcnt < 0 || f.size() < i + 4 * size_t(pcnt))
      malformed(data_path, n, "pointers");
    std::vector<long> hyp;
    for (long p = 0; p < pcnt; ++p, i += 4) {
      long target = 0;
      if (!parse_long(f[i + 1], 10, &target)) malformed(data_path, n, "pointer offset");
      if ((f[i] == "@" || f[i] == "@i") && f[i + 2] == "n") hyp.push_back(target);
    }
    if (!by_offset.emplace(offset, static_cast<int>(hyper_offsets.size())).second)
      malformed(data_path, n, "offset " + std::to_string(offset) + " twice");
    hyper_offsets.push_back(std::move(hyp));
  });
  if (hyper_offsets.empty()) throw_bad_input(data_path, "holds no synsets");
  const size_t count = hyper_offsets.size();
  wn.synsets_.resize(count);
  for (size_t i = 0; i < count; ++i)
    for (long off : hyper_offsets[i]) {
      auto it = by_offset.find(off);
      if (it == by_offset.end()) throw_bad_input(data_path, "a hypernym pointer names offset " + std::to_string(off) + ", which it lacks");
      wn.synsets_[i].hypernyms.push_back(it->second);
    }

  for_each_line(index_path, [&](const std::string& line, size_t n) {
    // lemma pos synset_cnt p_cnt {symbol} sense_cnt tagsense_cnt {offset}
    const std::vector<std::string_view> f = fields(line);
    long nsyn = 0, nptr = 0, nsense = 0;
    if (f.size() < 4 || !parse_long(f[2], 10, &nsyn) || !parse_long(f[3], 10, &nptr) || nsyn < 1 || nptr < 0)
      malformed(index_path, n, "header fields");
    const size_t at = 4 + size_t(nptr);
    if (f.size() != at + 2 + size_t(nsyn) || !parse_long(f[at], 10, &nsense) || nsense != nsyn)
      malformed(index_path, n, "sense counts");
    std::vector<int>& ids = wn.index_[std::string(f[0])];
    for (long k = 0; k < nsyn; ++k) {
      long off = 0;
      if (!parse_long(f[at + 2 + k], 10, &off)) malformed(index_path, n, "synset offsets");
      auto it = by_offset.find(off);
      if (it == by_offset.end()) malformed(index_path, n, "offset " + std::to_string(off) + " is not in data.noun");
      ids.push_back(it->second);
    }
  });

  // NLTK's canonical name: the first lemma, ".n.", its sense number in index.noun.
  for (size_t i = 0; i < count; ++i) {
    auto it = wn.index_.find(first_lemma[i]);
    const std::vector<int>* ids = it == wn.index_.end() ? nullptr : &it->second;
    auto pos = ids ? std::find(ids->begin(), ids->end(), static_cast<int>(i)) : std::vector<int>::const_iterator();
    if (!ids || pos == ids->end())
      throw_bad_input(index_path, "lacks the synset of '" + first_lemma[i] + "' that data.noun lists");
    char num[16];
    std::snprintf(num, sizeof num, "%02d", static_cast<int>(pos - ids->begin()) + 1);
    wn.synsets_[i].name = first_lemma[i] + ".n." + num;
  }

  for_each_line(exc_path, [&](const std::string& line, size_t) {
    std::istringstream ss(line);
    std::string form, base;
    if (!(ss >> form)) return;
    std::vector<std::string>& bases = wn.exceptions_[form];
    bases.clear();  // a later line replaces an earlier one, as NLTK's dict does
    while (ss >> base) bases.push_back(base);
  });

  // Depths in topological order: a synset's depth needs its hypernyms' first.
  wn.min_depth_.assign(count, -1);
  wn.max_depth_.assign(count, -1);
  std::vector<uint8_t> state(count, 0);  // 0 new, 1 on the stack, 2 done
  for (size_t root = 0; root < count; ++root) {
    if (state[root]) continue;
    std::vector<std::pair<int, size_t>> stack{{static_cast<int>(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto& [s, next] = stack.back();
      const std::vector<int>& hyp = wn.synsets_[s].hypernyms;
      if (next < hyp.size()) {
        const int h = hyp[next++];
        if (state[h] == 1) throw_bad_input(data_path, "hypernym cycle through " + wn.synsets_[h].name);
        if (state[h] == 0) {
          state[h] = 1;
          stack.emplace_back(h, 0);
        }
        continue;
      }
      int lo = 0, hi = 0;
      for (size_t k = 0; k < hyp.size(); ++k) {
        lo = k ? std::min(lo, wn.min_depth_[hyp[k]] + 1) : wn.min_depth_[hyp[k]] + 1;
        hi = std::max(hi, wn.max_depth_[hyp[k]] + 1);
      }
      wn.min_depth_[s] = lo;
      wn.max_depth_[s] = hi;
      state[s] = 2;
      stack.pop_back();
    }
  }
  return wn;
}

std::vector<std::string> WordNet::morphy(const std::string& word) const {
  static const std::pair<const char*, const char*> kRules[] = {
      {"s", ""},     {"ses", "s"},   {"ves", "f"},   {"xes", "x"}, {"zes", "z"},
      {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
  const std::string form = lower_ascii(word);
  std::vector<std::string> forms{form};
  auto exc = exceptions_.find(form);
  if (exc != exceptions_.end()) {
    forms.insert(forms.end(), exc->second.begin(), exc->second.end());
  } else {
    for (const auto& [old, repl] : kRules) {
      const size_t n = std::char_traits<char>::length(old);
      if (form.size() >= n && form.compare(form.size() - n, n, old) == 0)
        forms.push_back(form.substr(0, form.size() - n) + repl);
    }
  }
  std::vector<std::string> out;
  for (const std::string& f : forms)
    if (index_.count(f) && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  return out;
}

std::vector<int> WordNet::synsets(const std::string& word) const {
  std::vector<int> out;
  for (const std::string& f : morphy(word)) {
    const std::vector<int>& ids = index_.at(f);
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

double WordNet::wup(int a, int b) const {
  const auto da = ancestor_distances(*this, a), db = ancestor_distances(*this, b);
  // The lowest common hypernyms by min_depth (NLTK's use_min_depth=True).
  int best_depth = -1;
  std::vector<int> lcs;
  for (const auto& [x, dx] : da)
    for (const auto& [y, dy] : db)
      if (x == y) {
        if (min_depth_[x] > best_depth) best_depth = min_depth_[x], lcs.clear();
        if (min_depth_[x] == best_depth) lcs.push_back(x);
      }
  if (lcs.empty()) return -1.0;  // never for WordNet 3.0 nouns (one root: entity)
  int sub = lcs[0];
  if (std::find(lcs.begin(), lcs.end(), a) != lcs.end()) {
    sub = a;
  } else {
    for (int x : lcs)
      if (synsets_[x].name < synsets_[sub].name) sub = x;
  }
  const int depth = max_depth_[sub] + 1;
  const auto dsub = ancestor_distances(*this, sub);
  const int len1 = (a == sub ? 0 : distance_to(da, dsub)) + depth;
  const int len2 = (b == sub ? 0 : distance_to(db, dsub)) + depth;
  return 2.0 * depth / (len1 + len2);
}

std::vector<int> WordNet::phrase_synsets(const std::string& phrase) const {
  const std::string norm = normalize_phrase(phrase);
  if (norm.empty()) return {};
  std::string joined = norm;
  std::replace(joined.begin(), joined.end(), ' ', '_');
  std::vector<int> ids = synsets(joined);
  const size_t last = norm.rfind(' ');
  if (ids.empty() && last != std::string::npos) ids = synsets(norm.substr(last + 1));
  return ids;
}

double WordNet::similarity(const std::string& tag, const std::string& class_name, int senses) const {
  const std::string t = normalize_phrase(tag), c = normalize_phrase(class_name);
  if (!t.empty() && t == c) return 1.0;
  double best = -1.0;
  std::vector<int> ts = phrase_synsets(t), cs = phrase_synsets(c);
  if (senses > 0 && ts.size() > size_t(senses)) ts.resize(senses);
  if (senses > 0 && cs.size() > size_t(senses)) cs.resize(senses);
  for (int x : ts)
    for (int y : cs) best = std::max(best, wup(x, y));
  return best;
}

}  // namespace rass::text
