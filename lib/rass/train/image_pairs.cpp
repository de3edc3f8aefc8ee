#include "rass/train/image_pairs.hpp"

#include "rass/batch/inputs.hpp"
#include "rass/core/error.hpp"

namespace rass::train {

std::vector<ImagePair> list_image_pairs(const ImagePairSource& s, const std::string& what) {
  batch::InputSpec spec;
  spec.roles = {{s.image_role, s.image_fields, true, ""}, {s.label_role, s.label_fields, true, s.label_suffix}};
  if (!s.manifest.empty()) {
    if (!s.images.empty() || !s.labels.empty())
      throw_usage(s.stage + ": give either " + s.stage + "." + s.images_key + " + " + s.stage + "." + s.labels_key +
                  " (two directories) or " + s.stage + ".manifest, not both");
    spec.manifest = s.manifest;
  } else {
    if (s.images.empty() || s.labels.empty())
      throw_usage(s.stage + ": the training data is missing: set " + s.stage + "." + s.images_key + " and " + s.stage + "." +
                  s.labels_key + " (two directories) or " + s.stage + ".manifest");
    spec.inputs = {s.images, s.labels};
  }
  spec.match_stem = s.match_stem;
  spec.allow_stdin = false;
  std::vector<ImagePair> out;
  for (const batch::Item& it : batch::collect_items(spec)) {
    if (!it.error.empty()) {
      // The batch layer's message names the item itself and speaks of the
      // tools' --match-stem flag: here it is the stage's match_stem setting.
      std::string e = it.error;
      const std::string prefix = it.name() + ": ";
      const bool named = e.rfind(prefix, 0) == 0;
      if (named) e.erase(0, prefix.size());
      for (size_t at; (at = e.find("--match-stem")) != std::string::npos;) e.replace(at, 12, "the match_stem setting");
      // A manifest row's message names the manifest and line itself (the
      // item's own name is then "line1", which only repeated it).
      if (!named) throw Error(ExitCode::bad_input, e);
      throw_bad_input(it.name(), e);
    }
    out.push_back({it.key, it.paths.at(0), it.paths.at(1)});
  }
  if (out.empty()) throw_bad_input(s.manifest.empty() ? s.images : s.manifest, "holds no " + what);
  return out;
}

}  // namespace rass::train
