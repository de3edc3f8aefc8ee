#include "rass/scenes/classes.hpp"

#include <algorithm>

#include "rass/core/error.hpp"
#include "rass/metrics/class_names.hpp"

namespace rass::scenes {

namespace {

// Indexed by Cls. The names must appear verbatim in metrics' ade20k list.
const std::vector<std::string> kNames = {
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "windowpane", "grass", "sidewalk", "person",
    "door", "table", "mountain", "chair", "car", "water", "painting", "rug", "fence", "rock", "stairs", "pole",
    "flower"};

struct Labels {
  std::vector<uint8_t> of_class;
  std::vector<int> class_of;  // label value -> Cls index, -1 none
};

const Labels& labels() {
  static const Labels table = [] {
    if (kNames.size() != size_t(kClassCount)) throw_runtime("rass-scenes: class table size mismatch");
    const std::vector<std::string>& ade = *metrics::builtin_class_names("ade20k");
    Labels t;
    t.class_of.assign(256, -1);
    for (size_t i = 0; i < kNames.size(); ++i) {
      const auto it = std::find(ade.begin(), ade.end(), kNames[i]);
      if (it == ade.end()) throw_runtime("rass-scenes: class '" + kNames[i] + "' is not an ADE20K class name");
      const size_t label = size_t(it - ade.begin());
      t.of_class.push_back(uint8_t(label));
      t.class_of[label] = int(i);
    }
    return t;
  }();
  return table;
}

}  // namespace

const std::string& class_name(Cls c) { return kNames.at(size_t(c)); }
uint8_t class_label(Cls c) { return labels().of_class.at(size_t(c)); }

Cls class_of_label(int label) {
  if (label < 0 || label > 255 || labels().class_of[size_t(label)] < 0) return Cls::count;
  return Cls(labels().class_of[size_t(label)]);
}

std::vector<Cls> all_classes() {
  std::vector<Cls> v;
  for (int i = 0; i < kClassCount; ++i) v.push_back(Cls(i));
  return v;
}

}  // namespace rass::scenes
