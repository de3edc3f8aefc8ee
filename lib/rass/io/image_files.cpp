#include "rass/io/image_files.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace fs = std::filesystem;

namespace rass {

bool has_image_extension(const std::string& path) {
  const std::string ext = path_extension_lower(path);
  for (const char* e : {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pbm", ".pnm"})
    if (ext == e) return true;
  return false;
}

namespace {

using DirId = std::pair<dev_t, ino_t>;

bool dir_id(const std::string& path, DirId* id) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;  // not a stale errno for the caller's message
    return false;
  }
  *id = {st.st_dev, st.st_ino};
  return true;
}

// Depth-first walk. Directory links are followed (datasets are often trees of
// links), but a directory already entered, by any path, is not entered again:
// a link loop or two links to one folder list each file once.
void walk(const std::string& dir, const std::function<bool(const std::string&)>& keep, const std::set<DirId>& skip,
          std::set<DirId>& seen, std::vector<std::string>& found, std::set<std::string>* not_regular, bool top) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    if (top) throw_bad_input(dir, "cannot list directory: " + ec.message());
    throw_bad_input(dir, "cannot list directory (inside an input): " + ec.message());
  }
  std::vector<std::string> subdirs;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string p = it->path().string();
    std::error_code ie;
    if (it->is_directory(ie)) {  // follows links
      subdirs.push_back(p);
    } else if (it->is_regular_file(ie) && keep(p)) {
      found.push_back(p);
    } else if (it->is_symlink(ie) && !it->exists(ie) && keep(p)) {
      found.push_back(p);  // a dangling link: listed, so reading it reports the file instead of skipping it silently
    } else if (keep(p) && it->exists(ie)) {
      found.push_back(p);  // a FIFO, socket or device under a kept name: listed, for the caller to name it
      if (not_regular) not_regular->insert(p);
    }
  }
  if (ec) throw_bad_input(dir, "cannot list directory: " + ec.message());
  std::sort(subdirs.begin(), subdirs.end());
  for (const std::string& s : subdirs) {
    DirId id;
    if (!dir_id(s, &id)) {
      // Gone since it was listed: nothing to read. Any other failure (a path
      // past PATH_MAX, ELOOP) would leave its files out without a word.
      if (errno == ENOENT || errno == ENOTDIR) continue;
      throw_bad_input(s, std::string("cannot enter directory (inside an input): ") + std::strerror(errno));
    }
    if (skip.count(id) || !seen.insert(id).second) continue;
    walk(s, keep, skip, seen, found, not_regular, false);
  }
}

}  // namespace

std::vector<std::string> list_files(const std::string& dir, const std::function<bool(const std::string&)>& keep,
                                    const std::vector<std::string>& skip_dirs, std::set<std::string>* not_regular) {
  std::set<DirId> skip, seen;
  for (const std::string& s : skip_dirs) {
    DirId id;
    if (!s.empty() && dir_id(s, &id)) skip.insert(id);
  }
  DirId root;
  if (!dir_id(dir, &root)) throw_bad_input(dir, "cannot list directory: not a readable directory");
  seen.insert(root);
  std::vector<std::string> found;
  walk(dir, keep, skip, seen, found, not_regular, true);
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace rass
