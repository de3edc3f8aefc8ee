// The classes rass-scenes draws. Each is an ADE20K class: its name is the
// name in rass-eval-miou's built-in "ade20k" list and its label value is that
// list's index (the 0-based, reduce-zero-label convention mmseg trains on),
// so rass-eval-miou --classes ade20k, rass-caption-map (tags -> ADE20K
// classes) and the segmenter read the generated data without a mapping.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rass::scenes {

// The scene classes, in the order the generator knows them (not label order).
enum class Cls : int {
  wall, building, sky, floor, tree, ceiling, road, windowpane, grass, sidewalk, person, door, table,
  mountain, chair, car, water, painting, rug, fence, rock, stairs, pole, flower, count
};
constexpr int kClassCount = static_cast<int>(Cls::count);

// The ADE20K name of a class ("windowpane", "stairs", ...): also its tag.
const std::string& class_name(Cls c);
// Its label value: the index of class_name(c) in the ade20k list (checked
// against that list once, so the two cannot drift apart).
uint8_t class_label(Cls c);
// The class with label value `label`, or Cls::count when none draws it.
Cls class_of_label(int label);
// Every scene class, for listings and tests.
std::vector<Cls> all_classes();

}  // namespace rass::scenes
