// A JSON file (config.json, records, indexes) read whole and parsed; errors
// name the file (exit code 3).
#pragma once
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass {

// JSON text parsed, refusing an object that holds one key twice: nlohmann
// keeps the last, so {"loop":{...},"loop":{...}} silently dropped a whole
// section of a config, and a manifest row with two "hq" fields used the
// second. Throws Json::parse_error, or std::runtime_error naming the key.
template <class Json, class Text>
Json parse_json_unique_keys(const Text& text) {
  std::vector<std::set<std::string>> open;
  typename Json::parser_callback_t check = [&open](int, typename Json::parse_event_t ev, Json& parsed) {
    if (ev == Json::parse_event_t::object_start) {
      open.emplace_back();
    } else if (ev == Json::parse_event_t::object_end) {
      if (!open.empty()) open.pop_back();
    } else if (ev == Json::parse_event_t::key && !open.empty()) {
      const std::string k = parsed.template get<std::string>();
      if (!open.back().insert(k).second) throw std::runtime_error("the key \"" + k + "\" appears twice in one object");
    }
    return true;
  };
  return Json::parse(text.begin(), text.end(), check);
}

// max_bytes > 0: refused past that size (see read_file_bytes). Files of
// this project (train configs, records) refuse a key given twice
// (Keys::unique); files of other programs (a model folder's config.json,
// vocab.json) keep the last, as Python's json and diffusers read them.
enum class Keys { last_wins, unique };
nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes = 0, Keys keys = Keys::last_wins);

// DEL and the C1 controls (U+0080-U+009F: U+009B is CSI to many
// terminals) written as \u escapes in JSON text, which nlohmann writes raw;
// the same strings when parsed. Only inside strings can such bytes be, so
// the text is rewritten bytewise.
std::string escape_json_controls(std::string text);

// JSON as text for records, reports and logs (stdout, --per-image, training
// logs). Strings from outside (file names, keys, prompts, tags, messages
// naming files) need not be UTF-8, and nlohmann's plain dump() throws on
// them, which ended a whole run over one file name: their invalid bytes
// become U+FFFD instead. No raw control character reaches a terminal
// (escape_json_controls: nlohmann escapes only U+0000-U+001F).
template <class Json>
std::string json_text(const Json& j, int indent = -1) {
  return escape_json_controls(j.dump(indent, ' ', false, Json::error_handler_t::replace));
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
