// No tool ever writes over one of its inputs. Before any work, a tool tells
// the guard its inputs and checks each output it will write: an output that
// is an input file (by device and inode, so links and other spellings of the
// path count), or an output directory equal to or inside an input directory,
// is refused with Error(usage), exit 2.
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace rass::batch {

class OutputGuard {
 public:
  void add_input(const std::string& path);  // a file or a directory ("-" and missing paths are ignored)
  void check_output_file(const std::string& path, const std::string& what) const;  // what: "-o", "--csv", ...
  void check_output_dir(const std::string& dir, const std::string& what) const;
  // check_output_file, and also refuses a file anywhere inside an input
  // directory (tools whose inputs are whole folders: a model folder, a
  // tokenizer folder, a dictionary folder).
  void check_output_file_outside_dirs(const std::string& path, const std::string& what) const;

 private:
  std::set<std::pair<unsigned long long, unsigned long long>> files_;
  std::vector<std::string> dirs_;  // canonical
};

}  // namespace rass::batch
