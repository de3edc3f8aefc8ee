#include "rass/model/restore_tool.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/batch/inputs.hpp"
#include "rass/batch/one_input.hpp"
#include "rass/batch/provenance.hpp"
#include "rass/batch/ordered_lines.hpp"
#include "rass/batch/output_lock.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/batch/summary.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/png_text.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/device.hpp"
#include "rass/model/op_trace.hpp"
#include "rass/model/restore.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/tensor_npy.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/threads.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr char kProg[] = "rass-restore";

// The resolved form and everything per-run (prompt text, tag lines).
struct Plan {
  RestoreParams params;  // without key/noise
  std::string method;
  ItemPrompts prompts;
};

void note(const RestoreJob& job, const std::string& text) {
  if (!job.quiet) std::fprintf(stderr, "%s: %s\n", kProg, printable_message(text).c_str());
}

// Tiling as asked: --tile / --no-tile, else on (OSEDiff's test script always
// tiles above its thresholds) but with --attn-out (its maps are of one pass).
bool tiling_on(const RestoreJob& job) { return job.tile ? *job.tile : job.attn_out.empty(); }

// The tilings that run, as settings and records name them: "tile" (size,
// overlap) when the latent is tiled; "vae_tile" the tile of each VAE half
// that runs tiled (null for a half that runs whole); null when none runs.
json tile_setting(const RestoreParams& p, const TilesAt& at) {
  return p.tile && at.latent ? json{{"size", p.tile_size}, {"overlap", p.tile_overlap}} : json(nullptr);
}
json vae_tile_setting(const RestoreJob& job, const RestoreParams& p, const TilesAt& at) {
  if (!p.vae_tile || !at.vae()) return nullptr;
  return {{"encoder", at.vae_encoder ? json(job.vae_encoder_tile) : json(nullptr)},
          {"decoder", at.vae_decoder ? json(job.vae_decoder_tile) : json(nullptr)}};
}
// tiles_at for an input whose header says in = (w, h), through the size rule.
TilesAt tiles_for_input(const RestoreModel& m, const RestoreParams& p, std::pair<int, int> in) {
  const auto [w, h] = processed_size(in.first, in.second, p.upscale, p.size_policy, p.process_size);
  return tiles_at(m, p, w, h);
}

// `tags`: the --tags file, read by the caller before the model (it may be stdin).
Plan make_plan(const RestoreJob& job, const RestoreModel& m, std::optional<TagLines> tags) {
  const RecordedForm& rec = m.recorded;
  Plan pl;
  RestoreParams& p = pl.params;
  const std::string from = rec.path.empty() ? "" : rec.path;
  auto overrides = [&](const char* flag, const std::string& given, const std::optional<std::string>& recorded) {
    if (recorded && *recorded != given)
      note(job, std::string(flag) + " " + given + " overrides the model's recorded " + *recorded + " (" + from + ")");
  };
  pl.method = job.method ? *job.method : rec.method ? *rec.method : "osediff";
  if (job.method) overrides("--method", *job.method, rec.method);
  // Timestep: the flag, else the method's preset when --method was given, else the record, else the preset.
  const int preset_t = pl.method == "osediff" ? 999 : 1;
  if (job.timestep) {
    p.timestep = *job.timestep;
    if (rec.timestep) overrides("--timestep", std::to_string(*job.timestep), std::to_string(*rec.timestep));
  } else {
    p.timestep = job.method || !rec.timestep ? preset_t : *rec.timestep;
  }
  // Who chose an out-of-range timestep decides the exit code: the flag is a
  // usage error; the preset not fitting the scheduler is the model's data
  // (rass.json's own value is checked when the model loads).
  const int steps = int(m.schedule.alphas_cumprod.size());
  if (p.timestep < 0 || p.timestep >= steps) {
    const std::string range = "0.." + std::to_string(steps - 1);
    if (job.timestep) throw_usage("--timestep " + std::to_string(p.timestep) + ": expected " + range);
    throw_bad_input(m.dir + "/scheduler/scheduler_config.json",
                    "num_train_timesteps " + std::to_string(steps) + ": the " + pl.method + " preset's timestep " +
                        std::to_string(p.timestep) + " is outside " + range + "; pass --timestep");
  }
  // Formula: the flag; osediff is ddpm; scr takes the record's, ddpm when none.
  std::string formula;
  if (job.formula) {
    formula = *job.formula;
    overrides("--formula", formula, rec.formula);
  } else if (job.method && *job.method == "osediff") {
    formula = "ddpm";
  } else {
    formula = rec.formula ? *rec.formula : "ddpm";
  }
  p.formula = formula == "residual" ? Formula::residual : Formula::ddpm;
  const std::string style = job.prompt_style ? *job.prompt_style : rec.prompt_style ? *rec.prompt_style : "osediff";
  if (job.prompt_style) overrides("--prompt-style", style, rec.prompt_style);
  pl.prompts.style = style == "rass" ? PromptStyle::rass : PromptStyle::osediff;
  p.color = job.color_fix == "wavelet" ? ColorFix::wavelet : job.color_fix == "none" ? ColorFix::none : ColorFix::adain;
  p.upscale = job.upscale;
  p.size_policy = job.size_policy == "pad" ? SizePolicy::pad : SizePolicy::osediff;
  p.process_size = job.process_size_given || !rec.process_size ? job.process_size : *rec.process_size;
  if (job.process_size_given && rec.process_size)
    overrides("--process-size", std::to_string(job.process_size), std::to_string(*rec.process_size));
  p.vae_mode = job.vae_mode;
  p.seed = job.seed;
  p.tile = tiling_on(job);
  p.tile_size = job.tile_size;
  p.tile_overlap = job.tile_overlap;
  p.tile_batch = job.batch;  // a tiled image's latent tiles are its batch
  p.vae_tile = p.tile;
  p.vae_tiling.encoder_tile = job.vae_encoder_tile;
  p.vae_tiling.decoder_tile = job.vae_decoder_tile;
  p.vae_tiling.offload = parse_tile_offload(job.vae_offload);
  p.attention = !job.attn_out.empty();

  pl.prompts.user_prompt = job.prompt_file.empty() ? job.prompt : read_prompt_file(job.prompt_file);
  pl.prompts.tags = std::move(tags);
  return pl;
}

json record(const RestoreJob& job, const Plan& pl, const RestoreModel& m, const RestoreResult& r, const std::string& key,
            const std::string& input, const std::string& output, const std::string& prompt) {
  const TilesAt at = tiles_at(m, pl.params, r.proc_width, r.proc_height);
  json j = {{"tool", kProg},
            {"key", key},
            {"input", input},
            {"output", output},
            {"model", job.model},
            {"method", pl.method},
            {"timestep", pl.params.timestep},
            {"formula", pl.params.formula == Formula::ddpm ? "ddpm" : "residual"},
            {"prompt", prompt},
            {"prompt_tokens", r.prompt_tokens},
            {"truncated", r.truncated},
            {"latent_sample", job.vae_mode ? "mean" : "sample"},
            {"seed", job.seed},
            {"color_fix", job.color_fix},
            {"upscale", job.upscale},
            {"size_policy", job.size_policy},
            {"input_size", {r.in_width, r.in_height}},
            {"processed_size", {r.proc_width, r.proc_height}},
            {"output_size", {r.image.width, r.image.height}},
            // The tilings that ran (none for an image under the thresholds).
            {"tile", tile_setting(pl.params, at)},
            {"vae_tile", vae_tile_setting(job, pl.params, at)},
            {"dtype", job.dtype}};
  if (pl.params.attention) {
    // The --attn-out maps are the 77 token positions in order; their strings:
    json tokens = json::array();
    for (int id : r.ids) tokens.push_back(m.tokenizer->decode({id}));
    j["tokens"] = tokens;
  }
  return j;
}

// What --resume compares (batch/provenance.hpp), and what the output PNG
// records: every setting that decides an item's pixels. The model's files
// stand for the model (not its path as spelt); the input's bytes for the
// input; the speed switches (device, threads, --batch, -j), which move
// pixels only within rounding, are left out. "outputs": the side outputs
// written with the image.
json item_settings(const RestoreJob& job, const Plan& pl, const std::string& model_files, const std::string& key,
                   const std::string& input_hash, const std::string& prompt, bool latent, bool attention,
                   TilesAt at) {
  const RestoreParams& p = pl.params;
  json outputs = json::object();
  if (latent) outputs["latent"] = true;
  if (attention) outputs["attention"] = true;
  json scales = json::array();
  for (const LoraSpec& l : job.loras) scales.push_back(l.scale);
  return {{"key", key},
          {"input", input_hash.empty() ? json(nullptr) : json(input_hash)},
          {"model_files", model_files},
          {"lora_scales", scales},
          // Only what can move pixels: without a LoRA --no-merge changes
          // nothing, and under "pad" --process-size is not read.
          {"lora_merged", job.loras.empty() ? json(batch::kNotApplicable) : json(!job.no_merge)},
          {"method", pl.method},
          {"timestep", p.timestep},
          {"formula", p.formula == Formula::ddpm ? "ddpm" : "residual"},
          {"prompt", batch::text_or_hash(prompt)},
          {"latent_sample", p.vae_mode ? "mean" : "sample"},
          {"seed", p.vae_mode ? json(batch::kNotApplicable) : json(p.seed)},  // draws nothing with the mean
          {"color_fix", job.color_fix},
          {"upscale", p.upscale},
          {"size_policy", job.size_policy},
          {"process_size", p.size_policy == SizePolicy::osediff ? json(p.process_size) : json(batch::kNotApplicable)},
          // The tilings that run: null under the thresholds, where the tiled
          // path is one whole pass (so an untiled output matches).
          {"tile", tile_setting(p, at)},
          {"vae_tile", vae_tile_setting(job, p, at)},
          {"dtype", job.dtype},
          {"outputs", outputs}};
}

// The model folder and LoRA files (with the adapter_config.json beside
// each, whose lora_alpha the loader reads), fingerprinted once per run.
std::string model_files(const RestoreJob& job) {
  std::vector<std::string> paths{job.model};
  for (const LoraSpec& l : job.loras) {
    paths.push_back(l.path);
    paths.push_back((fs::path(l.path).parent_path() / "adapter_config.json").string());
  }
  return batch::files_fingerprint(paths);
}

void warn_truncated(const RestoreJob& job, const RestoreModel& m, const RestoreResult& r, const std::string& name) {
  if (r.truncated) note(job, prompt_cut_warning(name, r.prompt_tokens, m.max_tokens));
}

// Writes the outputs of one item: image last, so an existing image means the
// item is complete (what --resume checks); a failure removes what was written.
// A PNG carries `provenance` (the item's settings) in its "rass" text chunk.
void write_outputs(const RestoreResult& r, const std::string& image, const std::string& latent, const std::string& attn,
                   const std::string& provenance) {
  std::vector<std::string> written;
  try {
    if (!latent.empty()) {
      write_npy_tensor(latent, r.latent);
      if (removable_output(latent)) written.push_back(latent);
    }
    if (!attn.empty()) {
      write_npy_tensor(attn, r.attention);
      if (removable_output(attn)) written.push_back(attn);
    }
    ImageFormat fmt = output_image_format(image);
    if (fmt == ImageFormat::unknown) fmt = ImageFormat::png;
    if (fmt == ImageFormat::png) write_file_atomic(image, png_add_text(encode_image(r.image, fmt), {{"rass", provenance}}));
    else write_image(image, r.image, fmt);
  } catch (...) {
    for (const auto& f : written) std::remove(f.c_str());
    throw;
  }
}

RestoreModelOptions model_options(const RestoreJob& job) {
  RestoreModelOptions o;
  o.dir = job.model;
  o.loras = job.loras;
  o.merge = !job.no_merge;
  o.device = job.device;
  o.dtype = job.dtype;
  o.channels_last = job.channels_last;
  o.cudnn_benchmark = job.cudnn_benchmark;
  o.cuda_graphs = job.cuda_graphs;
  o.timings = job.timings;
  o.quiet = job.quiet;
  o.prog = kProg;
  return o;
}

void set_threads(const RestoreJob& job, int jobs) {
  nn::set_item_threads(job.threads, jobs);
}

// The model folder, LoRA files and other inputs of a run (run_files.hpp).
RunFiles run_files(const RestoreJob& job) {
  std::vector<std::string> loras;
  for (const LoraSpec& l : job.loras) loras.push_back(l.path);
  return RunFiles(job.model, loras, {job.tags, job.prompt_file, job.manifest});
}

int run_single(const RestoreJob& job) {
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  if (job.output.empty()) throw_usage("no output: pass -o FILE or -o - (one image), or -O DIR (batch)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one image (-o FILE)");
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}, {"--latent-out -", job.latent_out == "-"},
                       {"--attn-out -", job.attn_out == "-"}});
  check_colour_image_output(job.output);
  RunFiles files = run_files(job);
  files.add_input(in);
  files.check_output_file(job.output, "-o");
  files.check_output_file(job.latent_out, "--latent-out");
  files.check_output_file(job.attn_out, "--attn-out");
  const batch::OneOutputHold held({job.output, job.latent_out, job.attn_out});
  const std::string key = in == "-" ? "stdin" : path_stem(in);

  // Read once: its hash goes into the settings, its bytes to the decoder (a
  // second read could see another file, and stdin can be read only once).
  const std::vector<uint8_t> in_bytes = read_image_bytes(in);
  const Image lq = decode_image(in_bytes, name);  // bad images fail before the model is loaded
  to_rgb8(lq, name);
  std::optional<TagLines> tags = read_item_tags(job.tags, 1);  // before the model is loaded
  const std::string trace_path =
      OpTrace::check_env([&](const std::string& p) { files.check_output_file(p, "RASS_TRACE"); });
  const RestoreModel m(model_options(job));
  const std::unique_ptr<OpTrace> trace = OpTrace::start(trace_path, m.device);  // RASS_TRACE (op_trace.hpp)
  const Plan pl = make_plan(job, m, std::move(tags));
  const std::string prompt = pl.prompts.for_item(0, key);
  set_threads(job, 1);
  RestoreParams p = pl.params;
  p.key = key;
  const RestoreResult r = for_input(name, [&] { return restore(m, lq, prompt, p, name); });
  warn_truncated(job, m, r, name);
  const std::string settings = batch::provenance_text(
      kProg, item_settings(job, pl, model_files(job), key, batch::bytes_hash(in_bytes), prompt,
                           !job.latent_out.empty(), !job.attn_out.empty(),
                           tiles_at(m, pl.params, r.proc_width, r.proc_height)));
  m.times->time_host("write", [&] { write_outputs(r, job.output, job.latent_out, job.attn_out, settings); });
  if (job.json) batch::write_report("-", json_text(record(job, pl, m, r, key, in, job.output, prompt)) + "\n");
  if (trace) trace->save();
  if (m.times->on()) std::fputs(m.times->report(kProg, 1).c_str(), stderr);
  return 0;
}

int run_batch(const RestoreJob& job) {
  if (job.output_dir.empty()) throw_usage("batch mode (several inputs, a directory or --manifest) needs -O DIR");
  if (!job.output.empty()) throw_usage("-o names the one output of a single image; in batch mode use -O DIR");
  for (const auto& [flag, v] : {std::pair<const char*, std::string>{"--latent-out", job.latent_out}, {"--attn-out", job.attn_out}})
    if (v == "-") throw_usage(std::string(flag) + " - is for one image; in batch mode it names a directory");
  batch::InputSpec spec;
  spec.roles = {{"lq", {"lq", "image", "path"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.skip_dirs = {job.output_dir};
  spec.allow_stdin = false;
  spec.name_room = 4;  // <key>.png, <key>.npy
  std::vector<batch::Item> all = batch::collect_items(spec);
  // --tags lines go with items in input order: mine_input keeps it.
  auto [mine, mine_input] = batch::shard_items(all, job.shard);

  RunFiles files = run_files(job);
  for (const std::string& in : job.inputs) files.add_input(in);
  for (const batch::Item& it : all) files.add_input(it.paths[0]);
  files.check_output_dir(job.output_dir, "-O");
  files.check_output_dir(job.latent_out, "--latent-out");
  files.check_output_dir(job.attn_out, "--attn-out");
  auto out_of = [&](const std::string& dir, const std::string& key, const char* ext) {
    return dir.empty() ? std::string() : path_join(dir, key) + ext;
  };
  // Every item's files, before any work: an input image in the -O folder
  // (`in/a.png -O in`) or two items' outputs that coincide are refused.
  for (batch::Item& it : mine) {
    if (!it.error.empty()) continue;  // a bad item (a duplicate key: the first keeps its outputs) writes nothing
    files.check_item_outputs(it, {{out_of(job.output_dir, it.key, ".png"), "-O"},
                                  {out_of(job.latent_out, it.key, ".npy"), "--latent-out"},
                                  {out_of(job.attn_out, it.key, ".npy"), "--attn-out"}});
  }
  const auto locks = batch::lock_output_dirs({job.output_dir, job.latent_out, job.attn_out}, job.shard, kProg);

  // A positional tag file short of a line for this shard's inputs, or with a
  // line for no input, is refused before any work (a lost or stray line
  // shifts every later prompt); an item a keyed file lacks is a bad item,
  // the others go on (as rass-segment).
  std::optional<TagLines> tags = read_item_tags(job.tags, all.size(), mine, mine_input);

  const std::string trace_path =
      OpTrace::check_env([&](const std::string& p) { files.check_output_file(p, "RASS_TRACE"); });
  const RestoreModel m(model_options(job));
  const std::unique_ptr<OpTrace> trace = OpTrace::start(trace_path, m.device);  // RASS_TRACE (op_trace.hpp)
  const Plan pl = make_plan(job, m, std::move(tags));
  const std::string model_fp = model_files(job);
  batch::ResumeTally resumed;
  // Capped at the groups of work first, so the cores are split among the workers that run.
  const int workers = group_workers(std::max(1, job.jobs), mine.size(), size_t(std::max(job.batch, 1)));
  set_threads(job, workers);
  batch::OrderedLines lines(job.json ? "-" : "");
  batch::Reporter reporter(kProg);
  // An item read and ready for the model (or skipped by --resume).
  struct Ready {
    bool skipped = false;
    Image lq;
    std::string prompt, image, latent, attn, input_hash;
    RestoreInput input;
  };
  auto prepare_item = [&](size_t i, Ready& rd) {
    const batch::Item& it = mine[i];
    rd.image = out_of(job.output_dir, it.key, ".png");
    rd.latent = out_of(job.latent_out, it.key, ".npy");
    rd.attn = out_of(job.attn_out, it.key, ".npy");
    rd.prompt = pl.prompts.for_item(mine_input[i], it.key);
    // Read once: its hash goes into the settings, its bytes to the decoder.
    const std::vector<uint8_t> bytes = m.times->time_host("read", [&] { return read_image_bytes(it.paths[0]); });
    rd.input_hash = batch::bytes_hash(bytes);
    // The header's size decides whether tiles run, before any decoding (--resume decodes nothing it keeps).
    const json settings = item_settings(job, pl, model_fp, it.key, rd.input_hash, rd.prompt,
                                        !rd.latent.empty(), !rd.attn.empty(),
                                        tiles_for_input(m, pl.params, image_header_size(bytes.data(), bytes.size())));
    if (job.resume && batch::resume_skips(rd.image, {rd.latent, rd.attn}, settings, it.key, i, resumed, lines)) {
      rd.skipped = true;
      return;
    }
    rd.lq = m.times->time_host("read", [&] { return decode_image(bytes, it.paths[0]); });
    RestoreParams p = pl.params;
    p.key = it.key;
    // rd lives in the caller's vector, sized before any item is read: &rd.lq stays valid.
    rd.input = RestoreInput{&rd.lq, rd.prompt, p, it.paths[0], nullptr};
    // Sized, tokenized and made a tensor here, beside the device's work.
    rd.input.prepared = std::make_shared<PreparedRestore>(
        m.times->time_host("prepare (size, tokens)", [&] { return prepare_restore(m, rd.input); }));
  };
  auto write_item = [&](size_t i, const Ready& rd, RestoreResult& r) {
    const batch::Item& it = mine[i];
    // Host work left by restore_many (defer_image), here beside the device's next batch.
    m.times->time_host("post (8-bit, colour fix)", [&] { finish_image(r); });
    warn_truncated(job, m, r, it.paths[0]);
    // What ran, from the processed size (the header only guessed it for --resume).
    const std::string provenance = batch::provenance_text(
        kProg, item_settings(job, pl, model_fp, it.key, rd.input_hash, rd.prompt, !rd.latent.empty(), !rd.attn.empty(),
                             tiles_at(m, pl.params, r.proc_width, r.proc_height)));
    m.times->time_host("write", [&] { write_outputs(r, rd.image, rd.latent, rd.attn, provenance); });
    if (lines.enabled()) lines.put(i, json_text(record(job, pl, m, r, it.key, it.paths[0], rd.image, rd.prompt)) + "\n");
  };
  // Up to --batch consecutive items per call: same-size images share the network calls.
  const batch::Tally tally = run_model_items<Ready, RestoreInput, RestoreResult>(
      mine, job.batch, workers, job.quiet, reporter, m.device, overlaps_device(m.device, m.times->on()), prepare_item,
      [&](const std::vector<RestoreInput>& inputs, std::vector<std::exception_ptr>& failed) {
        return restore_many(m, inputs, job.batch, failed, /*defer_image=*/true);
      },
      write_item,
      [&](size_t i, const std::string& msg) {
        if (lines.enabled()) lines.put(i, json_text(json({{"key", mine[i].key}, {"error", msg}})) + "\n");
      });
  lines.finish();
  if (!job.quiet) resumed.report(kProg, "output(s)");
  const size_t skipped = resumed.kept_count();
  if (trace) trace->save();
  if (m.times->on()) std::fputs(m.times->report(kProg, tally.ok - skipped).c_str(), stderr);
  batch::print_batch_summary(kProg, "restored", tally, skipped, job.shard, mine.size(), all.size(), job.quiet);
  return tally.exit_code();
}

}  // namespace

int run_restore_tool(const RestoreJob& job) {
  if (job.inputs.empty() && job.manifest.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  if (!job.prompt.empty() && !job.prompt_file.empty()) throw_usage("--prompt and --prompt-file exclude each other");
  batch::claim_stdin(job.inputs, {{"--tags -", job.tags == "-"},
                                   {"--prompt-file -", job.prompt_file == "-"},
                                   {"--manifest -", job.manifest == "-"}});
  if (job.timestep && *job.timestep < 0) throw_usage("--timestep must be >= 0");
  if (job.tile.value_or(false) && !job.attn_out.empty())
    throw_usage("--attn-out records one UNet pass over the whole latent; it does not go with --tile");
  if (job.upscale != 1 && job.upscale != 2 && job.upscale != 4) throw_usage("--upscale must be 1, 2 or 4");
  if (job.process_size < 0) throw_usage("--process-size must be >= 0 (0: no small-image rule)");
  if (job.tile_size < 1 || job.tile_overlap < 0 || job.tile_overlap >= job.tile_size)
    throw_usage("--tile-size must be >= 1 and 0 <= --tile-overlap < --tile-size");
  check_vae_tile_sizes(job.vae_encoder_tile, job.vae_decoder_tile);
  parse_tile_offload(job.vae_offload);
  std::error_code ec;
  const bool single = job.output_dir.empty() && job.manifest.empty() && job.inputs.size() == 1 &&
                      (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec));
  try {
    return single ? run_single(job) : run_batch(job);
  } catch (const c10::Error& e) {
    throw_runtime(e.what_without_backtrace());  // LibTorch errors carry a backtrace; the user needs the first line
  }
}

}  // namespace rass::model
