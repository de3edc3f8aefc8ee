// The training data of rass-train sam-enhancer (GleSAM's first stage, seed
// 001; its train_glesam_denoising_unet.py with dataset/codeformer_add_maskv3_ms.py):
// HQ/LQ image pairs, both size x size, whose SAM embeddings are the stage's
// input (LQ) and target (HQ).
//
//   HQ: the image resized to size x size by Pillow's bicubic filter whatever
//       its aspect (its load_gt_image with crop_type none; no flip, no crop);
//   LQ: made online from that HQ image by a rass-degrade preset ("glesam",
//       the default: GleSAM's Real-ESRGAN second-order model, its first-order
//       resize and the factor drawn per sample from [1, 2, 3, 3, 4, 4, 4, 4],
//       back at size x size; any preset whose LQ keeps the HQ size), or given
//       (preset "none": an LQ folder paired by item key, or the manifest's
//       "lq" field), resized to size x size the same way.
// The masks GleSAM's dataset also loads are not used by this stage.
//
// Items: `images` (a folder, listed recursively) with optional `lq` (a
// folder paired by key), or a JSON-lines `manifest` with "hq" (or "image")
// and optional "lq" per row (paths relative to the manifest).
//
// Torch-free. The degradation of a sample is keyed by (seed, step, global
// sample index) (stage.hpp's determinism contract): every step sees a new
// degradation of every item and a rerun the same one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/degrade/config.hpp"

namespace rass::train {

struct SamEnhancerDataConfig {
  std::string images, lq, manifest;
  bool match_stem = false;  // with lq: pair by file name, not relative path
  int size = 512;
  std::string preset = "glesam";  // a rass-degrade preset keeping the size, or none (LQ given)
  int severity = 3;               // single-degradation presets: 1..5
};

struct SamEnhancerItem {
  std::string key, hq, lq;  // lq "" when made online
};

struct SamEnhancerSample {
  std::string key;
  int scale = 1;  // preset glesam: the downsampling factor drawn
  Image hq, lq;   // size x size RGB 8-bit
};

class SamEnhancerData {
 public:
  // Lists the items: Error(usage) for a bad setting (named "sam-enhancer.<key>"),
  // Error(bad_input) for an unreadable folder or manifest, a bad row, a
  // missing LQ partner, or no item at all.
  explicit SamEnhancerData(const SamEnhancerDataConfig& c, uint64_t seed);
  size_t size() const { return items_.size(); }
  const std::vector<SamEnhancerItem>& items() const { return items_; }
  // Reads every image once (a truncated or unreadable file stops the run
  // before the first step, named).
  void check() const;
  SamEnhancerSample sample(size_t item, int64_t step, int64_t global_index) const;

 private:
  SamEnhancerDataConfig c_;
  uint64_t seed_;
  std::vector<SamEnhancerItem> items_;
  std::vector<degrade::PipelineConfig> degrade_;  // the preset's (none: empty)
};

}  // namespace rass::train
