#include "rass/core/found_file.hpp"

#include <sys/stat.h>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"

namespace rass {

void require_found_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;
  throw_bad_input(path, std::string("is not a regular file but a ") +
                            (S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO" : "device or socket") +
                            " (" + what + " is expected there)");
}

nlohmann::ordered_json read_found_json(const std::string& path) {
  require_found_file(path, "a JSON file");
  return read_json_file(path);
}

}  // namespace rass
