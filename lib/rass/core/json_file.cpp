#include "rass/core/json_file.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass {

nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes, Keys keys) {
  const auto bytes = read_file_bytes(path, max_bytes);
  try {
    if (keys == Keys::last_wins) return nlohmann::ordered_json::parse(bytes.begin(), bytes.end());
    return parse_json_unique_keys<nlohmann::ordered_json>(bytes);
  } catch (const std::exception& e) {
    throw_bad_input(path, std::string("invalid JSON: ") + e.what());
  }
}

void throw_json_not_utf8(const std::string& path) {
  throw_usage(path + ": would hold text that is not UTF-8 (a file name, key or value given to this run); JSON "
              "files must be UTF-8 to be read back: rename it or give that value in UTF-8");
}

}  // namespace rass
