#include "rass/core/json_file.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass {

nlohmann::ordered_json read_json_file(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  try {
    return nlohmann::ordered_json::parse(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw_bad_input(path, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace rass
