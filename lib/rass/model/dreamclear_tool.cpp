#include "rass/model/dreamclear_tool.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/batch/inputs.hpp"
#include "rass/batch/one_input.hpp"
#include "rass/batch/ordered_lines.hpp"
#include "rass/batch/output_lock.hpp"
#include "rass/batch/provenance.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/batch/summary.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/png_text.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/dreamclear_model.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/threads.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr char kProg[] = "rass-dreamclear";

// The working image (after --upscale and --min-size) is at most 64 Mpx: its
// latent is denoised in tiles, but SwinIR and the VAE see it whole.
constexpr int64_t kMaxWorkPixels = int64_t(1) << 26;

void check_job(const DreamClearJob& job) {
  if (job.caption.empty() == !job.null_caption)
    throw_usage(job.null_caption ? "--caption and --null-caption exclude each other"
                                 : "no caption: pass --caption FILE.npz|DIR (T5 features, DreamClear's "
                                   "tools/extract_t5_features.py format) or --null-caption");
  if (job.tile != 0 && job.tile < 8) throw_usage("--tile " + std::to_string(job.tile) + ": 0 (no tiles) or at least 8");
  if (job.tile != 0 && job.tile_overlap >= job.tile)
    throw_usage("--tile-overlap " + std::to_string(job.tile_overlap) + " must be below --tile " + std::to_string(job.tile));
  if (job.tile % 2) throw_usage("--tile " + std::to_string(job.tile) + " must be even (the DiT's 2x2 patches)");
  if (job.vae_encoder_tile >= 0 || job.vae_decoder_tile >= 0) check_vae_tile_sizes(job.vae_encoder_tile, job.vae_decoder_tile);
  parse_tile_offload(job.vae_offload);
}

DreamClearRun run_of(const DreamClearJob& job) {
  DreamClearRun r;
  r.steps = job.steps;
  r.cfg_scale = job.cfg_scale;
  r.upscale = job.upscale;
  r.min_size = job.min_size;
  r.tile = job.tile;
  r.tile_overlap = job.tile_overlap;
  r.color_fix = job.color_fix == "wavelet";
  r.lre_start = job.lre_start;
  r.vae_tile = job.vae_encoder_tile > 0;
  r.vae_tiling.encoder_tile = job.vae_encoder_tile;
  r.vae_tiling.decoder_tile = job.vae_decoder_tile;
  r.vae_tiling.offload = parse_tile_offload(job.vae_offload);
  return r;
}

DreamClearModelOptions model_options(const DreamClearJob& job) {
  DreamClearModelOptions o;
  o.dir = job.model;
  o.device = job.device;
  o.dtype = job.dtype;
  return o;
}

// The caption file of an item: the one file, or <dir>/<key>.npz.
std::string caption_path(const DreamClearJob& job, const std::string& key) {
  if (job.null_caption) return "";
  std::error_code ec;
  if (fs::is_directory(job.caption, ec)) return path_join(job.caption, key) + ".npz";
  return job.caption;
}

std::string missing_caption(const DreamClearJob& job, const std::string& key) {
  std::error_code ec;
  if (fs::is_directory(job.caption, ec)) return "no such caption file (--caption DIR holds <key>.npz; key '" + key + "')";
  return "no such caption file";
}

struct ItemCaption {
  DreamClearCaption caption;
  std::string hash;  // of the file's bytes ("null" for the null caption)
};

ItemCaption load_caption(const DreamClearJob& job, const DreamClearModel& m, const std::string& key) {
  ItemCaption c;
  if (job.null_caption) {
    c.caption = m.null_caption();
    c.hash = "null";
    return c;
  }
  const std::string path = caption_path(job, key);
  if (!file_exists(path)) throw_bad_input(path, missing_caption(job, key));
  // <dir>/<key>.npz is found, not named: a FIFO there blocked the batch at
  // its open (a FIFO named by --caption itself is read: <(...)).
  if (path != job.caption) require_found_file(path, "a caption .npz of --caption DIR");
  const std::vector<uint8_t> bytes = read_dreamclear_caption_bytes(path);
  c.hash = batch::bytes_hash(bytes);
  c.caption = parse_dreamclear_caption(bytes, path, m.config.dit.model_max_length, m.config.dit.caption_channels);
  return c;
}

void check_size(const Image& lq, const DreamClearJob& job, const std::string& name) {
  const DreamClearSizes s = dreamclear_sizes(lq.width, lq.height, job.upscale, job.min_size);
  if (int64_t(s.work_w) * s.work_h > kMaxWorkPixels)
    throw_bad_input(name, std::to_string(lq.width) + "x" + std::to_string(lq.height) + " works at " +
                              std::to_string(s.work_w) + "x" + std::to_string(s.work_h) +
                              " after --upscale and --min-size: more than 64 Mpx");
  if (s.work_w < 64 || s.work_h < 64)
    throw_bad_input(name, std::to_string(lq.width) + "x" + std::to_string(lq.height) +
                              " is too small: its working size rounds to under 64 pixels (raise --min-size or --upscale)");
}

// The VAE halves that run over tiles for an input of w x h (null: neither).
json vae_tile_record(const DreamClearJob& job, int w, int h) {
  if (w <= 0 || h <= 0) return nullptr;
  const DreamClearSizes s = dreamclear_sizes(w, h, job.upscale, job.min_size);
  const int64_t side = std::max(s.work_w, s.work_h);
  const VaeTiling t;  // the pads
  const bool enc = job.vae_encoder_tile > 0 && vae_tiles_apply(side, job.vae_encoder_tile, t.encoder_pad);
  const bool dec = job.vae_decoder_tile > 0 && vae_tiles_apply(side / 8, job.vae_decoder_tile, t.decoder_pad);
  if (!enc && !dec) return nullptr;
  return {{"encoder", enc ? json(job.vae_encoder_tile) : json(nullptr)},
          {"decoder", dec ? json(job.vae_decoder_tile) : json(nullptr)}};
}

json settings_of(const DreamClearJob& job, const std::string& model_files, const std::string& key,
                 const std::string& input_hash, const std::string& caption_hash, const json& vae_tile) {
  json j = {{"key", key},           {"input", input_hash},       {"model_files", model_files},
          {"caption", caption_hash}, {"steps", job.steps},       {"cfg_scale", job.cfg_scale},
          {"upscale", job.upscale}, {"min_size", job.min_size},  {"tile", job.tile},
          {"tile_overlap", job.tile_overlap}, {"color_fix", job.color_fix}, {"lre_start", job.lre_start},
          {"seed", job.seed}, {"dtype", job.dtype}};
  // Only where tiles run, so the settings of untiled items (and of runs
  // before the flag existed) still match.
  if (!vae_tile.is_null()) j["vae_tile"] = vae_tile;
  return j;
}


json record_of(const DreamClearJob& job, const std::string& key, const std::string& input, const std::string& output,
               const Image& lq, const std::string& caption) {
  const DreamClearSizes s = dreamclear_sizes(lq.width, lq.height, job.upscale, job.min_size);
  return {{"tool", kProg},
          {"key", key},
          {"input", input},
          {"output", output},
          {"model", job.model},
          {"caption", job.null_caption ? json(nullptr) : json(caption)},  // a caption file may be named "null"
          {"steps", job.steps},
          {"cfg_scale", job.cfg_scale},
          {"lre_start", job.lre_start},
          {"seed", job.seed},
          {"input_size", {lq.width, lq.height}},
          {"work_size", {s.work_w, s.work_h}},
          {"output_size", {s.out_w, s.out_h}},
          {"vae_tile", vae_tile_record(job, lq.width, lq.height)},
          {"dtype", job.dtype}};
}

void set_threads(const DreamClearJob& job, int jobs) {
  nn::set_item_threads(job.threads, jobs);
}

// Before the model loads: a start past the model's diffusion is a usage error of the whole run.
void check_lre(const DreamClearJob& job) {
  if (job.lre_start < 0) return;
  const DreamClearFolderConfig c = read_dreamclear_config(job.model);
  if (job.lre_start >= c.train_steps)
    throw_usage("--lre-start " + std::to_string(job.lre_start) + ": the model's diffusion has steps 0.." +
                std::to_string(c.train_steps - 1));
}

Image restore_one(const DreamClearModel& m, const DreamClearJob& job, const Image& lq, const DreamClearCaption& c,
                  const std::string& key) {
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(job.seed, key, "dreamclear-noise"));
  return m.restore(lq, c, run_of(job), gen);
}

int run_single(const DreamClearJob& job) {
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  if (job.output.empty()) throw_usage("no output: pass -o FILE or -o - (one image), or -O DIR (batch)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one image (-o FILE)");
  check_colour_image_output(job.output);
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}});
  RunFiles files(job.model, {}, {job.caption, job.manifest});
  files.add_input(in);
  files.check_output_file(job.output, "-o");
  const batch::OneOutputHold held({job.output});
  const std::string key = in == "-" ? "stdin" : path_stem(in);
  const std::vector<uint8_t> bytes = read_image_bytes(in);
  const Image lq = to_rgb8(decode_image(bytes, name), name);  // bad images fail before the model is loaded
  check_size(lq, job, name);
  if (!job.null_caption && !file_exists(caption_path(job, key)))
    throw_bad_input(caption_path(job, key), missing_caption(job, key));
  check_lre(job);
  const DreamClearModel m(model_options(job));
  set_threads(job, 1);
  const ItemCaption c = load_caption(job, m, key);
  const Image out = for_input(name, [&] { return restore_one(m, job, lq, c.caption, key); });
  const std::string settings = batch::provenance_text(
      kProg, settings_of(job, batch::files_fingerprint({job.model}), key, batch::bytes_hash(bytes), c.hash,
                         vae_tile_record(job, lq.width, lq.height)));
  write_image_with_settings(job.output, out, settings);
  if (job.json)
    batch::write_report("-", json_text(record_of(job, key, in, job.output, lq, caption_path(job, key))) + "\n");
  return 0;
}

int run_batch(const DreamClearJob& job) {
  if (job.output_dir.empty()) throw_usage("batch mode (several inputs, a directory or --manifest) needs -O DIR");
  if (!job.output.empty()) throw_usage("-o names the one output of a single image; in batch mode use -O DIR");
  batch::InputSpec spec;
  spec.roles = {{"image", {"image", "lq", "path"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.skip_dirs = {job.output_dir};
  spec.allow_stdin = false;
  spec.name_room = 4;  // <key>.png
  std::vector<batch::Item> all = batch::collect_items(spec);
  auto [mine, mine_input] = batch::shard_items(all, job.shard);
  RunFiles files(job.model, {}, {job.caption, job.manifest});
  for (const std::string& in : job.inputs) files.add_input(in);
  for (const batch::Item& it : all)
    if (!it.paths.empty() && !it.paths[0].empty()) files.add_input(it.paths[0]);
  auto out_of = [&](const std::string& k) { return path_join(job.output_dir, k) + ".png"; };
  files.check_output_dir(job.output_dir, "-O", false);
  for (batch::Item& it : mine)
    if (it.error.empty()) files.check_item_outputs(it, {{out_of(it.key), "-O"}});
  const auto locks = batch::lock_output_dirs({job.output_dir}, job.shard, kProg);
  check_lre(job);
  const DreamClearModel m(model_options(job));
  const std::string model_fp = batch::files_fingerprint({job.model});
  batch::ResumeTally resumed;
  const int workers = group_workers(std::max(1, job.jobs), mine.size(), 1);
  set_threads(job, workers);
  batch::OrderedLines lines(job.json ? "-" : "");
  batch::Reporter reporter(kProg);
  struct Input {
    const Image* lq = nullptr;
    const std::string* key = nullptr;
    const DreamClearCaption* caption = nullptr;
  };
  struct Done {
    Image image;
  };
  struct Ready {
    bool skipped = false;
    Image lq;
    std::string key, provenance;
    ItemCaption caption;
    Input input;
  };
  auto prepare_item = [&](size_t i, Ready& rd) {
    const batch::Item& it = mine[i];
    const std::vector<uint8_t> bytes = read_image_bytes(it.paths[0]);
    rd.caption = load_caption(job, m, it.key);
    // The header's size decides whether VAE tiles run, before any decoding (--resume decodes nothing it keeps).
    const auto [hw, hh] = image_header_size(bytes.data(), bytes.size());
    const json settings =
        settings_of(job, model_fp, it.key, batch::bytes_hash(bytes), rd.caption.hash, vae_tile_record(job, hw, hh));
    if (job.resume && batch::resume_skips(out_of(it.key), {}, settings, it.key, i, resumed, lines)) {
      rd.skipped = true;
      return;
    }
    rd.provenance = batch::provenance_text(kProg, settings);
    rd.lq = to_rgb8(decode_image(bytes, it.paths[0]), it.paths[0]);
    check_size(rd.lq, job, it.paths[0]);
    rd.key = it.key;
    rd.input = Input{&rd.lq, &rd.key, &rd.caption.caption};
  };
  auto write_item = [&](size_t i, const Ready& rd, Done& d) {
    const batch::Item& it = mine[i];
    write_image_with_settings(out_of(it.key), d.image, rd.provenance);
    if (lines.enabled())
      lines.put(i, json_text(record_of(job, it.key, it.paths[0], out_of(it.key), rd.lq, caption_path(job, it.key))) + "\n");
  };
  const batch::Tally tally = run_model_items<Ready, Input, Done>(
      mine, 1, workers, job.quiet, reporter, m.device, overlaps_device(m.device, false), prepare_item,
      [&](const std::vector<Input>& inputs, std::vector<std::exception_ptr>& failed) {
        std::vector<Done> out(inputs.size());
        failed.assign(inputs.size(), nullptr);
        for (size_t k = 0; k < inputs.size(); ++k) {
          try {
            out[k].image = restore_one(m, job, *inputs[k].lq, *inputs[k].caption, *inputs[k].key);
          } catch (...) {
            failed[k] = std::current_exception();
          }
        }
        return out;
      },
      write_item,
      [&](size_t i, const std::string& msg) {
        if (lines.enabled()) lines.put(i, json_text(json({{"key", mine[i].key}, {"error", msg}})) + "\n");
      });
  lines.finish();
  if (!job.quiet) resumed.report(kProg, "output(s)");
  const size_t skipped = resumed.kept_count();
  batch::print_batch_summary(kProg, "restored", tally, skipped, job.shard, mine.size(), all.size(), job.quiet);
  return tally.exit_code();
}

}  // namespace

int run_dreamclear_tool(const DreamClearJob& job) {
  if (job.inputs.empty() && job.manifest.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  if (job.model.empty()) throw_usage("no model: pass -m DIR (a dreamclear.json folder; scripts/convert_dreamclear.py makes one)");
  check_job(job);
  if (job.caption == "-") throw_usage("--caption - : captions are read from files (FILE.npz or DIR/<key>.npz)");
  batch::claim_stdin(job.inputs, {{"--manifest -", job.manifest == "-"}});
  std::error_code ec;
  const bool single = job.output_dir.empty() && job.manifest.empty() && job.inputs.size() == 1 &&
                      (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec));
  try {
    return single ? run_single(job) : run_batch(job);
  } catch (const c10::Error& e) {
    throw_runtime(describe_allocation_failure(e.what_without_backtrace()));
  }
}

}  // namespace rass::model
