#include "rass/text/caption_map_tool.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "rass/batch/inputs.hpp"
#include "rass/batch/one_input.hpp"
#include "rass/batch/ordered_lines.hpp"
#include "rass/batch/output_guard.hpp"
#include "rass/batch/output_lock.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/core/printable.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/strings.hpp"
#include "rass/metrics/class_names.hpp"
#include "rass/text/caption_map.hpp"
#include "rass/text/caption_pack.hpp"
#include "rass/text/wordnet.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::text {

namespace {

constexpr char kProg[] = "rass-caption-map";

// Everything an item needs, loaded once before the items run.
struct Setup {
  std::vector<std::string> classes;
  std::unique_ptr<TagSimilarity> sim;  // null without tags
  std::string sim_name;
  std::unique_ptr<ClipTokenizer> tokenizer;
  PromptStyle style = PromptStyle::osediff;
};

std::unique_ptr<TagSimilarity> make_similarity(const CaptionMapJob& job, const std::vector<std::string>& classes) {
  if (!job.table.empty()) {
    if (job.similarity != "wordnet" && job.similarity != "table")
      throw_usage("--table and --similarity " + job.similarity + " exclude each other (the table is the similarity)");
    return make_table_similarity(job.table, classes);
  }
  if (job.similarity == "wordnet") {
    if (job.senses < 0) throw_usage("--senses must be >= 0");
    return make_wordnet_similarity(job.wordnet_dir.empty() ? WordNet::default_dir() : job.wordnet_dir, job.senses,
                                   classes);
  }
  if (job.similarity == "sbert") {
    if (job.text_model.empty()) throw_usage("--similarity sbert needs --text-model DIR (a sentence-transformers folder)");
    return make_sbert_similarity(job.text_model, classes, job.device);
  }
  if (job.similarity == "table") throw_usage("--similarity table needs --table FILE");
  throw_usage("unknown --similarity '" + job.similarity + "' (wordnet, sbert, or --table FILE)");
}

// Everything read besides the label maps counts as an input for the output
// guard: the tag, table and class files, and whole folders (tokenizer, text
// model, WordNet database), so no output lands over or inside them.
void add_setup_inputs(batch::OutputGuard& guard, const CaptionMapJob& job) {
  for (const std::string& p : {job.tags, job.table, job.classes, job.tokenizer, job.text_model}) guard.add_input(p);
  guard.add_input(job.wordnet_dir.empty() ? WordNet::default_dir() : job.wordnet_dir);
}

// A CLIP tokenizer folder, or a Stable Diffusion folder holding tokenizer/.
std::string tokenizer_dir(const std::string& dir) {
  if (!file_exists(path_join(dir, "vocab.json")) && file_exists(path_join(path_join(dir, "tokenizer"), "vocab.json")))
    return path_join(dir, "tokenizer");
  return dir;
}

Setup make_setup(const CaptionMapJob& job, bool need_tokenizer) {
  Setup s;
  if (!(job.threshold >= -1 && job.threshold <= 1)) throw_usage("--threshold must be within [-1, 1]");
  if (job.prompt_style != "osediff" && job.prompt_style != "rass")
    throw_usage("--prompt-style must be osediff or rass");
  s.style = job.prompt_style == "rass" ? PromptStyle::rass : PromptStyle::osediff;
  if (job.similarity != "wordnet" && job.similarity != "sbert" && job.similarity != "table")
    throw_usage("unknown --similarity '" + job.similarity + "' (wordnet, sbert, or --table FILE)");
  if (job.similarity == "sbert" && job.table.empty() && job.text_model.empty())
    throw_usage("--similarity sbert needs --text-model DIR (a sentence-transformers folder)");
  s.classes = metrics::load_class_names(job.classes);
  // Without tags nothing is matched: WordNet (1 s to load) and sbert are not
  // loaded then; a table still is, so a bad one is reported.
  if (!job.tags.empty() || job.build_table || !job.table.empty()) s.sim = make_similarity(job, s.classes);
  s.sim_name = !job.table.empty() ? "table" : job.similarity;
  if (need_tokenizer && job.tokenizer.empty())
    throw_usage("HDF5 output needs the CLIP tokenizer for the token positions: --tokenizer DIR "
                "(vocab.json and merges.txt, e.g. a Stable Diffusion folder's tokenizer/)");
  if (!job.tokenizer.empty())
    s.tokenizer = std::make_unique<ClipTokenizer>(ClipTokenizer::load(tokenizer_dir(job.tokenizer)));
  return s;
}

// The tags file (see caption_map_tool.hpp): keyed lines, or one unkeyed list.
struct TagSource {
  bool given = false, keyed = false;
  std::vector<std::string> single;  // unkeyed
  std::map<std::string, std::vector<std::string>> by_key;
};

TagSource read_tags(const std::string& path, bool batch) {
  TagSource src;
  if (path.empty()) return src;
  src.given = true;
  const std::string name = path == "-" ? "<stdin>" : path;
  const std::vector<uint8_t> bytes = read_text_file_bytes(path);
  const std::string text(bytes.begin() + std::ptrdiff_t(utf8_bom_size(bytes.data(), bytes.size())), bytes.end());
  if (!batch::valid_utf8(text)) throw_bad_input(name, "is not UTF-8 text (--tags)");
  std::vector<std::pair<size_t, std::string>> lines;
  size_t start = 0, n = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!trim(line).empty()) lines.emplace_back(n, line);
    start = end + 1;
  }
  for (const auto& l : lines) src.keyed = src.keyed || l.second.find('\t') != std::string::npos;
  if (src.keyed) {
    for (const auto& [num, line] : lines) {
      const size_t tab = line.find('\t');
      const std::string where = name + ":" + std::to_string(num);
      if (tab == std::string::npos) throw_bad_input(where, "expected key<TAB>tags (other lines of the file have a key)");
      const std::string key = line.substr(0, tab);
      if (key.empty()) throw_bad_input(where, "empty key before the TAB");
      if (!src.by_key.emplace(key, parse_tag_list(line.substr(tab + 1))).second)
        throw_bad_input(where, "key '" + key + "' has a tag line already");
    }
  } else if (lines.size() > 1) {
    throw_bad_input(name, "holds " + std::to_string(lines.size()) +
                              " tag lines without keys; " +
                              (batch ? "in batch mode give key<TAB>tags lines (keys as this tool prints them)"
                                     : "one label map takes one tag list (or key<TAB>tags lines)"));
  } else if (!lines.empty()) {
    src.single = parse_tag_list(lines[0].second);
  }
  return src;
}

const std::vector<std::string>& tags_of(const TagSource& src, const std::string& key) {
  static const std::vector<std::string> none;
  if (!src.keyed) return src.single;
  auto it = src.by_key.find(key);
  return it == src.by_key.end() ? none : it->second;
}

json item_json(const std::string& key, const CaptionMap& cm, const std::vector<std::string>& classes) {
  json j;
  j["key"] = key;
  j["prompt"] = cm.prompt;
  json terms = json::array();
  for (const Term& t : cm.terms) {
    json o;
    o["text"] = t.text;
    o["source"] = t.from_label_map ? "label_map" : "tag";
    o["class_index"] = t.class_index;
    if (t.class_index >= 0) o["class"] = classes[t.class_index];
    batch::put_number(o, "score", t.score, "no similarity score");
    o["pixels"] = t.pixels;
    if (!cm.token_ids.empty()) {
      o["positions"] = t.positions;
      o["truncated"] = t.truncated();
    }
    terms.push_back(o);
  }
  j["terms"] = terms;
  json tags = json::array();
  for (size_t i = 0; i < cm.tags.size(); ++i) {
    const TagMatch& m = cm.tags[i];
    json o;
    o["tag"] = m.tag;
    o["class_index"] = m.class_index;
    if (m.class_index >= 0) o["class"] = classes[m.class_index];
    batch::put_number(o, "score", m.score, "no similarity score");
    o["kept"] = m.kept;
    o["term"] = cm.tag_term[i];
    tags.push_back(o);
  }
  j["tags"] = tags;
  return j;
}

// A pack of an earlier run that --resume keeps: a file holding exactly the
// bytes this run would write (packs carry no timestamps). Any change that
// reaches the pack -- tags, classes, senses, a --table, the similarity
// backend, threshold, label map -- rewrites it; checking a few attributes
// kept packs made with another --senses or --table.
bool finished(const std::string& out, const std::vector<uint8_t>& bytes) {
  std::error_code ec;
  if (!fs::is_regular_file(out, ec) || fs::file_size(out, ec) != bytes.size() || ec) return false;
  try {
    return read_file_bytes(out, bytes.size()) == bytes;
  } catch (const std::exception&) {
    return false;
  }
}

// One label map: the caption map, its pack written to `out` ("" = none;
// with `resume`, an earlier pack is kept when finished()), and its stdout
// line (`keyed`: "key<TAB>prompt").
std::string process(const CaptionMapJob& job, const Setup& s, const std::string& path, const std::string& key,
                    const std::vector<std::string>& tags, const std::string& out, bool keyed, bool resume = false) {
  const LabelMap map = read_label_map(path, s.classes.size(), job.reduce_zero_label);
  std::vector<TagMatch> matches;
  if (!tags.empty() && !s.sim) throw_runtime("caption-map: tags without a similarity backend");
  // A tag said again is scored once (a line of 200000 "a" took minutes: a
  // WordNet comparison per tag, about 0.7 ms).
  std::unordered_map<std::string, TagMatch> scored;
  for (const std::string& t : tags) {
    auto it = scored.find(t);
    if (it == scored.end()) it = scored.emplace(t, match_tag(*s.sim, t, job.threshold)).first;
    matches.push_back(it->second);
  }
  const CaptionMap cm = build_caption_map(map, s.classes, matches, s.style, s.tokenizer.get());
  if (!out.empty()) {
    const PackInfo info{key, path, job.prompt_style, s.sim_name, job.threshold};
    const std::vector<uint8_t> bytes = caption_pack_bytes(cm, map, s.classes, info);
    if (!(resume && finished(out, bytes))) write_file_atomic(out, bytes);
  }
  if (job.json) return json_text(item_json(key, cm, s.classes)) + "\n";
  // Keys and tags come from outside: an escape sequence in one would reach
  // the terminal, a tab or newline break the line (--json keeps the raw text).
  return (keyed ? printable_field(key) + "\t" : "") + printable_field(cm.prompt) + "\n";
}

bool is_batch(const CaptionMapJob& job) {
  if (!job.manifest.empty() || job.inputs.size() != 1) return true;
  std::error_code ec;
  return job.inputs[0] != "-" && fs::is_directory(job.inputs[0], ec);
}

int run_single(const CaptionMapJob& job) {
  if (!job.output_dir.empty()) throw_usage("-O DIR is for batch mode (directories, several files or --manifest); one label map writes -o FILE.h5");
  if (job.output == "-") throw_usage("-o -: the HDF5 pack needs a file name");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one label map (-o FILE.h5)");
  const std::string in = job.inputs[0];
  batch::OutputGuard guard;
  guard.add_input(in);
  add_setup_inputs(guard, job);
  guard.check_output_file_outside_dirs(job.output, "-o");
  const batch::OneOutputHold held({job.output});
  const Setup s = make_setup(job, !job.output.empty());
  const TagSource tags = read_tags(job.tags, false);
  const std::string key = !job.key.empty() ? job.key : in == "-" ? "stdin" : path_stem(in);
  if (tags.keyed && !tags.by_key.count(key))
    throw_bad_input(job.tags == "-" ? "<stdin>" : job.tags, "has no line for key '" + key + "' (pass --key?)");
  batch::write_report("-", process(job, s, in, key, tags_of(tags, key), job.output, false));
  return 0;
}

int run_batch(const CaptionMapJob& job) {
  if (!job.output.empty()) throw_usage("-o names one file; in batch mode packs go to -O DIR (DIR/<key>.h5)");
  if (!job.key.empty()) throw_usage("--key names the one label map of single mode; in batch mode keys come from the inputs");
  if (job.resume && job.output_dir.empty()) throw_usage("--resume goes with -O DIR");
  const Setup s = make_setup(job, !job.output_dir.empty());
  const TagSource tags = read_tags(job.tags, true);

  batch::InputSpec spec;
  spec.roles = {{"label map", {"label", "gt", "seg", "pred"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  if (!job.output_dir.empty()) {
    spec.skip_dirs = {job.output_dir};
    spec.name_room = 3;  // <key>.h5
  }
  spec.allow_stdin = false;
  std::vector<batch::Item> all = batch::collect_items(spec);
  std::stable_sort(all.begin(), all.end(), [](const batch::Item& a, const batch::Item& b) { return a.key < b.key; });
  std::vector<batch::Item> mine;
  for (size_t i = 0; i < all.size(); ++i)
    if (job.shard.contains(i)) mine.push_back(all[i]);

  if (tags.keyed && !job.quiet) {
    std::set<std::string> keys;
    for (const batch::Item& it : all) keys.insert(it.key);
    size_t unmatched = 0;
    std::string first;
    for (const auto& kv : tags.by_key)
      if (!keys.count(kv.first) && unmatched++ == 0) first = kv.first;
    if (unmatched)
      std::fprintf(stderr, "%s: warning: %zu tag line(s) match no label map (first key: '%s')\n", kProg, unmatched,
                   printable_message(first).c_str());
  }

  batch::OutputGuard guard;
  for (const std::string& p : job.inputs) guard.add_input(p);
  guard.add_input(job.manifest);
  add_setup_inputs(guard, job);
  for (const batch::Item& it : all) guard.add_input(it.paths[0]);
  std::vector<std::string> outs(mine.size());
  if (!job.output_dir.empty()) {
    guard.check_output_dir(job.output_dir, "-O");
    for (size_t i = 0; i < mine.size(); ++i)
      if (mine[i].error.empty()) {
        outs[i] = path_join(job.output_dir, mine[i].key) + ".h5";
        guard.check_output_file_outside_dirs(outs[i], "output", true);
      }
  }
  auto locks = batch::lock_output_dirs({job.output_dir}, job.shard, kProg);  // makes the folder

  batch::OrderedLines lines("-");
  batch::Reporter reporter(kProg);
  const batch::Tally tally = batch::run_items(
      mine, {job.jobs, job.quiet}, reporter,
      [&](size_t i, int) {
        const batch::Item& it = mine[i];
        const std::string& out = outs[i];
        lines.put(i, process(job, s, it.paths[0], it.key, tags_of(tags, it.key), out, true, job.resume));
      },
      [&](size_t i, batch::Outcome o, const std::string&) {
        if (o != batch::Outcome::ok) lines.put(i, "");
      });
  lines.finish();
  if (tally.exit_code() != 0 && !locks.empty()) locks.front().remove_if_unused();  // every item failed: no empty folder left
  return tally.exit_code();
}

}  // namespace

int run_caption_map(const CaptionMapJob& job) {
  if (job.jobs < 0) throw_usage("--jobs must be >= 0");
  if (job.inputs.empty() && job.manifest.empty()) throw_usage("no label map: give files, directories, '-' or --manifest");
  batch::claim_stdin(job.inputs, {{"--manifest -", job.manifest == "-"},
                                   {"--tags -", job.tags == "-"},
                                   {"--classes -", job.classes == "-"},
                                   {"--table -", job.table == "-"}});
  return is_batch(job) ? run_batch(job) : run_single(job);
}

int run_build_table(const CaptionMapJob& job) {
  if (job.vocabulary.empty()) throw_usage("build-table needs a vocabulary file (one tag per line)");
  if (job.table_out.empty()) throw_usage("build-table needs -o FILE.tsv (- for stdout)");
  if (!job.table.empty()) throw_usage("build-table computes a table: choose --similarity wordnet or sbert, not --table");
  batch::OutputGuard guard;
  guard.add_input(job.vocabulary);
  add_setup_inputs(guard, job);
  guard.check_output_file_outside_dirs(job.table_out, "-o");
  const batch::OneOutputHold held({job.table_out});
  CaptionMapJob j = job;
  j.tokenizer.clear();
  j.build_table = true;
  const Setup s = make_setup(j, false);
  const std::string name = job.vocabulary == "-" ? "<stdin>" : job.vocabulary;
  const std::vector<uint8_t> bytes = read_text_file_bytes(job.vocabulary);
  const std::string text(bytes.begin(), bytes.end());
  if (!batch::valid_utf8(text)) throw_bad_input(name, "is not UTF-8 text");
  std::string out =
      "# rass-caption-map build-table: similarity " + s.sim->name() + ", classes " + job.classes +
      (job.all_classes ? ", every class with a score" : ", the best class per tag (ties: first in class order)") +
      "\n";
  std::set<std::string> seen;
  size_t start = 0, tags = 0, unscored = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string tag = trim(text.substr(start, end - start));
    start = end + 1;
    if (tag.empty() || tag[0] == '#' || !seen.insert(normalize_phrase(tag)).second) continue;
    if (tag.find('\t') != std::string::npos) throw_bad_input(name, "tag '" + tag + "' holds a TAB");
    ++tags;
    const std::vector<double> sc = s.sim->scores(tag);
    if (job.all_classes) {
      bool any = false;
      for (size_t c = 0; c < sc.size(); ++c)
        if (!std::isnan(sc[c])) {
          out += tag + "\t" + class_prompt_name(s.classes[c]) + "\t" + batch::format_number(sc[c]) + "\n";
          any = true;
        }
      unscored += !any;
    } else {
      const TagMatch m = match_tag(*s.sim, tag, 0);
      if (m.class_index < 0) {
        ++unscored;
        continue;
      }
      out += tag + "\t" + class_prompt_name(s.classes[m.class_index]) + "\t" + batch::format_number(m.score) + "\n";
    }
  }
  // Empty input is an error (as for every tool): a header-only table with
  // exit 0 looked like a table of nothing found.
  if (tags == 0) throw_bad_input(name, "holds no tag (one per line; # starts a comment)");
  batch::write_report(job.table_out, out);
  if (!job.quiet)
    std::fprintf(stderr, "%s: %zu tag(s), %zu without any score (not in the table)\n", kProg, tags, unscored);
  return 0;
}

int run_caption_map_tool(const CaptionMapJob& job) {
  return job.build_table ? run_build_table(job) : run_caption_map(job);
}

}  // namespace rass::text
