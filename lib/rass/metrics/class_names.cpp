// Class names of rass-eval-miou's built-in sets (see class_names.hpp).
#include "rass/metrics/class_names.hpp"

#include <unordered_map>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass::metrics {

namespace {

// mmsegmentation ADE20KDataset.METAINFO['classes'] (150; 'bed ' keeps its trailing space).
const std::vector<std::string> kAde20k = {
      "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed ", "windowpane", "grass", "cabinet",
      "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
      "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence",
      "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column",
      "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator",
      "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
      "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
      "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
      "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
      "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole", "land",
      "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
      "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
      "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name",
      "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
      "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
      "bulletin board", "shower", "radiator", "glass", "clock", "flag"};

// mmsegmentation CityscapesDataset (the 19 train ids).
const std::vector<std::string> kCityscapes = {
      "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
      "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"};

// mmsegmentation PascalVOCDataset (21, background first).
const std::vector<std::string> kVoc = {
      "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
      "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

}  // namespace

const std::vector<std::string>& builtin_class_sets() {
  static const std::vector<std::string> sets = {"ade20k", "cityscapes", "voc"};
  return sets;
}

const std::vector<std::string>* builtin_class_names(const std::string& set) {
  if (set == "ade20k") return &kAde20k;
  if (set == "cityscapes") return &kCityscapes;
  if (set == "voc") return &kVoc;
  return nullptr;
}

std::vector<std::string> load_class_names(const std::string& spec) {
  if (const auto* names = builtin_class_names(spec)) return *names;
  const std::vector<uint8_t> bytes = read_text_file_bytes(spec);
  std::vector<std::string> names;
  std::string text(bytes.begin(), bytes.end());
  size_t pos = utf8_bom_size(bytes.data(), bytes.size());  // an editor's byte-order mark is not part of the first name
  int line = 0;
  int first_empty = 0;  // an empty line is an error unless only empty lines follow it
  std::unordered_map<std::string, int> line_of;  // each name's line
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string name = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!name.empty() && name.back() == '\r') name.pop_back();
    if (name.find_first_not_of(" \t") == std::string::npos) {  // blank: no name a table or a tag can show
      if (first_empty == 0) first_empty = line;
      continue;
    }
    if (first_empty != 0)
      throw_bad_input(spec, "line " + std::to_string(first_empty) + ": empty class name (one name per line)");
    // A name given twice (a copy-paste slip) made two columns one cannot
    // tell apart, and which one a tag maps to a matter of order.
    if (const auto [it, fresh] = line_of.emplace(name, line); !fresh)
      throw_bad_input(spec, "line " + std::to_string(line) + ": class name '" + name + "' is line " +
                                std::to_string(it->second) + "'s too (names must differ)");
    names.push_back(name);
  }
  if (names.empty())
    throw_bad_input(spec, "no class names (expected one name per line, or one of ade20k, cityscapes, voc)");
  return names;
}

}  // namespace rass::metrics
