#include "rass/degrade/run.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/progress.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_files.hpp"
#include "rass/io/manifest.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::degrade {

Image prepare_input(Image img, const std::string& name, const PipelineConfig& cfg, bool drop_alpha,
                    bool accept_16bit) {
  if (img.channels == 2 || img.channels == 4) {
    if (!drop_alpha)
      throw_bad_input(name, std::string("has an alpha channel (") + (img.channels == 4 ? "RGBA" : "gray+alpha") +
                                "); the degradation model takes gray or RGB: flatten it first or pass --drop-alpha");
    img = rass::drop_alpha(std::move(img));
  }
  if (img.depth == 16 && !accept_16bit)
    throw_bad_input(name, "is a 16-bit image; the degradation model works on 8-bit data: "
                          "pass --accept-16bit to read it at full precision (the LQ image is 8-bit)");
  const int need = min_input_side(cfg);
  if (img.width < need || img.height < need)
    throw_bad_input(name, "image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                              ", smaller than the " + std::to_string(need) + "x" + std::to_string(need) +
                              " blur kernel of preset " + cfg.preset + " (need at least " + std::to_string(need) +
                              " px per side)");
  return img;
}

namespace {

std::string extension_for(ImageFormat f) {
  return f == ImageFormat::jpeg ? ".jpg" : f == ImageFormat::pnm ? ".ppm" : ".png";
}

std::string variant_key(const std::string& key, int k) { return k == 0 ? key : key + "#v" + std::to_string(k); }

// ---- single image ---------------------------------------------------------

int run_single(const DegradeJob& job) {
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  if (job.json && job.output == "-") throw_usage("--json prints the record on stdout, which -o - already uses");
  Image hq = prepare_input(read_image(in), name, job.cfg, job.drop_alpha, job.accept_16bit);
  Record rec;
  if (!job.replay_path.empty()) {
    rec = record_from_json(read_json_file(job.replay_path), job.replay_path);
  } else {
    const std::string key = !job.key.empty() ? job.key : in == "-" ? "stdin" : path_stem(in);
    rec = sample_record(job.cfg, job.seed, key, hq.width, hq.height, hq.channels);
  }
  Image lq = apply_record(hq, rec, name);
  ImageFormat fmt = job.format != ImageFormat::unknown ? job.format
                    : job.output == "-"                ? ImageFormat::png
                                                       : format_from_extension(job.output);
  if (fmt == ImageFormat::unknown)
    throw_usage("-o " + job.output + ": cannot tell the image format from the extension; pass --format");
  const json rj = record_to_json(rec);
  write_image(job.output, lq, fmt, job.encode);
  if (!job.record_path.empty()) write_file_atomic(job.record_path, rj.dump(2) + "\n");
  if (job.json) std::printf("%s\n", rj.dump(2).c_str());
  return 0;
}

// ---- batch -----------------------------------------------------------------

struct Item {
  std::string hq;   // path to read
  std::string key;  // relative path without extension: keys the draws and names the outputs
};

std::vector<Item> collect_items(const DegradeJob& job) {
  std::vector<Item> items;
  for (const std::string& in : job.inputs) {
    if (in == "-") throw_usage("'-' (stdin) reads one image; it cannot be part of a batch");
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      // Outputs written inside an input directory must not become inputs on a re-run.
      const std::vector<std::string> found = list_files(in, has_image_extension, job.output);
      for (const std::string& p : found) {
        fs::path rel = fs::path(p).lexically_relative(in);
        items.push_back({p, rel.replace_extension().string()});
      }
    } else {
      items.push_back({in, path_stem(in)});  // a missing file is reported when it is read
    }
  }
  if (!job.manifest_in.empty()) {
    for (const ManifestRow& row : read_manifest(job.manifest_in)) {
      std::string p;
      if (row.fields.count("hq")) p = row.fields.at("hq");
      else if (!row.columns.empty()) p = row.columns[0];
      else throw_bad_input(job.manifest_in, "line " + std::to_string(row.line) + ": no \"hq\" path");
      p = resolve_manifest_path(job.manifest_in, p);
      std::string key = row.fields.count("key") ? row.fields.at("key") : path_stem(p);
      items.push_back({p, key});
    }
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  for (size_t i = 1; i < items.size(); ++i)
    if (items[i].key == items[i - 1].key)
      throw_bad_input(items[i].hq, "has the same key '" + items[i].key + "' as " + items[i - 1].hq +
                                       " (outputs would collide); rename one of them");
  return items;
}

// --resume: an output counts as done when the image is non-empty and its record
// names the same seed, key and preset (a run with other settings redoes it).
bool finished(const std::string& lq, const std::string& record, uint64_t seed, const std::string& key,
              const std::string& preset) {
  std::error_code ec;
  if (!fs::exists(lq, ec) || fs::file_size(lq, ec) == 0 || !fs::exists(record, ec)) return false;
  try {
    const json j = read_json_file(record);
    return j.value("seed", uint64_t(0)) == seed && j.value("key", "") == key && j.value("preset", "") == preset;
  } catch (const std::exception&) {
    return false;
  }
}

struct Unit {  // one output: an item and a variant
  const Item* item;
  int variant;
  std::string lq, record;
  enum { pending, done, skipped, failed } state = pending;
};

}  // namespace

static int run_batch(const DegradeJob& job) {
  if (!job.replay_path.empty()) throw_usage("--replay regenerates one image; give one input and -o FILE");
  if (!job.record_path.empty()) throw_usage("--record names one record; in batch mode records go next to each output");
  if (job.output.empty() || job.output == "-") throw_usage("batch mode needs -o DIRECTORY");
  if (job.variants < 1) throw_usage("--variants must be >= 1");

  const std::vector<Item> all = collect_items(job);
  std::vector<const Item*> mine;
  for (size_t i = 0; i < all.size(); ++i)
    if (job.shard.contains(i)) mine.push_back(&all[i]);

  make_directories(job.output);
  const ImageFormat fmt = job.format == ImageFormat::unknown ? ImageFormat::png : job.format;
  std::vector<Unit> units;
  for (const Item* it : mine)
    for (int k = 0; k < job.variants; ++k) {
      std::string base = path_join(job.output, it->key) + (job.variants > 1 ? "_v" + std::to_string(k) : "");
      units.push_back({it, k, base + extension_for(fmt), base + ".json"});
    }
  // Each shard writes its own manifest, also when a name is given (shards must not overwrite each other).
  std::string given = job.manifest_out;
  if (!given.empty() && job.shard.count > 1) {
    const std::string ext = path_extension_lower(given);
    given = given.substr(0, given.size() - ext.size()) + "." + std::to_string(job.shard.index) + "-of-" +
            std::to_string(job.shard.count) + ext;
  }
  const std::string manifest = !given.empty() ? given
                               : job.shard.count == 1
                                   ? path_join(job.output, "manifest.jsonl")
                                   : path_join(job.output, "manifest." + std::to_string(job.shard.index) + "-of-" +
                                                               std::to_string(job.shard.count) + ".jsonl");

  std::mutex log_mu;
  std::atomic<int> bad{0}, runtime{0};
  auto report = [&](const std::string& msg) {
    std::lock_guard<std::mutex> lock(log_mu);
    std::fprintf(stderr, "rass-degrade: %s\n", msg.c_str());
  };

  // Work is handed out per HQ item so its variants share one decode.
  std::map<const Item*, std::vector<Unit*>> by_item;
  for (Unit& u : units) by_item[u.item].push_back(&u);
  std::vector<std::vector<Unit*>> work;
  for (const Item* it : mine) work.push_back(by_item[it]);

  Progress progress(units.size(), "rass-degrade", job.quiet);
  parallel_for(work.size(), worker_count(job.jobs, work.size()), [&](size_t w, int) {
      std::vector<Unit*>& group = work[w];
      std::vector<Unit*> to_make;
      for (Unit* u : group) {
        if (job.resume && finished(u->lq, u->record, job.seed, variant_key(u->item->key, u->variant), job.cfg.preset)) {
          u->state = Unit::skipped;
          progress.tick();
        } else {
          to_make.push_back(u);
        }
      }
      if (to_make.empty()) return;
      const Item& item = *group[0]->item;
      try {
        Image hq = prepare_input(read_image(item.hq), item.hq, job.cfg, job.drop_alpha, job.accept_16bit);
        for (Unit* u : to_make) {
          Record rec = sample_record(job.cfg, job.seed, variant_key(item.key, u->variant), hq.width, hq.height,
                                     hq.channels);
          Image lq = apply_record(hq, rec, item.hq);
          json rj = record_to_json(rec);
          rj["hq"] = relative_to_manifest(u->record, item.hq);
          make_directories(fs::path(u->lq).parent_path().string());
          write_image(u->lq, lq, fmt, job.encode);
          write_file_atomic(u->record, rj.dump(2) + "\n");
          u->state = Unit::done;
          progress.tick();
        }
      } catch (const Error& e) {
        (e.code() == ExitCode::bad_input ? bad : runtime)++;
        report(e.what());
        for (Unit* u : to_make)
          if (u->state == Unit::pending) u->state = Unit::failed, progress.tick();
      } catch (const std::exception& e) {
        runtime++;
        report(item.hq + ": " + e.what());
        for (Unit* u : to_make)
          if (u->state == Unit::pending) u->state = Unit::failed, progress.tick();
      }
  });
  progress.finish();

  // The manifest lists every finished output, in key order, whatever the thread timing.
  std::string text;
  size_t done = 0, skipped = 0, failed = 0;
  for (const Unit& u : units) {
    if (u.state == Unit::failed) {
      ++failed;
      continue;
    }
    (u.state == Unit::skipped ? skipped : done)++;
    json row = {{"hq", relative_to_manifest(manifest, u.item->hq)},
                {"lq", relative_to_manifest(manifest, u.lq)},
                {"record", relative_to_manifest(manifest, u.record)},
                {"key", variant_key(u.item->key, u.variant)}};
    text += row.dump() + "\n";
  }
  write_file_atomic(manifest, text);

  if (!job.quiet)
    std::fprintf(stderr, "rass-degrade: %zu written, %zu already done, %zu failed (shard %s, %zu of %zu inputs)\n",
                 done, skipped, failed, job.shard.str().c_str(), mine.size(), all.size());
  if (job.json) {
    json s = {{"written", done}, {"skipped", skipped}, {"failed", failed}, {"manifest", manifest},
              {"shard", job.shard.str()}, {"inputs", all.size()}, {"shard_inputs", mine.size()}};
    std::printf("%s\n", s.dump().c_str());
  }
  if (runtime > 0) return int(ExitCode::runtime);
  if (bad > 0) return int(ExitCode::bad_input);
  return 0;
}

int run_degrade(const DegradeJob& job) {
  validate(job.cfg);
  if (job.print_config) {
    std::printf("%s\n", config_to_json(job.cfg).dump(2).c_str());
    return 0;
  }
  if (job.inputs.empty() && job.manifest_in.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  if (job.output.empty()) throw_usage("no output: pass -o FILE (one image) or -o DIRECTORY (batch)");
  std::error_code ec;
  const bool single = job.inputs.size() == 1 && job.manifest_in.empty() && job.variants == 1 &&
                      (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec)) &&
                      !fs::is_directory(job.output, ec) && job.output.back() != '/';
  return single ? run_single(job) : run_batch(job);
}

}  // namespace rass::degrade
