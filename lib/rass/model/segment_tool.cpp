#include "rass/model/segment_tool.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
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
#include "rass/core/found_file.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/parallel.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/png_text.hpp"
#include "rass/metrics/class_names.hpp"
#include "rass/metrics/palette.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/device.hpp"
#include "rass/model/op_trace.hpp"
#include "rass/model/prompt.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/segment.hpp"
#include "rass/model/segment_model.hpp"
#include "rass/model/tensor_npy.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/threads.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr char kProg[] = "rass-segment";

struct Plan {
  SegmentParams params;
  ItemPrompts prompts;
  std::vector<std::string> names;  // class names ("" list when none known)
};

// `tags`: the --tags file, read by the caller before the model (it may be stdin).
Plan make_plan(const SegmentJob& job, const SegmentModel& m, std::optional<TagLines> tags) {
  Plan pl;
  SegmentParams& p = pl.params;
  p.whole = job.whole;
  p.resize = !job.no_resize;
  p.window = job.window;
  p.vae_mode = job.vae_mode;
  p.seed = job.seed;
  const std::string style = job.prompt_style ? *job.prompt_style : m.config.prompt_style;
  pl.prompts.style = style == "osediff" ? PromptStyle::osediff : PromptStyle::rass;
  pl.prompts.user_prompt = job.prompt_file.empty() ? job.prompt : read_prompt_file(job.prompt_file);
  pl.prompts.tags = std::move(tags);
  pl.names = m.config.classes;
  if (!job.classes.empty()) {
    pl.names = metrics::load_class_names(job.classes);
    if (int(pl.names.size()) != m.config.head.num_classes)
      throw_bad_input(job.classes, std::to_string(pl.names.size()) + " class names; the model's head predicts " +
                                       std::to_string(m.config.head.num_classes) + " classes (" + m.config.path + ")");
  }
  return pl;
}

// A --latent-in file, read once: its bytes, and their hash for the settings
// (batch/provenance.hpp). Made a tensor (latent_tensor) only for an item
// that is computed, not for one --resume keeps.
struct LatentIn {
  std::string path;
  std::vector<uint8_t> bytes;
  std::string hash;  // "" without a latent
};

// As rass-restore warns: a prompt past the text encoder's tokens is cut off.
void warn_truncated(const SegmentJob& job, const SegmentModel& m, size_t tokens, const std::string& name) {
  const std::string w = prompt_cut_warning(name, tokens, m.max_tokens);
  if (!job.quiet && !w.empty()) std::fprintf(stderr, "%s: %s\n", kProg, printable_message(w).c_str());
}

LatentIn read_latent(const std::string& path) {
  LatentIn l{path, read_npy_bytes(path), ""};
  l.hash = batch::bytes_hash(l.bytes);
  return l;
}

torch::Tensor latent_tensor(const LatentIn& l) {
  const std::string name = l.path == "-" ? "<stdin>" : l.path;
  const torch::Tensor t = npy_float_tensor(parse_npy(l.bytes.data(), l.bytes.size(), name));
  if (t.dim() != 3)
    throw_bad_input(name, "latent of shape " + shape_str(t.sizes()) +
                              ": expected [4, H/8, W/8] (rass-restore --latent-out writes one)");
  return t;
}

// Class indices as an 8-bit (<= 256 classes) or 16-bit single-channel image.
Image label_image(const torch::Tensor& labels, int classes) {
  const int h = int(labels.size(0)), w = int(labels.size(1));
  Image img(w, h, 1, classes <= 256 ? 8 : 16);
  const int32_t* l = labels.data_ptr<int32_t>();
  const size_t n = size_t(w) * h;
  if (img.depth == 8)
    for (size_t i = 0; i < n; ++i) img.u8()[i] = uint8_t(l[i]);
  else
    for (size_t i = 0; i < n; ++i) img.u16()[i] = uint16_t(l[i]);
  return img;
}

struct Outputs {
  std::string labels, color, overlay, logits, probs;
};

// Everything but the label map first, the label map last: an existing label
// map means the item is complete (what --resume checks); a failure removes
// what was written.
// The label map PNG carries `provenance` (the item's settings) in its
// "rass" text chunk.
void write_outputs(const SegmentResult& r, const Image& rgb, const Plan& pl, int classes, const Outputs& o,
                   const std::string& provenance) {
  std::vector<std::string> written;
  auto done = [&](const std::string& f) {
    if (removable_output(f)) written.push_back(f);
  };
  try {
    const Image labels = label_image(r.labels, classes);
    const auto palette = metrics::class_palette(size_t(classes));
    if (!o.logits.empty()) write_npy_tensor(o.logits, r.scores), done(o.logits);
    if (!o.probs.empty()) write_npy_tensor(o.probs, r.probs), done(o.probs);
    if (!o.color.empty()) write_image(o.color, metrics::colorize(labels, palette), ImageFormat::png), done(o.color);
    if (!o.overlay.empty()) write_image(o.overlay, metrics::overlay(rgb, labels, palette, pl.names), ImageFormat::png), done(o.overlay);
    write_file_atomic(o.labels, png_add_text(encode_image(labels, ImageFormat::png), {{"rass", provenance}}));
  } catch (...) {
    for (const auto& f : written) std::remove(f.c_str());
    throw;
  }
}

json record(const SegmentJob& job, const SegmentModel& m, const SegmentResult& r, const std::string& key,
            const std::string& input, const std::string& output, const std::string& prompt, size_t tokens) {
  std::vector<int32_t> present;
  {
    const torch::Tensor u = std::get<0>(at::_unique(r.labels.flatten(), true));
    for (int64_t i = 0; i < u.numel(); ++i) present.push_back(u[i].item<int32_t>());
  }
  return {{"tool", kProg},
          {"key", key},
          {"input", input},
          {"output", output},
          {"model", job.model},
          {"backbone", job.backbone},
          {"timestep", m.config.timestep},
          {"prompt", prompt},
          {"prompt_tokens", tokens},
          {"truncated", int64_t(tokens) > m.max_tokens - 2},
          {"latent", !job.latent_in.empty() ? "given" : job.vae_mode ? "mean" : "sample"},
          {"seed", job.seed},
          {"input_size", {r.in_width, r.in_height}},
          {"processed_size", {r.proc_width, r.proc_height}},
          {"padded_size", {r.pad_width, r.pad_height}},
          {"mode", job.whole ? "whole" : "slide"},
          {"window", {r.window_w, r.window_h}},
          {"tiles", r.tiles},
          {"classes", m.config.head.num_classes},
          {"present", present},
          {"dtype", job.dtype}};
}

// What --resume compares (batch/provenance.hpp), and what the label map
// PNG records: every setting that decides an item's labels. The model's
// files stand for the model; the input's (and a given latent's) bytes for
// them; speed switches are left out. "outputs": the side outputs written
// with the label map (the overlay's text is the class names').
json item_settings(const SegmentJob& job, const Plan& pl, const std::string& model_files, const std::string& key,
                   const std::string& input_hash, const std::string& latent_hash, const std::string& prompt,
                   const Outputs& o) {
  const SegmentParams& p = pl.params;
  auto hash = [](const std::string& h) { return h.empty() ? json(nullptr) : json(h); };
  json outputs = json::object();
  if (!o.color.empty()) outputs["color"] = true;
  if (!o.overlay.empty()) {
    std::string names;
    for (const std::string& n : pl.names) names += n + "\n";
    outputs["overlay"] = batch::text_or_hash(names);
  }
  if (!o.logits.empty()) outputs["logits"] = true;
  if (!o.probs.empty()) outputs["probs"] = true;
  return {{"key", key},
          {"input", hash(input_hash)},
          {"latent_in", hash(latent_hash)},
          {"model_files", model_files},
          {"backbone", job.backbone},
          {"prompt", batch::text_or_hash(prompt)},
          // A given latent is not drawn: the sampling settings do not count.
          {"latent_sample", !latent_hash.empty() ? "given" : p.vae_mode ? "mean" : "sample"},
          {"seed", p.vae_mode || !latent_hash.empty() ? json(batch::kNotApplicable) : json(p.seed)},  // nothing drawn
          {"mode", p.whole ? "whole" : "slide"},
          {"resize", p.resize},
          {"window", p.window},
          {"dtype", job.dtype},
          {"outputs", outputs}};
}

SegmentModelOptions model_options(const SegmentJob& job) {
  SegmentModelOptions o;
  o.dir = job.model;
  o.backbone = job.backbone;
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

void set_threads(const SegmentJob& job, int jobs) {
  nn::set_item_threads(job.threads, jobs);
}

// The model folder and other inputs of a run (run_files.hpp).
RunFiles run_files(const SegmentJob& job) {
  return RunFiles(job.model, {}, {job.tags, job.prompt_file, job.manifest, job.classes, job.latent_in});
}

int run_single(const SegmentJob& job) {
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  if (job.output.empty()) throw_usage("no output: pass -o FILE or -o - (one image), or -O DIR (batch)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one image (-o FILE)");
  // The label map, colours and overlay are written as PNG: a .jpg or .ppm
  // name got PNG bytes (a label map must not be lossy anyway).
  for (const auto& [flag, v] : std::vector<std::pair<const char*, std::string>>{
           {"-o", job.output}, {"--color", job.color}, {"--overlay", job.overlay}})
    if (v != "-" && format_from_extension(v) != ImageFormat::unknown && format_from_extension(v) != ImageFormat::png)
      throw_usage(std::string(flag) + " " + v + ": rass-segment writes PNG (label maps are lossless); name it .png");
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}, {"--color -", job.color == "-"},
                       {"--overlay -", job.overlay == "-"}, {"--logits-out -", job.logits_out == "-"},
                       {"--probs-out -", job.probs_out == "-"}});
  RunFiles files = run_files(job);
  files.add_input(in);
  files.check_output_file(job.output, "-o");
  files.check_output_file(job.color, "--color");
  files.check_output_file(job.overlay, "--overlay");
  files.check_output_file(job.logits_out, "--logits-out");
  files.check_output_file(job.probs_out, "--probs-out");
  const batch::OneOutputHold held({job.output, job.color, job.overlay, job.logits_out, job.probs_out});
  const std::string key = in == "-" ? "stdin" : path_stem(in);
  // Read once: the hashes in the settings are of the bytes decoded (a second
  // read could see another file, and stdin can be read only once).
  const std::vector<uint8_t> in_bytes = read_image_bytes(in);
  const Image rgb = to_rgb8(decode_image(in_bytes, name), name);  // bad images fail before the model is loaded
  LatentIn latent;
  torch::Tensor latent_t;
  if (!job.latent_in.empty()) {
    latent = read_latent(job.latent_in);
    latent_t = latent_tensor(latent);  // a bad latent fails before the model is loaded
  }
  std::optional<TagLines> tags = read_item_tags(job.tags, 1);  // before the model is loaded
  const std::string trace_path =
      OpTrace::check_env([&](const std::string& p) { files.check_output_file(p, "RASS_TRACE"); });
  const SegmentModel m(model_options(job));
  const std::unique_ptr<OpTrace> trace = OpTrace::start(trace_path, m.device);  // RASS_TRACE (op_trace.hpp)
  const Plan pl = make_plan(job, m, std::move(tags));
  set_threads(job, 1);
  const std::string prompt = pl.prompts.for_item(0, key);
  size_t tokens = 0;
  const torch::Tensor context = m.times->time("text encoder", [&] { return m.encode_prompt(prompt, nullptr, &tokens); });
  warn_truncated(job, m, tokens, name);
  SegmentParams p = pl.params;
  p.key = key;
  p.latent = latent_t;
  p.latent_name = job.latent_in;
  p.keep_scores = !job.logits_out.empty();
  p.keep_probs = !job.probs_out.empty();
  const SegmentResult r = for_input(name, [&] { return segment(m, rgb, context, p, name, job.batch); });
  m.times->time_host("write", [&] {
    const Outputs o{job.output, job.color, job.overlay, job.logits_out, job.probs_out};
    const std::string settings = batch::provenance_text(
        kProg, item_settings(job, pl, batch::files_fingerprint({job.model}), key, batch::bytes_hash(in_bytes),
                             latent.hash, prompt, o));
    write_outputs(r, rgb, pl, m.config.head.num_classes, o, settings);
  });
  if (job.json) batch::write_report("-", json_text(record(job, m, r, key, in, job.output, prompt, tokens)) + "\n");
  if (trace) trace->save();
  if (m.times->on()) std::fputs(m.times->report(kProg, 1).c_str(), stderr);
  return 0;
}

int run_batch(const SegmentJob& job) {
  if (job.output_dir.empty()) throw_usage("batch mode (several inputs, a directory or --manifest) needs -O DIR");
  if (!job.output.empty()) throw_usage("-o names the one output of a single image; in batch mode use -O DIR");
  for (const auto& [flag, v] : std::vector<std::pair<const char*, std::string>>{
           {"--color", job.color}, {"--overlay", job.overlay}, {"--logits-out", job.logits_out},
           {"--probs-out", job.probs_out}, {"--latent-in", job.latent_in}})
    if (v == "-") throw_usage(std::string(flag) + " - is for one image; in batch mode it names a directory");
  batch::InputSpec spec;
  spec.roles = {{"lq", {"lq", "image", "path"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.skip_dirs = {job.output_dir};
  spec.allow_stdin = false;
  spec.name_room = 4;  // <key>.png, <key>.npy
  std::vector<batch::Item> all = batch::collect_items(spec);
  auto [mine, mine_input] = batch::shard_items(all, job.shard);
  RunFiles files = run_files(job);
  for (const std::string& in : job.inputs) files.add_input(in);
  for (const batch::Item& it : all)
    if (!it.paths.empty() && !it.paths[0].empty()) files.add_input(it.paths[0]);
  for (const auto& [d, what] : std::vector<std::pair<std::string, std::string>>{
           {job.output_dir, "-O"}, {job.color, "--color"}, {job.overlay, "--overlay"},
           {job.logits_out, "--logits-out"}, {job.probs_out, "--probs-out"}})
    files.check_output_dir(d, what, false);
  auto out_of = [&](const std::string& dir, const std::string& key, const char* ext) {
    return dir.empty() ? std::string() : path_join(dir, key) + ext;
  };
  auto outputs_of = [&](const std::string& key) {
    return Outputs{out_of(job.output_dir, key, ".png"), out_of(job.color, key, ".png"), out_of(job.overlay, key, ".png"),
                   out_of(job.logits_out, key, ".npy"), out_of(job.probs_out, key, ".npy")};
  };
  for (batch::Item& it : mine) {
    if (!it.error.empty()) continue;  // a bad item (a duplicate key: the first keeps its outputs) writes nothing
    const Outputs o = outputs_of(it.key);
    files.check_item_outputs(it, {{o.labels, "-O"},
                                  {o.color, "--color"},
                                  {o.overlay, "--overlay"},
                                  {o.logits, "--logits-out"},
                                  {o.probs, "--probs-out"}});
  }
  const auto locks = batch::lock_output_dirs({job.output_dir, job.color, job.overlay, job.logits_out, job.probs_out},
                                             job.shard, kProg);

  // A positional tag file short of a line for this shard's inputs, or with a
  // line for no input, is refused before any work (a lost or stray line
  // shifts every later prompt); an item a keyed file lacks is a bad item,
  // the others go on (as rass-restore).
  std::optional<TagLines> tags = read_item_tags(job.tags, all.size(), mine, mine_input);

  const std::string trace_path =
      OpTrace::check_env([&](const std::string& p) { files.check_output_file(p, "RASS_TRACE"); });
  const SegmentModel m(model_options(job));
  const std::unique_ptr<OpTrace> trace = OpTrace::start(trace_path, m.device);  // RASS_TRACE (op_trace.hpp)
  const Plan pl = make_plan(job, m, std::move(tags));
  const std::string model_fp = batch::files_fingerprint({job.model});
  batch::ResumeTally resumed;
  // Capped at the groups of work first, so the cores are split among the workers that run.
  const int workers = group_workers(std::max(1, job.jobs), mine.size(), size_t(std::max(job.batch, 1)));
  set_threads(job, workers);
  batch::OrderedLines lines(job.json ? "-" : "");
  batch::Reporter reporter(kProg);
  // An item read and ready for the model (or skipped by --resume).
  struct Ready {
    bool skipped = false;
    Image rgb;
    SegmentInput input;
    std::string prompt, provenance;
    size_t tokens = 0;
  };
  auto prepare_item = [&](size_t i, Ready& rd) {
    const batch::Item& it = mine[i];
    const Outputs o = outputs_of(it.key);
    rd.prompt = pl.prompts.for_item(mine_input[i], it.key);
    const std::string latent_name = job.latent_in.empty() ? "" : path_join(job.latent_in, it.key) + ".npy";
    // Read once: its hash goes into the settings, its bytes to the decoder.
    const std::vector<uint8_t> bytes = m.times->time_host("read", [&] { return read_image_bytes(it.paths[0]); });
    LatentIn latent;
    if (!latent_name.empty()) {
      require_found_file(latent_name, "a latent .npy of --latent-in DIR");  // a FIFO blocked the batch
      latent = read_latent(latent_name);
    }
    const json settings = item_settings(job, pl, model_fp, it.key, batch::bytes_hash(bytes), latent.hash, rd.prompt, o);
    if (job.resume && batch::resume_skips(o.labels, {o.color, o.overlay, o.logits, o.probs}, settings, it.key, i, resumed, lines)) {
      rd.skipped = true;
      return;
    }
    rd.provenance = batch::provenance_text(kProg, settings);
    rd.rgb = m.times->time_host("read", [&] { return to_rgb8(decode_image(bytes, it.paths[0]), it.paths[0]); });
    SegmentParams p = pl.params;
    p.key = it.key;
    if (!latent_name.empty()) {
      p.latent_name = latent_name;
      p.latent = latent_tensor(latent);
    }
    p.keep_scores = !o.logits.empty();
    p.keep_probs = !o.probs.empty();
    // rd lives in the caller's vector, sized before any item is read: &rd.rgb stays valid.
    rd.input = SegmentInput{
        &rd.rgb, m.times->time("text encoder", [&] { return m.encode_prompt(rd.prompt, nullptr, &rd.tokens); }), p,
        it.paths[0]};
    warn_truncated(job, m, rd.tokens, it.paths[0]);
  };
  auto write_item = [&](size_t i, const Ready& rd, const SegmentResult& r) {
    const batch::Item& it = mine[i];
    const Outputs o = outputs_of(it.key);
    m.times->time_host("write", [&] { write_outputs(r, rd.rgb, pl, m.config.head.num_classes, o, rd.provenance); });
    if (lines.enabled()) lines.put(i, json_text(record(job, m, r, it.key, it.paths[0], o.labels, rd.prompt, rd.tokens)) + "\n");
  };
  // Up to --batch consecutive items per call: their windows share backbone calls.
  const batch::Tally tally = run_model_items<Ready, SegmentInput, SegmentResult>(
      mine, job.batch, workers, job.quiet, reporter, m.device, overlaps_device(m.device, m.times->on()), prepare_item,
      [&](const std::vector<SegmentInput>& inputs, std::vector<std::exception_ptr>& failed) {
        return segment_many(m, inputs, job.batch, failed);
      },
      write_item,
      [&](size_t i, const std::string& msg) {
        if (lines.enabled()) lines.put(i, json_text(json({{"key", mine[i].key}, {"error", msg}})) + "\n");
      });
  lines.finish();
  if (!job.quiet) resumed.report(kProg, "label map(s)");
  const size_t skipped = resumed.kept_count();
  if (trace) trace->save();
  if (m.times->on()) std::fputs(m.times->report(kProg, tally.ok - skipped).c_str(), stderr);
  batch::print_batch_summary(kProg, "segmented", tally, skipped, job.shard, mine.size(), all.size(), job.quiet);
  return tally.exit_code();
}

}  // namespace

int run_segment_tool(const SegmentJob& job) {
  if (job.inputs.empty() && job.manifest.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  if (!job.prompt.empty() && !job.prompt_file.empty()) throw_usage("--prompt and --prompt-file exclude each other");
  if (job.backbone != "ras" && job.backbone != "plain") throw_usage("--backbone " + job.backbone + ": expected ras or plain");
  if (job.window < 0) throw_usage("--window must be >= 0 (0: the padded image's short side)");
  if (job.whole && job.window > 0) throw_usage("--whole runs one pass over the image; it does not go with --window");
  batch::claim_stdin(job.inputs, {{"--tags -", job.tags == "-"},
                                   {"--prompt-file -", job.prompt_file == "-"},
                                   {"--manifest -", job.manifest == "-"},
                                   {"--latent-in -", job.latent_in == "-"},
                                   {"--classes -", job.classes == "-"}});
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
