// A JSON file (config.json, records, indexes) read whole and parsed; errors
// name the file (exit code 3).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rass {

// max_bytes > 0: refused past that size (see read_file_bytes).
nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes = 0);

// JSON as text, for every record, report and file the tools write. Strings
// from outside (file names, keys, prompts, tags, messages naming files) need
// not be UTF-8, and nlohmann's plain dump() throws on them, which ended a
// whole run over one file name: their invalid bytes become U+FFFD instead.
template <class Json>
std::string json_text(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

}  // namespace rass
