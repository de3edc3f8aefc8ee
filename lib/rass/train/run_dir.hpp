// Guards a training run's output folders: one run at a time per output
// directory, and no output inside a folder the stage reads. Torch-free.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass::train {

// Holds an exclusive lock on DIR/.rass-train.lock (flock, released when the
// process ends, even by SIGKILL) so that two runs never interleave their
// log.jsonl and checkpoints. Creates DIR. A second run on the same directory
// is refused (exit 2) naming the directory and the holder's process id.
class RunDirLock {
 public:
  explicit RunDirLock(const std::string& dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;
  // A run that failed before step 0: the lock file goes, and DIR too when
  // this run created it and nothing else is in it (a bad --resume-from left
  // a folder holding only the lock). The lock is released.
  void abandon();

 private:
  std::string dir_, path_;
  bool created_ = false;  // DIR did not exist before
  int fd_ = -1;
};

// The directories a stage's settings name (its string settings that are
// existing directories: model folders, image and label folders, packs),
// and the folders of the files its manifests list (a string setting that
// names a regular file and whose key ends in "manifest").
// `listed`: with the manifest-listed folders (for the export, which replaces
// its folder whole; a run's own directory may sit beside the images).
std::vector<std::string> input_directories(const nlohmann::ordered_json& stage_section, const std::string& stage,
                                           bool listed = false);
// The folders of the files a stage's settings name (a manifest, LPIPS
// weights), as "key (the folder of the file it names)=folder": the export,
// which replaces its folder whole, must not be one.
std::vector<std::string> input_file_folders(const nlohmann::ordered_json& stage_section, const std::string& stage);

// Refuses (exit 2) an output folder `dir` (given as `what`, e.g.
// "loop.out_dir") that is one of `inputs` or lies inside one: a run must not
// write into the folders it reads. Each input is "key=path".
void check_output_outside_inputs(const std::string& what, const std::string& dir, const std::vector<std::string>& inputs);

// The export replaces its folder whole: besides lying outside the inputs, it
// may hold none of them, nor be or hold the run's output directory, nor lie
// in its checkpoints/ (exit 2); nor hold the folder of an input file
// (`file_folders`, input_file_folders'; beside or below one is fine); nor
// replace another run's export (the mark names its run).
void check_export_dir(const std::string& export_dir, const std::string& out_dir, const std::vector<std::string>& inputs,
                      const std::vector<std::string>& file_folders = {});

// The export is written beside its folder (a temporary, renamed into place):
// the nearest existing folder on its way must let this process write there,
// or the run is refused now (exit 2 naming loop.export_dir), not after its
// last step.
void check_export_writable(const std::string& export_dir);

}  // namespace rass::train
