// The data of rass-train scr: HQ images with rass-caption-map packs (the
// prompt's token ids, per-term masks and token positions), cut into random
// crops, flipped, and degraded online into the LQ input.
//
// Items: a directory of HQ images and a directory of packs matched by item
// key (<pack_dir>/<key>.h5, the names rass-caption-map -O gives), or a
// JSON-lines manifest with "hq" and "pack" per row (paths relative to the
// manifest). Without SCL the packs are optional: an item without one uses
// the "prompt" setting.
//
// Every random draw of a sample is keyed by (seed, step, global sample index)
// -- stage.hpp's determinism contract: the crop offset and the flip from
// rass::Rng(seed, "step S sample G", "crop"/"flip"); the degradation from
// degrade::sample_record(preset, seed, "<item key>@S.G", ...), so every step
// sees a new degradation of every item and a rerun sees the same one.
//
// Images smaller than the crop are bad input naming the file, not padded:
// padding would teach the restoration LoRA to make the pad colour, and the
// degradation's kernels would smear it into the image. A pack's size must
// equal its image's (both name the file when not).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/degrade/config.hpp"
#include "rass/text/caption_pack.hpp"
#include "rass/text/clip_tokenizer.hpp"
#include "rass/train/scl_loss.hpp"

namespace rass::train {

struct ScrDataConfig {
  std::string hq_dir, pack_dir, manifest;
  int64_t crop = 512;
  bool flip = true;
  std::string preset = "rass";
  bool scl = true;         // packs required, with at least one mask
  std::string prompt;      // the prompt of items without a pack
  uint64_t seed = 0;
};

struct ScrItem {
  std::string key, hq, pack;  // pack "" when the item has none
  int64_t pack_w = 0, pack_h = 0;
};

// One training sample.
struct ScrSample {
  std::string key;            // the item's
  std::string draw;           // "step S sample G": the key of every draw for this sample
  torch::Tensor lq, hq;       // [3, crop, crop] float in [-1, 1]
  std::vector<int64_t> ids;   // the padded prompt token ids
  std::vector<SclTarget> targets;  // terms with a mask that is non-empty in the crop
};

class ScrData {
 public:
  // Collects the items and checks them before any training: every item good
  // (no missing pair, duplicate key), every pack readable with token ids of
  // `max_tokens`, packs at least crop x crop, and with SCL at least one term
  // with a mask in some pack. Errors: Error(usage) for settings,
  // Error(bad_input) naming the file.
  // `vocab`: the text encoder's token count (its embedding rows: added
  // tokens included); 0 takes the tokenizer's vocab.json size.
  ScrData(const ScrDataConfig& cfg, const text::ClipTokenizer& tokenizer, int64_t max_tokens, int64_t vocab = 0);
  size_t size() const { return items_.size(); }
  const std::vector<ScrItem>& items() const { return items_; }
  // Sample `global_index` of `step`, made from item `item`.
  ScrSample sample(size_t item, int64_t step, int64_t global_index) const;

 private:
  ScrDataConfig cfg_;
  degrade::PipelineConfig degrade_;
  std::vector<ScrItem> items_;
  void check_token_ids(const text::CaptionPack& p, const std::string& path) const;
  std::vector<int64_t> default_ids_;
  int64_t vocab_ = 0;  // a pack's token ids are in 0..vocab_-1
};

// [3, H, W] float in [-1, 1] of an 8-bit RGB image.
torch::Tensor rgb_to_signed(const Image& rgb);

}  // namespace rass::train
