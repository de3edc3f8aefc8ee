// What one rass-restore run reads and writes, checked before any work
// (torch-free). Inputs: the images, --manifest, --tags, --prompt-file, every
// --lora file (and the adapter_config.json beside an adapter_model.safetensors,
// which the loader reads for alpha) and the model folder with every file in it
// (by device and inode: a Hugging Face cache folder links its files to blobs
// elsewhere). An output is refused (Error(usage), exit 2) when it is an input
// (batch::OutputGuard), lies inside the model folder, or is the same file as
// another output of the run (-o, --latent-out, --attn-out, every batch item's
// files): by device and inode when it exists, else by its normalised path.
#pragma once
#include <map>
#include <string>

#include "rass/batch/output_guard.hpp"
#include "rass/model/restore_tool.hpp"

namespace rass::model {

class RestoreFiles {
 public:
  // Registers the inputs common to both modes (model, LoRA files, tags,
  // prompt file, manifest); the caller adds the images.
  explicit RestoreFiles(const RestoreJob& job);
  void add_input(const std::string& path) { guard_.add_input(path); }
  // `what` names the flag in messages ("-o", "--latent-out", ...). "-" and "" are ignored.
  void check_output_file(const std::string& path, const std::string& what);
  void check_output_dir(const std::string& dir, const std::string& what);

 private:
  void refuse_in_model(const std::string& path, const std::string& what) const;
  batch::OutputGuard guard_;
  std::string model_;                            // canonical, "" when not a folder
  std::map<std::string, std::string> written_;   // identity -> "what path"
  std::map<std::string, std::string> out_dirs_;  // canonical dir -> "what dir"
};

}  // namespace rass::model
