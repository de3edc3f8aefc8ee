// One synthetic scene: an RGB image, its exact label map (ADE20K label
// values, 255 where nothing is drawn, which never happens in a full scene),
// the visible classes as tags and a caption. Deterministic: the same seed,
// key and options give the same bytes, whatever thread or shard draws it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/scenes/canvas.hpp"
#include "rass/scenes/classes.hpp"

namespace rass::scenes {

// The scene families; `mixed` draws one per scene.
enum class Kind { mixed, street, landscape, room };
Kind parse_kind(const std::string& name);  // Error(usage) for others
const char* kind_name(Kind k);

struct SceneOptions {
  int width = 256, height = 256;  // 64..512 each
  Kind kind = Kind::mixed;
  std::vector<DrawOp>* record = nullptr;  // tests: receives every labelled fill in order
};

struct Scene {
  Image image;   // 8-bit RGB
  Image labels;  // 8-bit, 1 channel
  Kind kind = Kind::street;
  std::vector<Cls> tags;         // the visible classes, largest area first
  std::vector<uint64_t> pixels;  // pixel count of each tag
  std::string caption;
};

constexpr int kMinSide = 64, kMaxSide = 512;

Scene generate_scene(uint64_t seed, const std::string& key, const SceneOptions& opt);

// "sky, building, road": the tag line rass-caption-map --tags reads.
std::string tags_line(const Scene& s);
// The classes a label map shows, largest area first (ties by label value),
// with each label value's pixel count in `count` (256 entries) if given;
// and their tags line. --resume checks a kept scene's tags against its label map.
std::vector<Cls> visible_classes(const Image& labels, std::vector<uint64_t>* count = nullptr);
std::string tags_line(const std::vector<Cls>& tags);
// A scene's caption from its family (one drawn: not `mixed`) and tags;
// --resume checks a kept scene's caption with it.
std::string caption_of(Kind kind, const std::vector<Cls>& tags);

// Every word a tag line or caption can contain (class names and the caption's
// own words), sorted: the mini world's tokenizer makes each one token
// (rass-model init --preset mini).
std::vector<std::string> scene_words();

}  // namespace rass::scenes
