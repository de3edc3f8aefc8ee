// What one rass-restore or rass-segment run reads and writes, checked before
// any work (torch-free). Inputs: the images, the model folder with every file
// in it (by device and inode: a Hugging Face cache folder links its files to
// blobs elsewhere), every --lora file (and the adapter_config.json beside an
// adapter_model.safetensors, which the loader reads for alpha) and the other
// input files (--manifest, --tags, --prompt-file, --classes, --latent-in).
// An output is refused (Error(usage), exit 2) when it is an input
// (batch::OutputGuard, stdin's and stdout's files included), lies inside the
// model folder or another input folder (rass-samsr's --sam DIR), cannot be
// made (a path on the way is a file) or is the same
// file as another output of the run (-o, --latent-out, every batch item's
// files): by device and inode when it exists, else by its normalised path.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rass/batch/inputs.hpp"
#include "rass/batch/output_guard.hpp"

namespace rass::model {

class RunFiles {
 public:
  // The inputs common to both modes; the caller adds the images. "" and "-"
  // in `loras` and `others` are skipped (stdin is added with the images).
  RunFiles(const std::string& model, const std::vector<std::string>& loras, const std::vector<std::string>& others);
  void add_input(const std::string& path) { guard_.add_input(path); }
  // `what` names the flag in messages ("-o", "--latent-out", ...). "" is
  // ignored; "-" is checked against the file stdout is redirected to.
  void check_output_file(const std::string& path, const std::string& what, bool per_item = false);
  // A batch item's outputs, {path, what}: each as check_output_file(per_item);
  // one that cannot be written (OutputGuard::item_output_problem) makes the
  // item a bad item, before any work, naming it.
  void check_item_outputs(batch::Item& item, const std::vector<std::pair<std::string, std::string>>& outputs);
  // `own_folder`: refuse a folder another kind of output uses too
  // (rass-restore's rule; rass-segment's kinds differ in name or extension).
  void check_output_dir(const std::string& dir, const std::string& what, bool own_folder = true);

 private:
  // An input; a folder's files are added by inode, and nothing is written inside it.
  void add_folder_or_file(const std::string& path, const char* kind);
  // Refuses an output inside the model folder or another input folder.
  void refuse_in_model(const std::string& path, const std::string& what) const;
  batch::OutputGuard guard_;
  std::vector<std::pair<std::string, std::string>> folders_;  // {canonical folder, "model folder"/"input folder"}
  std::map<std::string, std::string> written_;   // identity -> "what path"
  std::map<std::string, std::string> out_dirs_;  // canonical dir -> "what dir"
};

}  // namespace rass::model
