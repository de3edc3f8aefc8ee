// What made an output, kept in the output itself: rass-restore and
// rass-segment write their settings for each item (model and LoRA files,
// seed, prompt, the input's bytes, ...) into the output PNG's "rass" text
// chunk (io/png_text.hpp), and --resume keeps an output only when they equal
// this run's. A run resumed with another model, seed or prompt, or over
// inputs that changed, makes those items again instead of keeping outputs it
// did not make; one killed midway over older outputs is resumed exactly.
// The chunk also tells a user later what made an image (`rass-model info`
// is not needed: any PNG tool lists text chunks). Torch-free.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass::batch {

// A fingerprint of files (models, LoRA files) cheap enough for gigabytes:
// every regular file of each path (a folder: every file under it, links
// followed, by relative path) by size and modification time, hashed (FNV-1a
// 64, hex). A model exported again or replaced at the same path changes it;
// a copy that keeps times (cp -p, rsync -a) does not. "" and "-" are skipped.
std::string files_fingerprint(const std::vector<std::string>& paths);

// FNV-1a 64 of a file's bytes, hex ("" when it cannot be read): for inputs,
// which a copy may give new times but keeps byte for byte.
std::string content_hash(const std::string& path);

// The text of the "rass" chunk: {"tool", "version", "settings"}.
std::string provenance_text(const std::string& tool, const nlohmann::ordered_json& settings);

// Whether the PNG at `path` was made with `settings` (equal as JSON values;
// the version that made it does not count). When not, `why` names what
// differs ("no settings recorded", "seed", "model_files, prompt").
bool made_with(const std::string& path, const nlohmann::ordered_json& settings, std::string* why = nullptr);

}  // namespace rass::batch
