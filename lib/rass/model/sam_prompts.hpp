// The prompts rass-sam gives SAM, in the input image's pixel coordinates:
// written on the command line (--point, --box: one object), or derived from a
// label map (--prompts-from), one object per label value, as the box- and
// point-prompted evaluations of SAM on degraded images do (GleSAM's code:
// masks_to_boxes' tight box, or random positive pixels of the object's
// mask: all of them in raster order, the last repeated, when it has fewer).
// Torch-free.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rass/core/image.hpp"
#include "rass/core/rng.hpp"

namespace rass::model {

struct SamObject {
  int label = 1;                             // the value its pixels get in the output map
  std::vector<std::array<double, 2>> points;  // (x, y) pixels
  std::vector<int> point_labels;             // 1 foreground, 0 background
  std::optional<std::array<double, 4>> box;  // (x0, y0, x1, y1)
};

// GleSAM's get_prompt over an object's pixels (row-major indices): `n` of
// them as random.sample draws them (a partial Fisher-Yates shuffle by `rng`)
// when there are at least n, else all in their order, the last repeated.
// `pixels` (not empty) is reordered in place.
std::vector<uint32_t> sam_sample_pixels(std::vector<uint32_t>& pixels, int n, Rng& rng);

// "X,Y" or "X,Y,L" (L 1 foreground, 0 background). Error(usage) naming the flag.
std::pair<std::array<double, 2>, int> parse_sam_point(const std::string& s);
// "X0,Y0,X1,Y1" with X0 <= X1, Y0 <= Y1. Error(usage).
std::array<double, 4> parse_sam_box(const std::string& s);

enum class SamPromptKind { box, points, box_points };
// "box", "points" or "box+points". Error(usage).
SamPromptKind parse_sam_prompt_kind(const std::string& s);

struct SamLabelPrompts {
  SamPromptKind kind = SamPromptKind::box;
  int points = 3;                // random foreground points per object (kinds with points)
  std::vector<int> skip{255};    // values that are no object (the ignore index)
  uint64_t seed = 0;
};

// One object per value of `labels` (a single-channel 8- or 16-bit label map)
// not in `skip`, in increasing order of value: its box is the tight
// bounding box of its pixels (x_min, y_min, x_max, y_max, as masks_to_boxes
// gives it), its points `points` distinct pixels drawn without replacement
// from (seed, key, value) (all its pixels, the last repeated, when it has
// fewer). `name` is for messages: Error(bad_input) for a label map that is
// not single-channel.
std::vector<SamObject> sam_objects_from_labels(const Image& labels, const SamLabelPrompts& how, const std::string& key,
                                               const std::string& name);

// Every object's coordinates inside the image (0 <= x < width + 1 and the
// like: SAM's coordinates are continuous, a box's far edge may be the image
// edge); Error(usage) naming `what` otherwise.
void check_sam_objects(const std::vector<SamObject>& objects, int width, int height, const std::string& what);

}  // namespace rass::model
