// The image + label-map pairs a training stage reads (ras, sam-decoder):
// two folders paired by item key, as rass-eval-miou pairs predictions and
// ground truth, or a JSON-lines manifest. Torch-free.
#pragma once
#include <string>
#include <vector>

namespace rass::train {

struct ImagePair {
  std::string key, image, label;
};

struct ImagePairSource {
  std::string images, labels, manifest;  // two folders, or a manifest
  std::string label_suffix;              // label file-name end stripped for the key ("" = the extension)
  bool match_stem = false;
  std::vector<std::string> image_fields{"image", "hq"}, label_fields{"label", "gt"};  // manifest fields
  std::string image_role = "image", label_role = "label";  // what messages call them
  // The settings messages name: "<stage>.<images_key>" and so on.
  std::string stage = "stage", images_key = "images", labels_key = "labels";
};

// Error(usage) for folders and manifest both or neither given; Error(bad_input)
// for a bad pair (named) or no pair at all (`what`: "image/label pairs").
std::vector<ImagePair> list_image_pairs(const ImagePairSource& s, const std::string& what);

}  // namespace rass::train
