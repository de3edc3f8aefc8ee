#include "rass/batch/output_guard.hpp"

#include <sys/stat.h>

#include <filesystem>

#include "rass/core/error.hpp"

namespace fs = std::filesystem;

namespace rass::batch {

namespace {

std::string canonical(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal().string() : c.string();
}

// `inner` equal to `outer` or below it (whole path components).
bool within(const std::string& inner, const std::string& outer) {
  if (inner == outer) return true;
  const std::string o = outer.back() == '/' ? outer : outer + "/";
  return inner.compare(0, o.size(), o) == 0;
}

}  // namespace

void OutputGuard::add_input(const std::string& path) {
  if (path.empty() || path == "-") return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) dirs_.push_back(canonical(path));
  else files_.insert({(unsigned long long)st.st_dev, (unsigned long long)st.st_ino});
}

void OutputGuard::check_output_file(const std::string& path, const std::string& what) const {
  if (path.empty() || path == "-") return;
  // Also the lexically normal form: "out/../a.png" is a.png even while out/ does not exist yet.
  std::error_code ec;
  const std::string normal = fs::absolute(path, ec).lexically_normal().string();
  for (const std::string& p : {path, normal}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && files_.count({(unsigned long long)st.st_dev, (unsigned long long)st.st_ino}))
      throw_usage(what + " " + path + " is one of the inputs: refusing to write over an input");
  }
  for (const std::string& in : dirs_)
    if (normal == in) throw_usage(what + " " + path + " is an input directory");
}

void OutputGuard::check_output_dir(const std::string& dir, const std::string& what) const {
  if (dir.empty() || dir == "-") return;
  const std::string out = canonical(dir);
  for (const std::string& in : dirs_)
    if (within(out, in))
      throw_usage(what + " " + dir + (out == in ? " is" : " is inside") + " the input directory " + in +
                  ": outputs could replace or mix with the inputs; choose an output directory outside it");
  check_output_file(dir, what);
}

void OutputGuard::check_output_file_outside_dirs(const std::string& path, const std::string& what) const {
  if (path.empty() || path == "-") return;
  check_output_file(path, what);
  const std::string out = canonical(path);
  for (const std::string& in : dirs_)
    if (within(out, in))
      throw_usage(what + " " + path + " is inside the input folder " + in + ": refusing to write into an input");
}

}  // namespace rass::batch
