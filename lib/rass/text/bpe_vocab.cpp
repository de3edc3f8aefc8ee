#include "rass/text/bpe_vocab.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/text/unicode.hpp"

namespace rass::text {

namespace {

using json = nlohmann::ordered_json;

json added_token(const char* content, bool with_type) {
  json t;
  if (with_type) t["__type"] = "AddedToken";
  t["content"] = content;
  t["lstrip"] = false;
  t["normalized"] = true;
  t["rstrip"] = false;
  t["single_word"] = false;
  return t;
}

}  // namespace

void write_clip_tokenizer(const BpeVocab& v, const std::string& dir, const std::string& name) {
  json vocab = json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) vocab[v.tokens[i]] = int(i);
  write_file_atomic(dir + "/vocab.json", vocab.dump(-1, ' ', false) + "\n");
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : v.merges) merges += a + " " + b + "\n";
  write_file_atomic(dir + "/merges.txt", merges);
  json special = {{"bos_token", added_token("<|startoftext|>", false)},
                  {"eos_token", added_token("<|endoftext|>", false)},
                  {"pad_token", "!"},
                  {"unk_token", added_token("<|endoftext|>", false)}};
  write_file_atomic(dir + "/special_tokens_map.json", json_file_text(special, dir + "/special_tokens_map.json", 2) + "\n");
  json config = {{"add_prefix_space", false},
                 {"bos_token", added_token("<|startoftext|>", true)},
                 {"do_lower_case", true},
                 {"eos_token", added_token("<|endoftext|>", true)},
                 {"errors", "replace"},
                 {"model_max_length", 77},
                 {"name_or_path", name},
                 {"pad_token", "!"},
                 {"special_tokens_map_file", "./special_tokens_map.json"},
                 {"tokenizer_class", "CLIPTokenizer"},
                 {"unk_token", added_token("<|endoftext|>", true)}};
  write_file_atomic(dir + "/tokenizer_config.json", json_file_text(config, dir + "/tokenizer_config.json", 2) + "\n");
}

std::vector<std::string> clip_byte_symbols() {
  // CLIP's vocabulary lists the printable bytes first, then the remapped
  // ones: ascending code points of bytes_to_unicode's values.
  std::vector<char32_t> cps = clip_bytes_to_unicode();
  std::sort(cps.begin(), cps.end());
  std::vector<std::string> out;
  for (char32_t c : cps) utf8_append(out.emplace_back(), c);
  return out;
}

BpeVocab learn_word_bpe(const std::vector<std::string>& words) {
  std::set<std::string> uniq;
  for (const std::string& w0 : words) {
    std::string w;
    for (char c : w0) {
      if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
      if (c < 'a' || c > 'z') throw_usage("BPE vocabulary word '" + w0 + "': only ASCII letters make one CLIP word");
      w += c;
    }
    if (w.empty()) throw_usage("BPE vocabulary: an empty word");
    uniq.insert(w);
  }
  // Each word as its symbols; ASCII letters are their own byte symbols.
  std::vector<std::vector<std::string>> segs;
  for (const std::string& w : uniq) {
    std::vector<std::string> s;
    for (char c : w) s.push_back(std::string(1, c));
    s.back() += "</w>";
    segs.push_back(std::move(s));
  }
  BpeVocab v;
  v.tokens = clip_byte_symbols();
  const size_t bytes = v.tokens.size();
  for (size_t i = 0; i < bytes; ++i) v.tokens.push_back(v.tokens[i] + "</w>");
  std::set<std::string> known(v.tokens.begin(), v.tokens.end());
  for (;;) {
    std::map<std::pair<std::string, std::string>, int> count;
    for (const auto& s : segs)
      for (size_t i = 0; i + 1 < s.size(); ++i) ++count[{s[i], s[i + 1]}];
    if (count.empty()) break;  // every word is one symbol
    // Most frequent; among equals the smallest pair (map order): deterministic.
    auto best = count.begin();
    for (auto it = count.begin(); it != count.end(); ++it)
      if (it->second > best->second) best = it;
    const auto pair = best->first;
    const std::string merged = pair.first + pair.second;
    v.merges.push_back(pair);
    if (known.insert(merged).second) v.tokens.push_back(merged);
    for (auto& s : segs) {  // left to right, non-overlapping: as the tokenizer merges
      std::vector<std::string> out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == pair.first && s[i + 1] == pair.second) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      s = std::move(out);
    }
  }
  v.tokens.push_back("<|startoftext|>");
  v.tokens.push_back("<|endoftext|>");
  return v;
}

}  // namespace rass::text
