// A JSON file (config.json, records, indexes) read whole and parsed; errors
// name the file (exit code 3).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rass {

// max_bytes > 0: refused past that size (see read_file_bytes).
nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes = 0);

}  // namespace rass
