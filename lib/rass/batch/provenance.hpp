// What made an output, kept in the output itself: rass-restore and
// rass-segment write their settings for each item (model and LoRA files,
// seed, prompt, the input's bytes, ...) into the output PNG's "rass" text
// chunk (io/png_text.hpp), and --resume keeps an output only when they equal
// this run's. A run resumed with another model, seed or prompt, or over
// inputs that changed, makes those items again instead of keeping outputs it
// did not make; one killed midway over older outputs is resumed exactly.
// Any PNG tool lists the chunk, so a user can also tell later what made an
// image. Torch-free.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass::batch {

// A hash of a file's bytes (CRC-32 and Adler-32 of the whole content, as
// zlib computes them, in 16 hex digits; "" when it cannot be read). Fast
// (libdeflate's SIMD code), so a model of gigabytes that the loader has
// just read costs about a second.
std::string content_hash(const std::string& path);
// The same of bytes already read (an input read once for its hash and its
// pixels): equal to content_hash of a file holding them.
std::string bytes_hash(const std::vector<uint8_t>& bytes);

// `text` itself up to 4096 bytes, else "N bytes, hash H" (a prompt of a
// megabyte would make every output's chunk as large).
std::string text_or_hash(const std::string& text);

// A fingerprint of the files a model is made of: each path's files (a
// folder: every file under it by relative name, hidden ones such as .git/
// left out; folder links followed, none twice, at most 4 levels down) by
// name, size and content_hash. Copies of a model anywhere, with any times,
// have one fingerprint; other weights, a changed config or another LoRA
// (also one of the same size and time) another. "" and "-" are skipped.
std::string files_fingerprint(const std::vector<std::string>& paths);

// The text of the "rass" chunk: {"tool", "version", "settings"}.
std::string provenance_text(const std::string& tool, const nlohmann::ordered_json& settings);

// A setting that cannot change this item's pixels (no LoRA to merge, a size
// rule the policy does not read, a seed with nothing drawn): the tools record
// it as "n/a", and made_with takes it as equal to whatever an output recorded
// (outputs made while it was recorded as a value are kept).
constexpr char kNotApplicable[] = "n/a";

// Whether the PNG at `path` was made with `settings`: every key equal as a
// JSON value (the version that made it does not count), except "outputs",
// the side outputs written with it (kind -> what decides their content):
// each one this run asks for must have been written with an equal value
// (an image kept without its latent of this run would sit beside another
// run's latent). When not, `why` says what differs ("seed", "outputs").
bool made_with(const std::string& path, const nlohmann::ordered_json& settings, std::string* why = nullptr);
// made_with's comparison on a record's text (provenance_text) kept elsewhere
// (rass-t5 keeps it in its .npz); nullopt: no record.
bool provenance_matches(const std::optional<std::string>& text, const nlohmann::ordered_json& settings,
                        std::string* why = nullptr);

// --resume's test of one item: its PNG (written last) records `settings`
// (made_with) and decodes, and each of its side outputs asked for (`side`;
// "" = not asked) exists and is not empty. `why` says why an existing PNG
// is made again ("" when there was nothing to keep).
bool output_done(const std::string& png, const std::vector<std::string>& side, const nlohmann::ordered_json& settings,
                 std::string* why);

class OrderedLines;

// --resume's tally, shared by the workers of one run: outputs kept, and
// those made again with the first one's reason.
class ResumeTally {
 public:
  void kept();
  void redone(const std::string& output, const std::string& why);
  size_t kept_count() const;
  // One stderr line when outputs were made again (`what`: "output(s)").
  void report(const char* prog, const char* what) const;

 private:
  mutable std::mutex mu_;
  size_t kept_ = 0, redone_ = 0;
  std::string first_;
};

// --resume for item `index` of a network tool's batch: true when its output
// is done with `settings` (output_done): counted kept, and with --json a
// {"key", "output", "skipped": true} line in `lines`. Otherwise an existing
// output made again is counted with its reason, and false.
bool resume_skips(const std::string& output, const std::vector<std::string>& side, const nlohmann::ordered_json& settings,
                  const std::string& key, size_t index, ResumeTally& tally, OrderedLines& lines);

}  // namespace rass::batch
