#include "rass/core/json_file.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass {

nlohmann::ordered_json read_json_file(const std::string& path, size_t max_bytes, Keys keys) {
  return parse_json_file_text(read_text_file_bytes(path, max_bytes > 0 ? max_bytes : kMaxJsonFileBytes), path, keys);
}

nlohmann::ordered_json parse_json_file_text(const std::vector<uint8_t>& bytes, const std::string& name, Keys keys) {
  try {
    return parse_json_checked<nlohmann::ordered_json>(bytes, keys == Keys::unique);
  } catch (const std::exception& e) {
    throw_bad_input(name, std::string("invalid JSON: ") + e.what());
  }
}

void throw_json_not_utf8(const std::string& path) {
  throw_usage(path + ": would hold text that is not UTF-8 (a file name, key or value given to this run); JSON "
              "files must be UTF-8 to be read back: rename it or give that value in UTF-8");
}

std::string escape_json_controls(std::string text) {
  auto is_control = [&](size_t i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0x7F) return 1;
    // 0xC2 is only ever a lead byte in UTF-8; C2 80-9F is U+0080-U+009F.
    if (c == 0xC2 && i + 1 < text.size()) {
      const auto d = static_cast<unsigned char>(text[i + 1]);
      if (d >= 0x80 && d <= 0x9F) return 2;
    }
    return 0;
  };
  size_t i = 0;
  while (i < text.size() && !is_control(i)) ++i;
  if (i == text.size()) return text;  // the usual case: nothing to copy
  std::string out = text.substr(0, i);
  static const char hex[] = "0123456789abcdef";
  while (i < text.size()) {
    const int n = is_control(i);
    if (n == 0) {
      out += text[i++];
      continue;
    }
    const unsigned cp = n == 1 ? 0x7F : static_cast<unsigned char>(text[i + 1]);
    out += "\\u00";
    out += hex[cp >> 4];
    out += hex[cp & 0xF];
    i += n;
  }
  return out;
}

}  // namespace rass
