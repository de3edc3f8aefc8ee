// A JSON file (config.json, records, indexes) read whole and parsed; errors
// name the file (exit code 3).
#pragma once
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rass {

// Nesting deeper than this is refused while parsing. nlohmann parses any
// depth, but copies, compares and prints values recursively: a config of
// 100000 '[' parsed fine, then crashed the tool (stack overflow) when the
// value was copied or quoted in a message. Real files nest a few levels.
constexpr int kMaxJsonDepth = 256;

// JSON text parsed, refusing nesting past kMaxJsonDepth and, with
// unique_keys, an object that holds one key twice: nlohmann keeps the last,
// so {"loop":{...},"loop":{...}} silently dropped a whole section of a
// config, and a manifest row with two "hq" fields used the second. Throws
// Json::parse_error, or std::runtime_error saying what was wrong.
template <class Json, class Text>
Json parse_json_checked(const Text& text, bool unique_keys) {
  std::vector<std::set<std::string>> open;
  typename Json::parser_callback_t check = [&open, unique_keys](int depth, typename Json::parse_event_t ev,
                                                                 Json& parsed) {
    if (ev == Json::parse_event_t::object_start || ev == Json::parse_event_t::array_start) {
      if (depth >= kMaxJsonDepth)
        throw std::runtime_error("nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
      if (ev == Json::parse_event_t::object_start && unique_keys) open.emplace_back();
    } else if (ev == Json::parse_event_t::object_end) {
      if (unique_keys && !open.empty()) open.pop_back();
    } else if (ev == Json::parse_event_t::key && unique_keys && !open.empty()) {
      const std::string k = parsed.template get<std::string>();
      if (!open.back().insert(k).second) throw std::runtime_error("the key \"" + k + "\" appears twice in one object");
    }
    return true;
  };
  return Json::parse(text.begin(), text.end(), check);
}
template <class Json, class Text>
Json parse_json_unique_keys(const Text& text) {
  return parse_json_checked<Json>(text, true);
}
// Any keys, the last of a repeated one kept (as Python's json does).
template <class Json, class Text>
Json parse_json_bounded(const Text& text) {
  return parse_json_checked<Json>(text, false);
}

// A value as a message may quote it: at most max_bytes of its JSON text
// (a whole array or object can be megabytes), "..." marking a cut.
template <class Json>
std::string json_excerpt(const Json& j, size_t max_bytes = 60) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes > 3 ? max_bytes - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + "...";
}

// Refused past max_bytes (0: kMaxJsonFileBytes), and from its first block
// when it holds a NUL byte, which JSON text never does: a config.json or
// vocab.json linked to /dev/zero grew until the memory ran out (see
// read_text_file_bytes). Files of this project (train configs, records)
// refuse a key given twice (Keys::unique); files of other programs (a model
// folder's config.json, vocab.json) keep the last, as Python's json and
// diffusers read them.
constexpr size_t kMaxJsonFileBytes = size_t(64) << 20;
enum class Keys { last_wins, unique };
nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes = 0, Keys keys = Keys::last_wins);
// The text of a file already read (`name` in messages), parsed as read_json_file does.
nlohmann::ordered_json parse_json_file_text(const std::vector<uint8_t>& bytes, const std::string& name,
                                            Keys keys = Keys::last_wins);

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
