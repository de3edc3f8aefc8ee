#include "rass/core/error.hpp"

#include <cstdio>

namespace rass {

std::string printable_message(const std::string& message) {
  std::string out;
  out.reserve(message.size());
  char hex[8];
  for (size_t i = 0; i < message.size(); ++i) {
    const auto c = static_cast<unsigned char>(message[i]);
    if (c == 0) {
      out += "\\0";
    } else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else if (c == 0xc2 && i + 1 < message.size() && static_cast<unsigned char>(message[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(message[i + 1]) <= 0x9f) {
      // U+0080..U+009F in UTF-8: a C1 control such as CSI (U+009B).
      std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned char>(message[++i]));
      out += hex;
    } else {
      out += char(c);
    }
  }
  return out;
}

}  // namespace rass
