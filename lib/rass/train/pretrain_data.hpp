// The data of the pretraining stages rass-train vae and unet: clean images
// (rass-scenes output or any folder of images), each optionally with a text
// (its caption or its tags), cut into random crops and flipped.
//
// Items: a folder of images (`images`), with texts read from
// <text_dir>/<key>.txt (rass-scenes writes DIR/captions and DIR/tags), or a
// rass-scenes manifest.jsonl (`manifest`): "image" (path relative to the
// manifest), "caption" (the text itself) and "tags" (a file of one line).
//
// Every draw of a sample is keyed by (seed, step, global sample index) --
// stage.hpp's determinism contract: the crop offset and flip come from
// rass::Rng(seed, "step S sample G", "crop"/"flip"). Images smaller than the
// crop are bad input naming the file (not padded: the models would learn the
// pad).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace rass::train {

enum class TextSource { none, caption, tags };

struct PretrainDataConfig {
  std::string images, manifest;  // one of the two
  TextSource text = TextSource::none;
  std::string text_dir;          // with `images`: "" = <images>/../captions or ../tags
  int64_t crop = 256;
  bool flip = true;
  uint64_t seed = 0;
  std::string stage;             // "vae", "sinsr", ...: messages name "<stage>.images" ("" = bare names)
};

struct PretrainItem {
  std::string key, image, text;  // text "" without one
};

struct PretrainSample {
  std::string key;
  std::string draw;   // "step S sample G": the key of every draw of this sample
  torch::Tensor image;  // [3, crop, crop] float in [-1, 1]
  std::string text;
};

class PretrainData {
 public:
  // Collects every item and checks it before training (missing text files,
  // empty folders, unreadable manifests): Error(usage) for settings,
  // Error(bad_input) naming the file.
  explicit PretrainData(const PretrainDataConfig& cfg);
  size_t size() const { return items_.size(); }
  const std::vector<PretrainItem>& items() const { return items_; }
  PretrainSample sample(size_t item, int64_t step, int64_t global_index) const;

 private:
  PretrainDataConfig cfg_;
  std::vector<PretrainItem> items_;
};

// Typed access to a stage's settings against its defaults; errors are
// Error(usage) naming "<stage> setting <key>".
struct StageSettings {
  std::string stage;
  const nlohmann::ordered_json& j;
  nlohmann::ordered_json defaults;
  // Refuses keys that are not in `defaults` and a non-object.
  void check_keys() const;
  const nlohmann::ordered_json& at(const std::string& k) const;
  std::string str(const std::string& k) const;
  double num(const std::string& k) const;
  int64_t integer(const std::string& k) const;
  // The same, refused outside [lo, hi].
  double num(const std::string& k, double lo, double hi) const;
  int64_t integer(const std::string& k, int64_t lo, int64_t hi) const;
  bool flag(const std::string& k) const;
};

// The draw key of global sample g of step s.
std::string sample_draw_key(int64_t step, int64_t global_index);

}  // namespace rass::train
