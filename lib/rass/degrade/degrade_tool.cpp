#include "rass/degrade/degrade_tool.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "rass/batch/inputs.hpp"
#include "rass/batch/one_input.hpp"
#include "rass/batch/output_guard.hpp"
#include "rass/batch/output_lock.hpp"
#include "rass/batch/provenance.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/degrade/record.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/manifest.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::degrade {

Image prepare_input(Image img, const std::string& name, const PipelineConfig* cfg_or_null, bool drop_alpha,
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
  if (!cfg_or_null) return img;
  const PipelineConfig& cfg = *cfg_or_null;
  const int need = min_input_side(cfg);
  if (img.width < need || img.height < need)
    throw_bad_input(name, "image is " + std::to_string(img.width) + "x" + std::to_string(img.height) + ", smaller than " +
                              (need == cfg.scale ? "the scale " + std::to_string(need)
                                                 : "the " + std::to_string(need) + "x" + std::to_string(need) +
                                                       " blur kernel") +
                              " of preset " + cfg.preset + " (need at least " + std::to_string(need) +
                              " px per side; a blur switched off by probability 0 or --stages does not count)");
  return img;
}

// A dataset builder's LQ images per HQ image: RealESRGAN-style sets use a
// handful; past this the plan alone is gigabytes.
constexpr int kMaxVariants = 10000;

namespace {

constexpr char kProg[] = "rass-degrade";

std::string extension_for(ImageFormat f) {
  return f == ImageFormat::jpeg ? ".jpg" : f == ImageFormat::pnm ? ".ppm" : ".png";
}

// A record is kilobytes (its kernels are at most 21x21): a larger "record"
// (--replay /dev/zero) is refused before it fills the memory.
constexpr size_t kMaxRecordBytes = size_t(16) << 20;

std::string variant_key(const std::string& key, int k) { return k == 0 ? key : key + "#v" + std::to_string(k); }

// What a single degradation draws per image: the op fields ("i.name") that
// differ between two items' records of one size (empty: nothing is random).
std::set<std::string> drawn_fields(const PipelineConfig& cfg) {
  const Record a = sample_record(cfg, 0, "a", 512, 384, 3), b = sample_record(cfg, 0, "b", 512, 384, 3);
  std::set<std::string> drawn;
  for (size_t i = 0; i < a.ops.size() && i < b.ops.size(); ++i) {
    const json oa = op_to_json(a.ops[i]), ob = op_to_json(b.ops[i]);
    for (auto it = oa.begin(); it != oa.end(); ++it)
      if (!ob.contains(it.key()) || ob[it.key()] != it.value()) drawn.insert(std::to_string(i) + "." + it.key());
  }
  return drawn;
}

// Options given that cannot change this run's outputs: a warning each (unless
// -q), as a script that always passes them should still run.
void warn_unused_options(const DegradeJob& job, ImageFormat fmt) {
  if (job.quiet) return;
  auto warn = [](const std::string& what) { std::fprintf(stderr, "rass-degrade: warning: %s\n", printable_message(what).c_str()); };
  if (job.out_quality_given && fmt != ImageFormat::jpeg)
    warn(std::string("--out-quality applies to JPEG outputs; these are ") + format_name(fmt));
  if (job.png_level_given && fmt != ImageFormat::png)
    warn(std::string("--png-level applies to PNG outputs; these are ") + format_name(fmt));
  if (job.upsample_mode_given && (!job.cfg.lq_at_hq_size || job.cfg.scale == 1) && job.cfg.named.name.empty())
    warn("--upsample-mode applies with --lq-size hq and a scale above 1: no image is resized back here");
  // Single degradations that draw nothing at random give N equal variants.
  if (job.variants > 1 && !job.cfg.named.name.empty() && drawn_fields(job.cfg).empty())
    warn("--variants " + std::to_string(job.variants) + " with preset " + job.cfg.named.name +
         ", which draws nothing at random: the variants are the same image");
}

// The format to write: --format, else the extension of -o (PNG for stdout).
// A --format that contradicts the extension is refused: JPEG bytes under a
// .png name fool every reader that trusts extensions.
ImageFormat output_format(const DegradeJob& job) {
  const ImageFormat by_name = job.output == "-" ? ImageFormat::unknown : format_from_extension(job.output);
  if (job.format == ImageFormat::unknown) {
    if (names_descriptor(job.output)) return ImageFormat::png;  // "-", /dev/fd/N: no name to tell by
    if (by_name == ImageFormat::unknown)
      throw_usage("-o " + job.output + ": cannot tell the image format from the extension; pass --format");
    return by_name;
  }
  if (by_name != ImageFormat::unknown && by_name != job.format)
    throw_usage("-o " + job.output + ": the extension names another format than --format " +
                format_name(job.format) + "; use a matching extension (" + extension_for(job.format) + ")");
  return job.format;
}

// The record as text; a name that JSON cannot hold is bad input, found before anything is written.
std::string record_text(const json& record, const std::string& name) {
  try {
    return record.dump(2) + "\n";  // strict: a record is read back
  } catch (const json::exception& e) {
    throw_bad_input(name, std::string("cannot be named in a JSON record: ") + e.what());
  }
}

// ---- single image ---------------------------------------------------------

int run_single(const DegradeJob& job) {
  // Batch mode's flags do nothing here: refused, as --key and --record are in batch mode.
  if (!job.manifest_out.empty())
    throw_usage("--manifest-out lists a batch's outputs; one image (-o FILE) writes none (-o DIR/ for batch mode)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one image (-o FILE)", " (-o DIR/ for batch mode)");
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}, {"--record -", job.record_path == "-"}});
  const ImageFormat fmt = output_format(job);
  warn_unused_options(job, fmt);
  batch::OutputGuard guard;
  guard.add_input(in);
  guard.add_input(job.replay_path);
  guard.check_output_file(job.output, "-o");
  guard.check_output_file(job.record_path, "--record");
  const batch::OneOutputHold held({job.output, job.record_path});
  if (!job.record_path.empty() && job.record_path != "-" && job.record_path == job.output)
    throw_usage("--record and -o name the same file");

  const std::vector<uint8_t> hq_bytes = read_image_bytes(in);
  // A record made for a small image replays it: the record's ops apply, not
  // the size rule of the command line's (default) preset.
  Image hq = prepare_input(decode_image(hq_bytes.data(), hq_bytes.size(), name), name,
                           job.replay_path.empty() ? &job.cfg : nullptr, job.drop_alpha, job.accept_16bit);
  Record rec;
  if (!job.replay_path.empty()) {
    const auto raw = read_json_file(job.replay_path, kMaxRecordBytes, Keys::unique);
    // A batch record names its HQ image's bytes: another image of the same
    // size would replay without a word, and give another LQ image.
    // A warning, not a refusal: a file saved again without loss (optipng,
    // metadata stripped) has other bytes and the same pixels.
    if (raw.contains("hq_hash") && raw["hq_hash"].is_string() &&
        raw["hq_hash"].get<std::string>() != batch::bytes_hash(hq_bytes) && !job.quiet)
      std::fprintf(stderr, "rass-degrade: warning: %s is not the file %s was made from (its hq_hash differs): "
                           "the output is that record's degradation of this image\n",
                   printable_message(name).c_str(), printable_message(job.replay_path).c_str());
    rec = record_from_json(raw, job.replay_path);
    resolve_frost_pictures(rec, job.cfg.named.frost_dir);
  } else {
    const std::string key = !job.key.empty() ? job.key : in == "-" ? "stdin" : path_stem(in);
    if (!batch::valid_utf8(key))
      throw_bad_input(name, "the file name is not valid UTF-8, so the record cannot hold its key: pass --key");
    rec = sample_record(job.cfg, job.seed, key, hq.width, hq.height, hq.channels);
  }
  Image lq = apply_record(hq, rec, name);
  // The PNM writer picks P5 or P6 from the image: a colour LQ image under a
  // .pgm name would be a file other tools read as gray.
  if (path_extension_lower(job.output) == ".pgm" && lq.channels != 1)
    throw_usage("-o " + job.output + ": a .pgm holds a gray image and the LQ image of " + name +
                " is colour (use .ppm, .pnm, .png or .jpg)");
  const std::string text = record_text(record_to_json(rec), name);  // before any write: both or neither
  write_image(job.output, lq, fmt, job.encode);
  if (!job.record_path.empty()) {
    try {
      // On stdout the controls a key may hold are \u escapes (json_text's
      // rule); a record file keeps the text as the record is read back.
      batch::write_report(job.record_path, job.record_path == "-" ? escape_json_controls(text) : text);
    } catch (const Error&) {
      if (removable_output(job.output)) std::remove(job.output.c_str());  // both or neither
      throw;
    }
  }
  if (job.json) batch::write_report("-", escape_json_controls(text));
  return 0;
}

// ---- batch -----------------------------------------------------------------

// --resume: an output counts as done when its record is the record this run
// would draw (same seed, key, preset and every setting: a run with --scale 2 or
// --stages=-noise redoes it) and the image decodes to the size it declares (a
// truncated or foreign file is redone). The record version may differ: an
// output made by an older version is complete and replays with its own
// version's arithmetic, so an upgrade does not redo a finished dataset.
// The HQ image must be the one it was made from: a record holds the hash of
// its bytes ("hq_hash", batch/provenance.hpp); one from before that field
// is taken as it is.
bool finished(const DegradeJob& job, const std::string& lq, const std::string& record, const std::string& key,
              const std::string& hq_hash) {
  std::error_code ec;
  if (!fs::exists(lq, ec) || fs::file_size(lq, ec) == 0 || !fs::exists(record, ec)) return false;
  try {
    const auto raw = read_json_file(record, kMaxRecordBytes, Keys::unique);
    if (raw.contains("hq_hash") && raw["hq_hash"] != hq_hash) return false;
    const Record stored = record_from_json(raw, record);
    if (stored.seed != job.seed || stored.key != key) return false;
    json have = record_to_json(stored);
    json want = record_to_json(sample_record(job.cfg, job.seed, key, stored.in_width, stored.in_height, stored.channels));
    for (json* j : {&have, &want}) {
      j->erase("version");  // the tool version that wrote it: records are stable across versions
      j->erase("record_version");
    }
    if (have != want) return false;
    const Image img = read_image(lq);
    return img.width == stored.out_width && img.height == stored.out_height && img.channels == stored.channels;
  } catch (const std::exception&) {
    return false;
  }
}

struct Unit {  // one output: an item and a variant
  size_t item;
  int variant;
  std::string lq, record;
  enum { pending, done, skipped } state = pending;  // still pending after the run: its item failed
};

std::string manifest_path(const DegradeJob& job) {
  const std::string shard_tag = "." + std::to_string(job.shard.index) + "-of-" + std::to_string(job.shard.count);
  // Each shard writes its own manifest, also when a name is given (shards must not overwrite each other).
  if (!job.manifest_out.empty()) {
    if (job.shard.count == 1) return job.manifest_out;
    const std::string ext = path_extension_lower(job.manifest_out);
    return job.manifest_out.substr(0, job.manifest_out.size() - ext.size()) + shard_tag + ext;
  }
  return path_join(job.output, job.shard.count == 1 ? "manifest.jsonl" : "manifest" + shard_tag + ".jsonl");
}

// Degrades one HQ item into its pending variants; writes image and record
// together (a record that cannot be written takes its image with it).
void make_outputs(const DegradeJob& job, const batch::Item& item, const std::vector<uint8_t>& bytes,
                  const std::string& hq_hash, const std::vector<Unit*>& to_make, ImageFormat fmt) {
  const std::string& path = item.paths[0];
  Image hq = prepare_input(decode_image(bytes, path), path, &job.cfg, job.drop_alpha, job.accept_16bit);
  for (Unit* u : to_make) {
    Record rec = sample_record(job.cfg, job.seed, variant_key(item.key, u->variant), hq.width, hq.height, hq.channels);
    Image lq = apply_record(hq, rec, path);
    json rj = record_to_json(rec);
    rj["hq"] = relative_to_manifest(u->record, path);
    rj["hq_hash"] = hq_hash;
    const std::string text = record_text(rj, path);  // before any write: both or neither
    // An older record goes before the new image takes its name: killed
    // between the two renames, the folder then holds an image without a
    // record (redone by --resume), never a new image beside an old record
    // that --resume would accept.
    // (unlink: a directory in the record's place stays, and the record's
    // write then fails and takes the image with it.)
    if (removable_output(u->record) && ::unlink(u->record.c_str()) != 0 && errno != ENOENT && errno != EISDIR)
      throw_runtime(u->record + ": cannot remove the older record: " + std::strerror(errno));
    write_image(u->lq, lq, fmt, job.encode);
    try {
      write_file_atomic(u->record, text);
    } catch (const Error&) {
      if (removable_output(u->lq)) std::remove(u->lq.c_str());
      throw;
    }
    u->state = Unit::done;
  }
}

}  // namespace

static int run_batch(const DegradeJob& job) {
  if (!job.replay_path.empty()) throw_usage("--replay regenerates one image; give one input and -o FILE");
  if (!job.record_path.empty()) throw_usage("--record names one record; in batch mode records go next to each output");
  if (job.output.empty() || job.output == "-") throw_usage("batch mode needs -o DIRECTORY");
  // "-o f.png --variants 3" made a folder named f.png: an image name is refused unless that folder exists.
  // error_code forms: an -o that is a link loop is the output guard's to name (exit 2), not a filesystem_error.
  std::error_code ec;
  if (format_from_extension(job.output) != ImageFormat::unknown && !fs::is_directory(job.output, ec))
    throw_usage("-o " + job.output + " names an image file, but this run writes a folder of images (" +
                (job.variants > 1 ? "--variants " + std::to_string(job.variants) : std::string("several inputs")) +
                "): give a folder");
  // Every item's variants are planned before the first is made: a million
  // per image grew the memory by gigabytes with no file written.
  if (job.variants < 1 || job.variants > kMaxVariants)
    throw_usage("--variants must be 1 to " + std::to_string(kMaxVariants));
  if (!job.key.empty()) throw_usage("--key names the one image of single mode; in batch mode keys come from the inputs");
  const std::string manifest = manifest_path(job);
  if (fs::is_directory(manifest, ec)) throw_usage("--manifest-out " + manifest + " is a directory");
  batch::claim_stdout({{"--json", job.json}, {"--manifest-out -", job.manifest_out == "-"}});

  batch::InputSpec spec;
  spec.roles = {{"hq", {"hq"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest_in;
  spec.skip_dirs = {job.output};  // outputs inside an input tree are never read back as inputs
  spec.allow_stdin = false;
  // The longest name is the record's: <key>[_v<k>].json.
  spec.name_room = (job.variants > 1 ? 2 + std::to_string(job.variants - 1).size() : 0) + 5;
  std::vector<batch::Item> all = batch::collect_items(spec);
  // Key order fixes which shard takes which item, whatever the listing order.
  std::stable_sort(all.begin(), all.end(), [](const batch::Item& a, const batch::Item& b) { return a.key < b.key; });
  // Variant k of key K is keyed "K#vk" (its draws and its manifest key): an
  // input whose own key is "x#v1" would get x's variant 1's draws and key.
  // The later key (x#v1 sorts after x) is a bad item, in every shard alike.
  if (job.variants > 1) {
    std::unordered_map<std::string, std::pair<size_t, int>> owner;  // variant key -> (item, variant)
    for (size_t i = 0; i < all.size(); ++i) {
      if (!all[i].error.empty()) continue;
      for (int k = 0; k < job.variants && all[i].error.empty(); ++k)
        if (const auto at = owner.find(variant_key(all[i].key, k)); at != owner.end())
          all[i].error = all[i].name() + ": its variant key '" + at->first + "' is also that of variant " +
                         std::to_string(at->second.second) + " of " + all[at->second.first].name() +
                         " (--variants keys variant k of K as K#vk): rename one of them";
      for (int k = 0; k < job.variants && all[i].error.empty(); ++k) owner.emplace(variant_key(all[i].key, k), std::pair{i, k});
    }
  }
  std::vector<batch::Item> mine;
  for (size_t i = 0; i < all.size(); ++i)
    if (job.shard.contains(i)) mine.push_back(all[i]);

  const ImageFormat fmt = job.format == ImageFormat::unknown ? ImageFormat::png : job.format;
  warn_unused_options(job, fmt);
  std::vector<Unit> units;
  std::vector<std::vector<size_t>> units_of(mine.size());  // variants share one decode
  for (size_t i = 0; i < mine.size(); ++i) {
    if (!mine[i].error.empty()) continue;
    for (int k = 0; k < job.variants; ++k) {
      std::string base = path_join(job.output, mine[i].key) + (job.variants > 1 ? "_v" + std::to_string(k) : "");
      units_of[i].push_back(units.size());
      units.push_back({i, k, base + extension_for(fmt), base + ".json"});
    }
  }

  // Nothing is written until every output is known not to be an input.
  batch::OutputGuard guard;
  for (const std::string& in : job.inputs) guard.add_input(in);
  guard.add_input(job.manifest_in);
  for (const batch::Item& it : all) guard.add_input(it.paths[0]);
  guard.check_output_dir(job.output, "-o");
  guard.check_output_file(manifest, "the manifest");
  const std::string manifest_abs = fs::absolute(manifest).lexically_normal().string();
  for (const Unit& u : units) {
    guard.check_output_file(u.lq, "output", true);
    guard.check_output_file(u.record, "record", true);
    for (const std::string& out : {u.lq, u.record})
      if (fs::absolute(out).lexically_normal().string() == manifest_abs)
        throw_usage("the manifest " + manifest + " would be written over the output " + out + ": choose another --manifest-out");
  }
  // An image of another format under an output's name (an earlier run with
  // another --format) would stay beside the new one with no record for it
  // (the record's name is the same), and every later reader would see two
  // items with one key: refused before the work.
  if (fs::is_directory(job.output, ec))
    for (const Unit& u : units) {
      const std::string base = u.lq.substr(0, u.lq.size() - extension_for(fmt).size());
      for (ImageFormat other : {ImageFormat::png, ImageFormat::jpeg, ImageFormat::pnm})
        if (other != fmt && file_exists(base + extension_for(other)))
          throw_usage(base + extension_for(other) + " is another format's output of this key (its record " + u.record +
                      " would now describe " + u.lq + "): remove the " + extension_for(other) +
                      " images, or write to another folder");
    }
  const auto locks = batch::lock_output_dirs({job.output}, job.shard, kProg);  // makes the folder

  batch::Reporter reporter(kProg);
  size_t skipped = 0;
  const batch::Tally tally = batch::run_items(mine, {job.jobs, job.quiet}, reporter, [&](size_t i, int) {
    // A directory (or a FIFO, socket or device) in the place of one of the
    // item's outputs makes it a bad item before any work (as in the network
    // tools), not a failed write (or a blocked one) after it; its other
    // variants are not made either.
    for (size_t u : units_of[i])
      for (const auto& [path, what] : {std::pair<const std::string&, const char*>{units[u].lq, "the image"},
                                       {units[u].record, "the record"}}) {
        const std::string why = batch::OutputGuard::item_output_problem(path, what);
        if (!why.empty()) throw_bad_input(mine[i].paths[0], why);
      }
    // Read once: hashed for the records (and --resume's check), then decoded.
    const std::vector<uint8_t> bytes = read_image_bytes(mine[i].paths[0]);
    const std::string hq_hash = batch::bytes_hash(bytes);
    std::vector<Unit*> to_make;
    for (size_t u : units_of[i]) {
      Unit& unit = units[u];
      if (job.resume && finished(job, unit.lq, unit.record, variant_key(mine[i].key, unit.variant), hq_hash))
        unit.state = Unit::skipped;
      else
        to_make.push_back(&unit);
    }
    if (!to_make.empty()) make_outputs(job, mine[i], bytes, hq_hash, to_make, fmt);
  });

  // The manifest lists every finished output, in key order, whatever the thread timing.
  std::string text;
  size_t done = 0;
  for (const Unit& u : units) {
    if (u.state == Unit::pending) continue;
    (u.state == Unit::skipped ? skipped : done)++;
    json row = {{"hq", relative_to_manifest(manifest, mine[u.item].paths[0])},
                {"lq", relative_to_manifest(manifest, u.lq)},
                {"record", relative_to_manifest(manifest, u.record)},
                {"key", variant_key(mine[u.item].key, u.variant)}};
    text += json_file_text(row, manifest) + "\n";
  }
  batch::write_report(manifest, text);
  const size_t bad_items = tally.bad + tally.failed;

  if (!job.quiet)
    std::fprintf(stderr, "%s: %zu written, %zu already done, %zu failed (shard %s, %zu of %zu inputs)\n", kProg,
                 done, skipped, bad_items, job.shard.str().c_str(), mine.size(), all.size());
  if (job.json) {
    json s = {{"written", done}, {"skipped", skipped}, {"failed", bad_items},
              {"manifest", manifest}, {"shard", job.shard.str()}, {"inputs", all.size()}, {"shard_inputs", mine.size()}};
    batch::write_report("-", json_text(s) + "\n");
  }
  return tally.exit_code();
}

// --print-config: the settings, and for a single degradation the ops its
// severity makes, with what each image draws marked as such (the fields
// that differ between two items' records) and the resize sizes, which
// follow the image, left out.
static json print_config_json(const PipelineConfig& cfg) {
  json j = config_to_json(cfg);
  if (cfg.named.name.empty() || (cfg.named.name == "frost" && cfg.named.frost_dir.empty())) return j;
  const std::set<std::string> drawn = drawn_fields(cfg);
  const Record a = sample_record(cfg, 0, "a", 512, 384, 3);
  json ops = json::array();
  for (size_t i = 0; i < a.ops.size(); ++i) {
    json op = op_to_json(a.ops[i]);
    for (auto it = op.begin(); it != op.end(); ++it)
      if (drawn.count(std::to_string(i) + "." + it.key())) it.value() = "drawn per image";
    if (a.ops[i].kind == OpKind::resize) op.erase("width"), op.erase("height");
    ops.push_back(op);
  }
  j["ops"] = ops;
  return j;
}

int run_degrade(const DegradeJob& job) {
  validate(job.cfg);
  if (job.print_config) {
    batch::write_report("-", json_text(print_config_json(job.cfg), 2) + "\n");
    return 0;
  }
  if (job.inputs.empty() && job.manifest_in.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  batch::claim_stdin(job.inputs, {{"--replay -", job.replay_path == "-"}, {"--manifest -", job.manifest_in == "-"}});
  if (job.output.empty()) throw_usage("no output: pass -o FILE (one image) or -o DIRECTORY (batch)");
  std::error_code ec;
  const bool single = job.inputs.size() == 1 && job.manifest_in.empty() && job.variants == 1 &&
                      (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec)) &&
                      !fs::is_directory(job.output, ec) && job.output.back() != '/';
  return single ? run_single(job) : run_batch(job);
}

}  // namespace rass::degrade
