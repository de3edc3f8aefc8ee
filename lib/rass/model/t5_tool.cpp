#include "rass/model/t5_tool.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>

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
#include "rass/io/npy.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/t5_model.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/threads.hpp"
#include "rass/text/pixart_caption.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr char kProg[] = "rass-t5";
// A caption file is read up to this many bytes (its first line is the
// caption); a caption's line is at most kMaxCaptionBytes. T5 reads 120
// tokens (some 600 characters of English); the cleaning's regular
// expressions recurse once per character, so a line of megabytes would
// exhaust the stack.
constexpr size_t kMaxCaptionFileBytes = size_t(16) << 20;
constexpr size_t kMaxCaptionBytes = 16384;
// The npz entry holding the run's settings (--resume), beside the reference's two arrays.
constexpr char kSettingsEntry[] = "rass_settings";

T5EncoderOptions encoder_options(const T5Job& job) {
  T5EncoderOptions o;
  o.dir = job.model;
  o.tokenizer = job.tokenizer;
  o.device = job.device;
  o.dtype = job.dtype;
  o.max_length = job.max_length;
  return o;
}

std::string read_caption(const std::string& path) {
  const std::string name = path == "-" ? "<stdin>" : path;
  return caption_from_file_bytes(read_text_file_bytes(path, kMaxCaptionFileBytes), name);
}

void check_caption(const std::string& caption, const std::string& name) {
  if (caption.size() > kMaxCaptionBytes)
    throw_bad_input(name, "the caption is " + std::to_string(caption.size()) + " bytes; at most " +
                              std::to_string(kMaxCaptionBytes) + " (T5 reads the first " +
                              "--max-length tokens of it)");
}

json settings_of(const T5Job& job, const std::string& model_files, const std::string& key, const std::string& caption) {
  return {{"key", key},           {"caption", batch::text_or_hash(caption)}, {"model_files", model_files},
          {"clean", job.clean},   {"max_length", job.max_length},           {"dtype", job.dtype}};
}

json record_of(const std::string& key, const std::string& input, const std::string& output, const T5Features& f) {
  return {{"tool", kProg},
          {"key", key},
          {"input", input},
          {"output", output},
          {"text", f.text},
          {"tokens", f.tokens.pieces},
          {"kept", std::min<size_t>(f.tokens.pieces, f.tokens.ids.size() - 1)},
          {"truncated", f.tokens.truncated}};
}

// The arrays of extract_t5_features.py (caption_feature [1, L, C] float32,
// attention_mask [1, L] int64) and the settings.
std::vector<uint8_t> npz_of(const T5Features& f, const std::string& provenance) {
  NpyArray feat, mask, settings;
  feat.dtype = DType::f32;
  feat.shape = {f.features.size(0), f.features.size(1), f.features.size(2)};
  feat.data.resize(size_t(f.features.numel()) * 4);
  std::memcpy(feat.data.data(), f.features.data_ptr<float>(), feat.data.size());
  mask.dtype = DType::i64;
  mask.shape = {f.mask.size(0), f.mask.size(1)};
  mask.data.resize(size_t(f.mask.numel()) * 8);
  std::memcpy(mask.data.data(), f.mask.data_ptr<int64_t>(), mask.data.size());
  settings.dtype = DType::u8;
  settings.shape = {int64_t(provenance.size())};
  settings.data.assign(provenance.begin(), provenance.end());
  return serialize_npz({{"caption_feature", std::move(feat)}, {"attention_mask", std::move(mask)},
                        {kSettingsEntry, std::move(settings)}});
}

// --resume: the output parses, holds both arrays, and was made with `settings`.
bool npz_done(const std::string& path, const json& settings, std::string* why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  NpzFile z;
  try {
    const std::vector<uint8_t> bytes = read_file_bytes(path, size_t(1) << 30);
    z = parse_npz(bytes.data(), bytes.size(), path, uint64_t(1) << 30);
  } catch (const std::exception&) {
    *why = "it does not read as an .npz";
    return false;
  }
  if (!z.arrays.count("caption_feature") || !z.arrays.count("attention_mask")) {
    *why = "it lacks caption_feature or attention_mask";
    return false;
  }
  std::optional<std::string> text;
  const auto it = z.arrays.find(kSettingsEntry);
  if (it != z.arrays.end() && it->second.dtype == DType::u8)
    text = std::string(it->second.data.begin(), it->second.data.end());
  return batch::provenance_matches(text, settings, why);
}

int run_single(const T5Job& job) {
  const bool from_text = job.text.has_value();
  const std::string in = from_text ? "" : job.inputs[0];
  const std::string name = from_text ? "--text" : in == "-" ? "<stdin>" : in;
  if (job.output.empty()) throw_usage("no output: pass -o FILE.npz or -o - (one caption), or -O DIR (batch)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one caption (-o FILE)");
  // -o x.png wrote an .npz under an image's name (a name without an
  // extension, such as /dev/fd/3, is taken).
  if (job.output != "-" && !path_extension_lower(job.output).empty() && path_extension_lower(job.output) != ".npz")
    throw_usage("-o " + job.output + ": rass-t5 writes NumPy .npz features (caption_feature, attention_mask); name it .npz");
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}});
  RunFiles files(job.model, {}, {job.tokenizer, job.manifest});
  if (!from_text) files.add_input(in);
  files.check_output_file(job.output, "-o");
  const batch::OneOutputHold held({job.output});
  const std::string key = from_text ? "text" : in == "-" ? "stdin" : path_stem(in);
  const std::string caption = from_text ? *job.text : read_caption(in);  // a bad file fails before the model loads
  if (from_text && !batch::valid_utf8(caption)) throw_bad_input("--text", "is not UTF-8 text");
  check_caption(caption, name);
  const T5TextEncoder enc(encoder_options(job));
  nn::set_item_threads(job.threads, 1);
  const T5Features f = for_input(name, [&] { return enc.encode(clean_caption(caption, parse_caption_clean(job.clean))); });
  const std::string fp = batch::files_fingerprint({job.model, t5_tokenizer_path(encoder_options(job))});
  write_file_atomic(job.output, npz_of(f, batch::provenance_text(kProg, settings_of(job, fp, key, caption))));
  if (job.json) batch::write_report("-", json_text(record_of(key, from_text ? "" : in, job.output, f)) + "\n");
  return 0;
}

int run_batch(const T5Job& job) {
  if (job.output_dir.empty()) throw_usage("batch mode (several inputs, a directory or --manifest) needs -O DIR");
  if (!job.output.empty()) throw_usage("-o names the one output of a single caption; in batch mode use -O DIR");
  batch::InputSpec spec;
  spec.roles = {{"caption", {"caption", "path"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.skip_dirs = {job.output_dir};
  spec.allow_stdin = false;
  spec.name_room = 4;  // <key>.npz
  spec.noun = "caption";
  spec.listed = "caption files: .caption .txt";
  spec.keep = [](const std::string& path) {
    const std::string ext = path_extension_lower(path);
    return ext == ".caption" || ext == ".txt";
  };
  std::vector<batch::Item> all = batch::collect_items(spec);
  auto [mine, mine_input] = batch::shard_items(all, job.shard);
  (void)mine_input;
  RunFiles files(job.model, {}, {job.tokenizer, job.manifest});
  for (const std::string& in : job.inputs) files.add_input(in);
  for (const batch::Item& it : all)
    if (!it.paths.empty() && !it.paths[0].empty()) files.add_input(it.paths[0]);
  auto out_of = [&](const std::string& k) { return path_join(job.output_dir, k) + ".npz"; };
  files.check_output_dir(job.output_dir, "-O", false);
  for (batch::Item& it : mine)
    if (it.error.empty()) files.check_item_outputs(it, {{out_of(it.key), "-O"}});
  const auto locks = batch::lock_output_dirs({job.output_dir}, job.shard, kProg);
  const T5TextEncoder enc(encoder_options(job));
  const std::string fp = batch::files_fingerprint({job.model, t5_tokenizer_path(encoder_options(job))});
  const int workers = std::max(1, std::min<int>(job.jobs, int(std::max<size_t>(mine.size(), 1))));
  nn::set_item_threads(job.threads, workers);
  batch::ResumeTally resumed;
  batch::OrderedLines lines(job.json ? "-" : "");
  batch::Reporter reporter(kProg);
  batch::RunOptions ro;
  ro.jobs = workers;
  ro.quiet = job.quiet;
  const CaptionClean how = parse_caption_clean(job.clean);
  const batch::Tally tally = batch::run_items(
      mine, ro, reporter,
      [&](size_t i, int) {
        const batch::Item& it = mine[i];
        const std::string caption = read_caption(it.paths[0]);
        check_caption(caption, it.paths[0]);
        const json settings = settings_of(job, fp, it.key, caption);
        const std::string out = out_of(it.key);
        if (job.resume) {
          std::string why;
          if (npz_done(out, settings, &why)) {
            resumed.kept();
            if (lines.enabled()) lines.put(i, json_text(json({{"key", it.key}, {"output", out}, {"skipped", true}})) + "\n");
            return;
          }
          if (!why.empty()) resumed.redone(out, why);
        }
        const T5Features f = enc.encode(clean_caption(caption, how));
        const std::vector<uint8_t> bytes = npz_of(f, batch::provenance_text(kProg, settings));
        fs::create_directories(fs::path(out).parent_path());
        write_file_atomic(out, bytes);
        if (lines.enabled()) lines.put(i, json_text(record_of(it.key, it.paths[0], out, f)) + "\n");
      },
      [&](size_t i, batch::Outcome o, const std::string& msg) {
        if (o != batch::Outcome::ok && lines.enabled())
          lines.put(i, json_text(json({{"key", mine[i].key}, {"error", msg}})) + "\n");
      },
      workers);
  lines.finish();
  if (!job.quiet) resumed.report(kProg, "output(s)");
  batch::print_batch_summary(kProg, "encoded", tally, resumed.kept_count(), job.shard, mine.size(), all.size(),
                             job.quiet);
  return tally.exit_code();
}

}  // namespace

std::string caption_from_file_bytes(const std::vector<uint8_t>& bytes, const std::string& name) {
  std::string s(bytes.begin(), bytes.end());
  if (!batch::valid_utf8(s)) throw_bad_input(name, "is not UTF-8 text (a caption file is read as UTF-8)");
  const size_t end = s.find_first_of("\r\n");
  if (end != std::string::npos) s.resize(end);
  return text::python_strip(s);  // str.strip(): Unicode white space at both ends
}

int run_t5_tool(const T5Job& job) {
  if (job.model.empty()) throw_usage("no model: pass -m DIR (a transformers T5 encoder folder: config.json, model.safetensors)");
  if (job.text && (!job.inputs.empty() || !job.manifest.empty()))
    throw_usage("--text is the one caption: give no input files or --manifest with it");
  if (!job.text && job.inputs.empty() && job.manifest.empty())
    throw_usage("no input: give a caption file, a directory, '-', --manifest or --text");
  parse_caption_clean(job.clean);
  if (job.text && !job.output_dir.empty()) throw_usage("--text makes one output: use -o FILE.npz");
  batch::claim_stdin(job.inputs, {{"--manifest -", job.manifest == "-"}});
  std::error_code ec;
  const bool single = job.text || (job.output_dir.empty() && job.manifest.empty() && job.inputs.size() == 1 &&
                                   (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec)));
  try {
    return single ? run_single(job) : run_batch(job);
  } catch (const c10::Error& e) {
    throw_runtime(describe_allocation_failure(e.what_without_backtrace()));
  }
}

}  // namespace rass::model
