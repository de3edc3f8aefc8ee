#include "rass/core/error.hpp"

#include <cstdio>

namespace rass {

namespace {

// The length of the valid UTF-8 sequence at s[i] (1-4), or 0 where none
// starts there (a stray continuation byte, a bad lead, an overlong form, a
// surrogate, past U+10FFFF, or cut short).
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c == 0xe0) n = 3, lo = 0xa0;
  else if (c == 0xed) n = 3, hi = 0x9f;
  else if (c >= 0xe1 && c <= 0xef) n = 3;
  else if (c == 0xf0) n = 4, lo = 0x90;
  else if (c == 0xf4) n = 4, hi = 0x8f;
  else if (c >= 0xf1 && c <= 0xf3) n = 4;
  else return 0;
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  return n;
}

}  // namespace

std::string printable_message(const std::string& message) {
  std::string out;
  out.reserve(message.size());
  char hex[8];
  for (size_t i = 0; i < message.size();) {
    const auto c = static_cast<unsigned char>(message[i]);
    const size_t n = utf8_length(message, i);
    if (c == 0) {
      out += "\\0";
    } else if (n == 0 || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      // A control character, or a byte that is not UTF-8 (a lone 0x9b is
      // CSI to a terminal in an 8-bit mode).
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else if (n == 2 && c == 0xc2 && static_cast<unsigned char>(message[i + 1]) <= 0x9f) {
      // U+0080..U+009F: a C1 control such as CSI (U+009B).
      std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned char>(message[i + 1]));
      out += hex;
    } else {
      out.append(message, i, n == 0 ? 1 : n);
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

}  // namespace rass
