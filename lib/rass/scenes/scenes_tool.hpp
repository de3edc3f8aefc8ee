// rass-scenes as a library call: N synthetic scenes with exact labels into a
// directory, batch-style (--jobs, --shard, --resume, progress on a tty):
//   DIR/images/<key>.png    8-bit RGB
//   DIR/labels/<key>.png    8-bit class indices (ADE20K label values), 255 none
//   DIR/tags/<key>.txt      one line "sky, building, road" (rass-caption-map --tags)
//   DIR/captions/<key>.txt  one line, the caption
//   DIR/tags.tsv            key<TAB>tags for every scene of the run (caption-map's batch --tags)
//   DIR/manifest.jsonl      image, label, tags (file), caption (text), key, seed, width, height
// Keys are scene_000000, scene_000001, ... (from --start); a sharded run
// writes manifest.I-of-N.jsonl and tags.I-of-N.tsv.
#pragma once
#include <cstdint>
#include <string>

#include "rass/core/shard.hpp"
#include "rass/scenes/generate.hpp"

namespace rass::scenes {

struct ScenesJob {
  uint64_t seed = 0;
  int64_t count = 0;
  int64_t start = 0;
  SceneOptions scene;
  std::string output;  // directory
  int png_level = 6;
  bool resume = false;
  int jobs = 0;
  Shard shard;
  bool quiet = false;
  bool json = false;
  bool list_classes = false;  // print name<TAB>label of every class and stop
};

// The key of scene number i: "scene_000042".
std::string scene_key(int64_t i);

// 0 all written; 1 some scene could not be written. Usage errors throw.
int run_scenes(const ScenesJob& job);

}  // namespace rass::scenes
