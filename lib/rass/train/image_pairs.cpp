#include "rass/train/image_pairs.hpp"

#include <cstring>

#include "rass/batch/inputs.hpp"
#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"

namespace rass::train {

std::vector<ImagePair> list_image_pairs(const ImagePairSource& s, const std::string& what) {
  batch::InputSpec spec;
  spec.roles = {{"image", s.image_fields, true, ""}, {"label", s.label_fields, true, s.label_suffix}};
  if (!s.manifest.empty()) {
    if (!s.images.empty() || !s.labels.empty())
      throw_usage("stage: give either images + labels (two directories) or manifest, not both");
    spec.manifest = s.manifest;
  } else {
    if (s.images.empty() || s.labels.empty())
      throw_usage("stage: the training data is missing: set images and labels (two directories) or manifest");
    spec.inputs = {s.images, s.labels};
  }
  spec.match_stem = s.match_stem;
  spec.allow_stdin = false;
  std::vector<ImagePair> out;
  for (const batch::Item& it : batch::collect_items(spec)) {
    if (!it.error.empty()) throw_bad_input(it.name(), it.error);
    out.push_back({it.key, it.paths.at(0), it.paths.at(1)});
  }
  if (out.empty()) throw_bad_input(s.manifest.empty() ? s.images : s.manifest, "holds no " + what);
  return out;
}

Image read_training_rgb(const std::string& path) {
  Image img = drop_alpha(read_image(path));
  if (img.depth != 8) throw_bad_input(path, "is a 16-bit image; training reads 8-bit images (convert it)");
  if (img.channels == 1) {
    Image rgb(img.width, img.height, 3, 8);
    for (size_t k = 0; k < img.samples(); ++k) std::memset(rgb.u8() + 3 * k, img.u8()[k], 3);
    img = std::move(rgb);
  }
  return img;
}

}  // namespace rass::train
