// A JSON file (config.json, records, indexes) read whole and parsed; errors
// name the file (exit code 3).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rass {

nlohmann::ordered_json read_json_file(const std::string& path);

}  // namespace rass
