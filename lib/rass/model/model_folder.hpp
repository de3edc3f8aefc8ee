// Writing a whole model folder atomically: everything goes into a temporary
// folder beside the destination, renamed over it at the end, so a failure or
// a killed job leaves no partial folder. Components that are not rewritten
// are hard-linked from the source folder (copied where links cannot be made:
// another filesystem, or a symbolic link in the source).
#pragma once
#include <set>
#include <string>

namespace rass::model {

class FolderWriter {
 public:
  // Refuses (Error(usage)) a destination that already exists.
  explicit FolderWriter(std::string dst);
  ~FolderWriter();  // removes the temporary folder unless committed
  FolderWriter(const FolderWriter&) = delete;
  FolderWriter& operator=(const FolderWriter&) = delete;
  // The temporary folder to fill.
  const std::string& tmp() const { return tmp_; }
  // Hard-links (or copies) the tree under `src` into tmp()/`rel`, leaving out
  // the top-level entries named in `skip`.
  void link_tree(const std::string& src, const std::string& rel, const std::set<std::string>& skip = {});
  // Copies a component folder's files other than weights (config.json and
  // the like; not *.safetensors, *.bin or weight indexes) into tmp()/`rel`.
  void copy_component_extras(const std::string& src, const std::string& rel);
  void commit();  // rename(2) to the destination

 private:
  std::string dst_, tmp_;
  bool committed_ = false;
};

}  // namespace rass::model
