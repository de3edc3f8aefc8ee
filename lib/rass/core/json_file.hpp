// A JSON file (config.json, records, indexes) read whole and parsed; errors
// name the file (exit code 3).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rass {

// max_bytes > 0: refused past that size (see read_file_bytes).
nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes = 0);

// JSON as text for records, reports and logs (stdout, --per-image, training
// logs). Strings from outside (file names, keys, prompts, tags, messages
// naming files) need not be UTF-8, and nlohmann's plain dump() throws on
// them, which ended a whole run over one file name: their invalid bytes
// become U+FFFD instead.
template <class Json>
std::string json_text(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// JSON as text for files that are read back or compared (model and run
// configs, manifests, checkpoint metadata, safetensors headers): a string
// that is not UTF-8 cannot round-trip, so it is refused (Error(usage), naming
// `path`, the file it was to go into), never silently changed.
[[noreturn]] void throw_json_not_utf8(const std::string& path);
template <class Json>
std::string json_file_text(const Json& j, const std::string& path, int indent = -1) {
  try {
    return j.dump(indent);
  } catch (const typename Json::type_error&) {
    throw_json_not_utf8(path);
  }
}

}  // namespace rass
