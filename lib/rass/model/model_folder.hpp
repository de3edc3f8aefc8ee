// Writing a whole model folder atomically: everything goes into a temporary
// folder beside the destination, renamed over it at the end, so a failure or
// a killed job leaves no partial folder. Components that are not rewritten
// are hard-linked from the source folder (copied where links cannot be made:
// another filesystem, or a symbolic link in the source).
#pragma once
#include <filesystem>
#include <set>
#include <string>

#include "rass/core/signals.hpp"

namespace rass::model {

class FolderWriter {
 public:
  // What to do with a destination that already exists: refuse it
  // (Error(usage), before any work); replace it at commit() (training
  // exports: a later export of the same run supersedes the earlier one); or
  // take its place only while it is an empty folder (rass-model init after a
  // script's mkdir -p): checked before the work and again by the rename
  // itself, so a folder that filled meanwhile (another init, a user's files)
  // is never removed, and a symbolic link is refused.
  enum class Existing { refuse, replace, empty_only };
  explicit FolderWriter(const std::string& dst, Existing existing = Existing::refuse);
  // The checks the constructor makes, without creating anything (Error(usage)
  // for a destination that names no new folder, exists when it must not, or
  // is not a folder), for callers that check before long work. Returns the
  // destination's normalised name.
  static std::string check_destination(const std::string& dst, Existing existing);
  // Training exports: the run whose exports these are (its output folder,
  // normalised), written into every export's mark ("run: ..."), so that
  // another run can tell an export that is not its own (export_owner()).
  static void set_export_run(const std::string& run);
  // The run named in `dir`'s mark; "" for none (an export written before the
  // marks named their run, or no mark). An export inside its run's folder
  // names the run relative to itself too ("run-relative: ..") with the
  // run's random id (OUT/.rass-run-id, made at its first export): when the
  // folder up there holds that id, it is returned joined to `dir`
  // (normalise it to compare), so a run folder moved or copied elsewhere
  // still owns its export, while an export moved on its own stays the
  // first run's.
  static std::string export_owner(const std::string& dir);
  // The run's id file's name in its folder (".rass-run-id").
  static const char* run_id_file();
  ~FolderWriter();  // removes the temporary folder unless committed
  FolderWriter(const FolderWriter&) = delete;
  FolderWriter& operator=(const FolderWriter&) = delete;
  // The temporary folder to fill.
  const std::string& tmp() const { return tmp_; }
  // Hard-links (or copies) the tree under `src` into tmp()/`rel`, leaving out
  // the top-level entries named in `skip`.
  void link_tree(const std::string& src, const std::string& rel, const std::set<std::string>& skip = {});
  // What link_tree(src) will meet, checked before long work: every entry
  // (links followed) a folder or a readable regular file, and no folder that
  // holds itself through a symbolic link. Error(bad_input) naming the entry.
  // Top-level entries named in `skip` are not looked at (link_tree's skip).
  static void check_tree(const std::string& src, const std::set<std::string>& skip = {});
  // Copies a component folder's files other than weights (config.json and
  // the like; not *.safetensors, *.bin or weight indexes) into tmp()/`rel`.
  void copy_component_extras(const std::string& src, const std::string& rel);
  // rename(2) to the destination. Replacing: the old folder is renamed
  // aside first (into the temporary) and removed after, so a reader sees the
  // old folder or the new one, never a mix; if the new one cannot be put in
  // place, the old one is put back.
  void commit();

 private:
  std::string shown(const std::filesystem::path& p) const;
  void place_file(const std::filesystem::path& from, const std::filesystem::path& to) const;
  std::string dst_, tmp_;
  Existing existing_;
  int mark_fd_ = -1;  // the temporary's .rass-writer, locked while this writer lives
  SignalCleanup cleanup_;  // tmp_ until commit() begins: SIGTERM and the like remove it
  bool committed_ = false;
};

}  // namespace rass::model
