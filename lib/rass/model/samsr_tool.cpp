#include "rass/model/samsr_tool.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

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
#include "rass/core/json_file.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/png_text.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/samsr_model.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/threads.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr char kSamsrProg[] = "rass-samsr";

// Larger inputs are refused before any work: the output is 16x the pixels,
// and tiles are averaged in a float32 image of it (16 Mpx in: 256 Mpx out, 4 GB).
constexpr int64_t kMaxSamsrPixels = int64_t(1) << 24;

int samsr_stride(const SamsrJob& job) {
  if (job.chop_size == 0) {
    if (job.chop_stride > 0) throw_usage("--chop-stride needs tiles: --chop-size 0 restores the image whole");
    return 0;
  }
  const int s = job.chop_stride > 0 ? job.chop_stride : std::max(1, job.chop_size * 7 / 8);
  if (s > job.chop_size)
    throw_usage("--chop-stride " + std::to_string(s) + " is larger than --chop-size " + std::to_string(job.chop_size) +
                ": the tiles would leave gaps");
  return s;
}

SamsrModelOptions samsr_model_options(const SamsrJob& job) {
  SamsrModelOptions o;
  o.dir = job.model;
  o.sam_dir = job.sam;
  o.device = job.device;
  o.dtype = job.dtype;
  o.noise = job.noise;
  o.steps = job.steps;
  return o;
}

// What --resume compares and the PNG records: every setting that decides the output.
json samsr_settings(const SamsrJob& job, const SamsrModel& m, int stride, const std::string& model_files,
                    const std::string& key, const std::string& input_hash) {
  return {{"key", key},
          {"input", input_hash},
          {"model_files", model_files},
          {"method", m.config.method},
          {"noise", m.sam_noise ? "sam" : "gaussian"},
          {"steps", m.steps},
          {"seed", job.seed},
          {"chop_size", job.chop_size},
          {"chop_stride", stride},
          {"dtype", job.dtype}};
}

json samsr_record(const SamsrJob& job, const SamsrModel& m, const std::string& key, const std::string& input,
                  const std::string& output, const Image& lq, const SamsrExtras& ex) {
  json r = {{"tool", kSamsrProg},
            {"key", key},
            {"input", input},
            {"output", output},
            {"model", job.model},
            {"method", m.config.method},
            {"noise", m.sam_noise ? "sam" : "gaussian"},
            {"steps", m.steps},
            {"seed", job.seed},
            {"input_size", {lq.width, lq.height}},
            {"output_size", {lq.width * m.config.sf, lq.height * m.config.sf}},
            {"dtype", job.dtype}};
  if (m.sam_noise) r["sam_masks"] = ex.masks;
  return r;
}

void samsr_check_size(const Image& lq, const std::string& name) {
  if (int64_t(lq.width) * lq.height > kMaxSamsrPixels)
    throw_bad_input(name, std::to_string(lq.width) + "x" + std::to_string(lq.height) +
                              " is too large for x4 (at most 16 Mpx in: the output has 16 times the pixels)");
}

// Tiles smaller than the network's multiple would each be padded to it:
// the work of a larger tile for a smaller piece.
void samsr_check_chop(const SamsrJob& job, const SamsrModel& m) {
  if (job.chop_size > 0 && job.chop_size < m.size_multiple())
    throw_usage("--chop-size " + std::to_string(job.chop_size) + " is below the network's size multiple " +
                std::to_string(m.size_multiple()) + ": every tile would be padded to " +
                std::to_string(m.size_multiple()) + " (use at least that, or 0 for the whole image)");
}

void set_samsr_threads(const SamsrJob& job, int jobs) {
  nn::set_item_threads(job.threads, jobs);
}

int run_samsr_single(const SamsrJob& job) {
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  if (job.output.empty()) throw_usage("no output: pass -o FILE or -o - (one image), or -O DIR (batch)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one image (-o FILE)");
  check_colour_image_output(job.output);
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}});
  const int stride = samsr_stride(job);
  RunFiles files(job.model, {}, {job.sam, job.manifest});
  files.add_input(in);
  files.check_output_file(job.output, "-o");
  const batch::OneOutputHold held({job.output});
  const std::string key = in == "-" ? "stdin" : path_stem(in);
  const std::vector<uint8_t> bytes = read_image_bytes(in);
  const Image lq = to_rgb8(decode_image(bytes, name), name);  // bad images fail before the model is loaded
  samsr_check_size(lq, name);
  const SamsrModel m(samsr_model_options(job));
  samsr_check_chop(job, m);
  set_samsr_threads(job, 1);
  SamsrExtras ex;
  const Image out = for_input(name, [&] { return m.restore(lq, job.seed, key, job.chop_size, stride, &ex); });
  const std::string settings = batch::provenance_text(
      kSamsrProg, samsr_settings(job, m, stride, batch::files_fingerprint({job.model, job.sam}), key, batch::bytes_hash(bytes)));
  write_image_with_settings(job.output, out, settings);
  if (job.json) batch::write_report("-", json_text(samsr_record(job, m, key, in, job.output, lq, ex)) + "\n");
  return 0;
}

int run_samsr_batch(const SamsrJob& job) {
  if (job.output_dir.empty()) throw_usage("batch mode (several inputs, a directory or --manifest) needs -O DIR");
  if (!job.output.empty()) throw_usage("-o names the one output of a single image; in batch mode use -O DIR");
  const int stride = samsr_stride(job);
  batch::InputSpec spec;
  spec.roles = {{"image", {"image", "lq", "path"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.skip_dirs = {job.output_dir};
  spec.allow_stdin = false;
  spec.name_room = 4;  // <key>.png
  std::vector<batch::Item> all = batch::collect_items(spec);
  auto [mine, mine_input] = batch::shard_items(all, job.shard);
  RunFiles files(job.model, {}, {job.sam, job.manifest});
  for (const std::string& in : job.inputs) files.add_input(in);
  for (const batch::Item& it : all)
    if (!it.paths.empty() && !it.paths[0].empty()) files.add_input(it.paths[0]);
  auto out_of = [&](const std::string& k) { return path_join(job.output_dir, k) + ".png"; };
  files.check_output_dir(job.output_dir, "-O", false);
  for (batch::Item& it : mine)
    if (it.error.empty()) files.check_item_outputs(it, {{out_of(it.key), "-O"}});
  const auto locks = batch::lock_output_dirs({job.output_dir}, job.shard, kSamsrProg);
  const SamsrModel m(samsr_model_options(job));
  samsr_check_chop(job, m);
  const std::string model_fp = batch::files_fingerprint({job.model, job.sam});
  batch::ResumeTally resumed;
  const int workers = group_workers(std::max(1, job.jobs), mine.size(), 1);
  set_samsr_threads(job, workers);
  batch::OrderedLines lines(job.json ? "-" : "");
  batch::Reporter reporter(kSamsrProg);
  struct Input {
    const Image* lq = nullptr;
    const std::string* key = nullptr;
  };
  struct Done {
    Image image;
    SamsrExtras extras;
  };
  struct Ready {
    bool skipped = false;
    Image lq;
    std::string key, provenance;
    Input input;
  };
  auto prepare_item = [&](size_t i, Ready& rd) {
    const batch::Item& it = mine[i];
    const std::vector<uint8_t> bytes = read_image_bytes(it.paths[0]);
    const json settings = samsr_settings(job, m, stride, model_fp, it.key, batch::bytes_hash(bytes));
    if (job.resume && batch::resume_skips(out_of(it.key), {}, settings, it.key, i, resumed, lines)) {
      rd.skipped = true;
      return;
    }
    rd.provenance = batch::provenance_text(kSamsrProg, settings);
    rd.lq = to_rgb8(decode_image(bytes, it.paths[0]), it.paths[0]);
    samsr_check_size(rd.lq, it.paths[0]);
    rd.key = it.key;
    rd.input = Input{&rd.lq, &rd.key};
  };
  auto write_item = [&](size_t i, const Ready& rd, Done& d) {
    const batch::Item& it = mine[i];
    write_image_with_settings(out_of(it.key), d.image, rd.provenance);
    if (lines.enabled())
      lines.put(i, json_text(samsr_record(job, m, it.key, it.paths[0], out_of(it.key), rd.lq, d.extras)) + "\n");
  };
  const batch::Tally tally = run_model_items<Ready, Input, Done>(
      mine, 1, workers, job.quiet, reporter, m.device, overlaps_device(m.device, false), prepare_item,
      [&](const std::vector<Input>& inputs, std::vector<std::exception_ptr>& failed) {
        std::vector<Done> out(inputs.size());
        failed.assign(inputs.size(), nullptr);
        for (size_t k = 0; k < inputs.size(); ++k) {
          try {
            out[k].image = m.restore(*inputs[k].lq, job.seed, *inputs[k].key, job.chop_size, stride, &out[k].extras);
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
  if (!job.quiet) resumed.report(kSamsrProg, "output(s)");
  const size_t skipped = resumed.kept_count();
  batch::print_batch_summary(kSamsrProg, "restored", tally, skipped, job.shard, mine.size(), all.size(), job.quiet);
  return tally.exit_code();
}

}  // namespace

int run_samsr_tool(const SamsrJob& job) {
  if (job.inputs.empty() && job.manifest.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  if (job.model.empty()) throw_usage("no model: pass -m DIR (a samsr.json folder; scripts/convert_samsr.py makes one)");
  batch::claim_stdin(job.inputs, {{"--manifest -", job.manifest == "-"}});
  std::error_code ec;
  const bool single = job.output_dir.empty() && job.manifest.empty() && job.inputs.size() == 1 &&
                      (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec));
  try {
    return single ? run_samsr_single(job) : run_samsr_batch(job);
  } catch (const c10::Error& e) {
    throw_runtime(describe_allocation_failure(e.what_without_backtrace()));
  }
}

}  // namespace rass::model
