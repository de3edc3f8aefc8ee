#include "rass/io/image_files.hpp"

#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace fs = std::filesystem;

namespace rass {

bool has_image_extension(const std::string& path) {
  const std::string ext = path_extension_lower(path);
  for (const char* e : {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm"})
    if (ext == e) return true;
  return false;
}

std::vector<std::string> list_files(const std::string& dir, const std::function<bool(const std::string&)>& keep,
                                    const std::string& skip_dir) {
  std::vector<std::string> found;
  std::error_code ec, sec;
  const fs::path skip = skip_dir.empty() ? fs::path() : fs::weakly_canonical(skip_dir, sec);
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ie;
    if (!skip.empty() && it->is_directory(ie) && fs::weakly_canonical(it->path(), ie) == skip) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ie) && keep(it->path().string())) found.push_back(it->path().string());
  }
  if (ec) throw_bad_input(dir, "cannot list directory: " + ec.message());
  return found;
}

}  // namespace rass
