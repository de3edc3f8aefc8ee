#include "rass/core/found_file.hpp"

#include <sys/stat.h>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"

namespace rass {

std::string found_file_problem(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return "";
  return std::string("is not a regular file but a ") +
         (S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO" : "device or socket") + " (" + what +
         " is expected there)";
}

void require_found_file(const std::string& path, const std::string& what) {
  if (const std::string why = found_file_problem(path, what); !why.empty()) throw_bad_input(path, why);
}

nlohmann::ordered_json read_found_json(const std::string& path, bool unique_keys) {
  require_found_file(path, "a JSON file");
  return read_json_file(path, 0, unique_keys ? Keys::unique : Keys::last_wins);
}

}  // namespace rass
