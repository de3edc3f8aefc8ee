#include "rass/core/text_lines.hpp"

#include "rass/core/file.hpp"

namespace rass {

std::vector<std::string> text_lines(const std::vector<uint8_t>& bytes) {
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = utf8_bom_size(bytes.data(), bytes.size()); i < bytes.size(); ++i) {
    const uint8_t b = bytes[i];
    if (b == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') continue;  // CRLF: the LF ends it
    if (b == '\n' || b == '\r') {
      lines.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += char(b);
    }
  }
  if (!cur.empty()) lines.push_back(std::move(cur));
  return lines;
}

}  // namespace rass
