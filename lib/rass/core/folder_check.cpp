#include "rass/core/folder_check.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "rass/core/error.hpp"

namespace rass {

std::string folder_problem(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? "" : "is not a folder";
  const int err = errno;
  if (err == ENOENT) {
    struct stat link;
    return ::lstat(path.c_str(), &link) == 0 ? "is a broken symbolic link" : "does not exist";
  }
  if (err == ELOOP) return "is a symbolic-link loop";
  if (err == ENOTDIR) return "does not exist (a part of the path is not a folder)";
  return std::string("cannot be examined (") + std::strerror(err) + ")";
}

void require_folder(const std::string& path, const std::string& what) {
  const std::string problem = folder_problem(path);
  if (!problem.empty()) throw_bad_input(path, problem + " (" + what + ")");
}

}  // namespace rass
