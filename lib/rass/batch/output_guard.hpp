// No tool ever writes over one of its inputs. Before any work, a tool tells
// the guard its inputs and checks each output it will write: an output that
// is an input file (by device and inode, so links and other spellings of the
// path count), or an output directory equal to or inside an input directory,
// is refused with Error(usage), exit 2. So is an output whose folder cannot
// be made (a path on the way is a file).
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace rass::batch {

class OutputGuard {
 public:
  // A file or a directory; "-": the file stdin is redirected from, if any;
  // missing paths are ignored. `listed`: a file found by walking a folder
  // the tool reads (a model folder), not named by the user: stdout or
  // stderr truncated onto it (a new log there) is not refused.
  void add_input(const std::string& path, bool listed = false);
  // The regular files under a folder the tool reads (a model or weights
  // folder), by inode (a cache snapshot's files are links to blobs outside
  // it), as listed inputs. A model folder holds a few dozen files: the walk
  // stops at a generous bound.
  void add_folder_files(const std::string& dir);
  // what: "-o", "--csv", ... Also refuses an existing directory, unless
  // `per_item` (one of a batch's outputs: see item_output_problem). "-" is
  // not checked here: stdout's file is checked against every input by add_input.
  void check_output_file(const std::string& path, const std::string& what, bool per_item = false) const;
  // Why one of a batch item's outputs cannot be written, "" if it can: an
  // existing directory in its place (a file cannot be renamed over it), or a
  // FIFO, socket or device, also through a link (a write would block or be
  // lost). The tools make such an item a bad item before any work; the rest are made.
  static std::string item_output_problem(const std::string& path, const std::string& what);
  void check_output_dir(const std::string& dir, const std::string& what) const;
  // check_output_file, and also refuses a file anywhere inside an input
  // directory (tools whose inputs are whole folders: a model folder, a
  // tokenizer folder, a dictionary folder).
  void check_output_file_outside_dirs(const std::string& path, const std::string& what, bool per_item = false) const;
  // Refuses two outputs of one run that name the same file (by device and
  // inode when it exists, else by the canonical path): one would replace the
  // other. Pairs are {what, path}; "" and "-" are skipped.
  static void check_distinct(const std::vector<std::pair<std::string, std::string>>& outputs);
  // What makes two output paths one file: device and inode when it exists,
  // else the absolute, lexically normal path with its existing part resolved
  // ("out/../a.png" is a.png before out/ exists). "" for a device or pipe:
  // written in place, nothing is replaced, so outputs may share /dev/null.
  static std::string output_identity(const std::string& path);
  // The absolute, lexically normal path with its existing part resolved
  // (links followed): how outputs and input folders are compared.
  static std::string normalised_path(const std::string& path);
  // `inner` equal to `outer` or below it, by whole path components (both normalised).
  static bool path_within(const std::string& inner, const std::string& outer);

 private:
  // Not an input file (any spelling, by inode) nor an input directory; with
  // `check_folder`, the folder it is written in can be made and written.
  void check_not_an_input(const std::string& path, const std::string& what, bool check_folder = true) const;
  std::set<std::pair<unsigned long long, unsigned long long>> files_;
  std::vector<std::string> dirs_;  // normalised_path
};

}  // namespace rass::batch
