#include "rass/scenes/scenes_tool.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/batch/inputs.hpp"
#include "rass/batch/output_guard.hpp"
#include "rass/batch/output_lock.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/manifest.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::scenes {

namespace {

constexpr char kProg[] = "rass-scenes";
constexpr int64_t kMaxRunScenes = 1000000;  // per run (per shard)

struct Paths {
  std::string image, label, tags, caption;
};

Paths paths_of(const std::string& dir, const std::string& key) {
  return {path_join(path_join(dir, "images"), key + ".png"), path_join(path_join(dir, "labels"), key + ".png"),
          path_join(path_join(dir, "tags"), key + ".txt"), path_join(path_join(dir, "captions"), key + ".txt")};
}

// "<dir>/<stem>.<ext>", or "<dir>/<stem>.I-of-N.<ext>" for a sharded run, so
// shards never overwrite each other's listings.
std::string listing_path(const ScenesJob& job, const std::string& stem, const std::string& ext) {
  const std::string tag = job.shard.count == 1 ? "" : "." + std::to_string(job.shard.index) + "-of-" + std::to_string(job.shard.count);
  return path_join(job.output, stem + tag + ext);
}

// One scene's outcome and the text its listings rows take.
struct Row {
  enum { pending, done, skipped } state = pending;
  std::string tags, caption;
};

// The line of a tags or caption file as this tool writes it (one non-empty
// line and its newline), without the newline; nothing for an emptied, cut or
// missing file.
std::optional<std::string> one_line(const std::string& path) {
  try {
    const std::vector<uint8_t> bytes = read_text_file_bytes(path, 1 << 20);
    if (bytes.size() < 2 || bytes.back() != '\n' || std::count(bytes.begin(), bytes.end(), uint8_t('\n')) != 1)
      return std::nullopt;
    return std::string(bytes.begin(), bytes.end() - 1);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// --resume: a scene is done when its caption (written last) and tags are
// one line each (kept in `row`) and its image and label map decode at the
// asked size with the right channels.
bool finished(const ScenesJob& job, const Paths& p, Row& row) {
  std::optional<std::string> caption = one_line(p.caption), tags = one_line(p.tags);
  if (!caption || !tags) return false;
  row.caption = std::move(*caption);
  row.tags = std::move(*tags);
  try {
    const Image img = read_image(p.image), lab = read_label_image(p.label);
    if (img.width != job.scene.width || img.height != job.scene.height || img.channels != 3 ||
        lab.width != job.scene.width || lab.height != job.scene.height || lab.channels != 1 || lab.depth != 8)
      return false;
    // Edited tags or caption files went into tags.tsv and the manifest.
    const std::vector<scenes::Cls> visible = scenes::visible_classes(lab);
    if (row.tags != scenes::tags_line(visible)) return false;
    for (scenes::Kind k : {scenes::Kind::street, scenes::Kind::landscape, scenes::Kind::room})
      if ((job.scene.kind == scenes::Kind::mixed || job.scene.kind == k) && row.caption == scenes::caption_of(k, visible))
        return true;
    return false;
  } catch (const std::exception&) {
    return false;
  }
}

// The settings every scene of a folder shares, in DIR/scenes.json. A run
// with other settings is refused (exit 2), whether it adds to the folder
// (--resume, --shard, --start) or remakes it: the kept scenes would not be
// what the manifest records, and replacing the old set would first have to
// delete it (a typo in -s must not wipe a million scenes). A folder from
// before this file is taken as it is.
void check_folder_settings(const ScenesJob& job) {
  const std::string path = path_join(job.output, "scenes.json");
  const nlohmann::ordered_json want = {{"seed", job.seed},
                                       {"kind", kind_name(job.scene.kind)},
                                       {"width", job.scene.width},
                                       {"height", job.scene.height}};
  if (file_exists(path)) {
    const nlohmann::ordered_json have = read_json_file(path, 1 << 16);
    std::string diff;
    for (const auto& [k, v] : want.items())
      if (!have.contains(k) || have[k] != v)
        diff += (diff.empty() ? "" : ", ") + k + " " + (have.contains(k) ? have[k].dump() : "missing") + " (this run: " +
                v.dump() + ")";
    if (diff.empty()) return;
    throw_usage("the scenes in " + job.output + " were made with other settings: " + diff +
                "; a run adds to a folder's scenes or remakes them with the same settings: use those, another "
                "folder, or remove this one first (" + path + ")");
  }
  write_file_atomic(path, json_file_text(want, path) + "\n");
}

// Whether `key` names one of this run's scenes (--start K, -n N, its shard).
bool in_this_run(const ScenesJob& job, const std::string& key) {
  if (key.size() < 7 || key.compare(0, 6, "scene_") != 0 || key.size() > 6 + 18) return false;
  int64_t i = 0;
  for (size_t c = 6; c < key.size(); ++c) {
    if (key[c] < '0' || key[c] > '9') return false;
    i = i * 10 + (key[c] - '0');
  }
  if (key != scene_key(i)) return false;  // "scene_01" is not scene 1's key
  return i >= job.start && i < job.start + job.count && job.shard.contains(size_t(i - job.start));
}

// A listing's line with its key; listings are written in key order (numeric:
// "scene_999999" before "scene_1000000").
using KeyedLine = std::pair<std::string, std::string>;
bool key_order(const KeyedLine& a, const KeyedLine& b) {
  return a.first.size() != b.first.size() ? a.first.size() < b.first.size() : a.first < b.first;
}

// The lines of an existing manifest (JSON lines with "key") or tags.tsv
// (key<TAB>tags) for scenes this run does not make: a run with --start K, or
// one over a folder that holds other scenes, adds its rows to the folder's
// listings instead of replacing them (they listed only this run's scenes,
// and `-n 100 --start 100` left a manifest of 100 rows beside 200 scenes).
// Read before the work, so a damaged listing is refused (exit 3) first.
std::vector<KeyedLine> other_rows(const ScenesJob& job, const std::string& path, bool json_lines) {
  std::vector<KeyedLine> kept;
  if (!file_exists(path)) return kept;
  const std::vector<uint8_t> bytes = read_text_file_bytes(path);
  const std::string text(bytes.begin(), bytes.end());
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.empty()) continue;
    std::string key;
    if (json_lines) {
      json row;
      try {
        row = parse_json_bounded<json>(line);
      } catch (const std::exception&) {
      }
      if (row.is_object() && row.contains("key") && row["key"].is_string()) key = row["key"].get<std::string>();
    } else {
      key = line.substr(0, line.find('\t'));
      if (key.size() == line.size()) key.clear();
    }
    if (key.empty())
      throw_bad_input(path, "line " + std::to_string(line_no) + " is not a " +
                                (json_lines ? "manifest row with a \"key\"" : "key<TAB>tags line") +
                                "; this run would add its rows to it: mend or remove it");
    if (!in_this_run(job, key)) kept.emplace_back(std::move(key), line);
  }
  return kept;
}

// The listing: the rows kept from before and this run's, in key order.
std::string listing_text(std::vector<KeyedLine> rows) {
  std::stable_sort(rows.begin(), rows.end(), key_order);
  std::string text;
  for (const KeyedLine& r : rows) text += r.second + "\n";
  return text;
}

}  // namespace

std::string scene_key(int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "scene_%06lld", static_cast<long long>(i));
  return buf;
}

int run_scenes(const ScenesJob& job) {
  if (job.list_classes) {
    std::string text;
    for (Cls c : all_classes())
      text += job.json ? json_text(nlohmann::ordered_json{{"class", class_name(c)}, {"label", class_label(c)}}) + "\n"
                       : class_name(c) + "\t" + std::to_string(class_label(c)) + "\n";
    batch::write_report("-", text);
    return 0;
  }
  if (job.output.empty()) throw_usage("no output: pass -o DIRECTORY");
  if (job.output == "-") throw_usage("-o names a directory (images, labels, tags, captions, manifest); '-' cannot hold them");
  if (job.count < 1) throw_usage("-n must be at least 1");
  if (job.start < 0 || job.start + job.count > 1000000000000LL) throw_usage("--start must be in 0..10^12 - n");
  // Validates the size before anything is written.
  if (job.scene.width < kMinSide || job.scene.width > kMaxSide || job.scene.height < kMinSide || job.scene.height > kMaxSide)
    throw_usage("scene size " + std::to_string(job.scene.width) + "x" + std::to_string(job.scene.height) +
                " is outside " + std::to_string(kMinSide) + ".." + std::to_string(kMaxSide) + " per side");
  std::error_code ec;
  if (fs::exists(job.output, ec) && !fs::is_directory(job.output, ec))
    throw_usage("-o " + job.output + " exists and is not a directory");
  const std::string manifest = listing_path(job, "manifest", ".jsonl"), tags_tsv = listing_path(job, "tags", ".tsv");

  // This run's scenes (its shard's), refused before anything is allocated or
  // written when they would not fit in memory: every scene keeps a key, a row
  // and its listing lines until the end (about 0.5 KB each).
  const int64_t shard_scenes =
      job.count / job.shard.count + (int64_t(job.shard.index) < job.count % job.shard.count ? 1 : 0);
  if (shard_scenes > kMaxRunScenes)
    throw_usage("-n " + std::to_string(job.count) + " gives this run " + std::to_string(shard_scenes) +
                " scenes; one run makes at most " + std::to_string(kMaxRunScenes) +
                " (split the set with --shard I/N or --start K)");
  std::vector<batch::Item> mine;
  mine.reserve(size_t(shard_scenes));
  for (int64_t i = 0; i < job.count; ++i)
    if (job.shard.contains(size_t(i))) {
      const std::string key = scene_key(job.start + i);
      mine.push_back({key, {key}, ""});
    }
  // A folder that cannot be made or written is a usage error before the
  // work (exit 2, as in the other batch tools; it was exit 1 at the lock).
  batch::OutputGuard().check_output_dir(job.output, "-o");
  // Locked before the settings are compared or replaced.
  const auto locks = batch::lock_output_dirs({job.output}, job.shard, kProg);
  for (const char* sub : {"images", "labels", "tags", "captions"}) {
    const std::string d = path_join(job.output, sub);
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(d, ec)) && !std::filesystem::is_directory(d, ec))
      throw_usage(d + " is not a folder (a file, or a link to none): the scenes' " + sub + " go there");
    make_directories(d);
  }
  for (const std::string& f : {path_join(job.output, "scenes.json"), manifest, tags_tsv})
    if (is_special_file(f))
      throw_usage(f + " is a FIFO or device, not a file this tool wrote: remove it (it would wait forever)");
  check_folder_settings(job);
  std::vector<KeyedLine> manifest_rows = other_rows(job, manifest, true), tags_rows = other_rows(job, tags_tsv, false);

  std::vector<Row> rows(mine.size());
  const EncodeOptions enc{95, true, job.png_level};
  batch::Reporter reporter(kProg);
  const auto t0 = std::chrono::steady_clock::now();
  const batch::Tally tally = batch::run_items(mine, {job.jobs, job.quiet}, reporter, [&](size_t i, int) {
    const Paths p = paths_of(job.output, mine[i].key);
    // A FIFO or device where a scene's file belongs was opened, waiting
    // forever for a writer (--resume) or a reader (the write goes in place).
    for (const std::string* f : {&p.image, &p.label, &p.tags, &p.caption})
      if (is_special_file(*f))
        throw_bad_input(*f, "is a FIFO or device, not a file this tool wrote: remove it and run again");
    Row& row = rows[i];
    if (job.resume && finished(job, p, row)) {
      row.state = Row::skipped;
      return;
    }
    const Scene s = generate_scene(job.seed, mine[i].key, job.scene);
    row.tags = tags_line(s);
    row.caption = s.caption;
    // The caption goes last: --resume takes its presence as "the rest is complete".
    write_image(p.image, s.image, ImageFormat::png, enc);
    write_image(p.label, s.labels, ImageFormat::png, enc);
    write_file_atomic(p.tags, row.tags + "\n");
    write_file_atomic(p.caption, row.caption + "\n");
    row.state = Row::done;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Listings in key order, whatever the thread timing.
  size_t done = 0, skipped = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    const Row& r = rows[i];
    if (r.state == Row::pending) continue;
    (r.state == Row::done ? done : skipped)++;
    const Paths p = paths_of(job.output, mine[i].key);
    const json row = {{"image", relative_to_manifest(manifest, p.image)},
                      {"label", relative_to_manifest(manifest, p.label)},
                      {"tags", relative_to_manifest(manifest, p.tags)},
                      {"caption", r.caption},
                      {"key", mine[i].key},
                      {"seed", job.seed},
                      {"width", job.scene.width},
                      {"height", job.scene.height}};
    manifest_rows.emplace_back(mine[i].key, json_file_text(row, manifest));
    tags_rows.emplace_back(mine[i].key, mine[i].key + "\t" + r.tags);
  }
  batch::write_report(manifest, listing_text(std::move(manifest_rows)));
  batch::write_report(tags_tsv, listing_text(std::move(tags_rows)));
  const size_t failed = tally.bad + tally.failed;
  if (!job.quiet)
    std::fprintf(stderr, "%s: %zu written, %zu already done, %zu failed (shard %s, %zu of %zu scenes, %.1f scenes/s)\n",
                 kProg, done, skipped, failed, job.shard.str().c_str(), mine.size(), size_t(job.count),
                 seconds > 0 ? double(done) / seconds : 0.0);
  if (job.json) {
    json s = {{"written", done}, {"skipped", skipped}, {"failed", failed}, {"manifest", manifest},
              {"tags", tags_tsv}, {"shard", job.shard.str()}, {"scenes", job.count}, {"shard_scenes", mine.size()},
              {"seed", job.seed}, {"width", job.scene.width}, {"height", job.scene.height},
              {"kind", kind_name(job.scene.kind)}};
    batch::put_number(s, "seconds", seconds, "");
    batch::write_report("-", json_text(s) + "\n");
  }
  return tally.exit_code();
}

}  // namespace rass::scenes
