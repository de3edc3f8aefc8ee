#include "rass/core/printable.hpp"

#include "rass/core/error.hpp"

namespace rass {

std::string printable_field(const std::string& text) {
  const std::string shown = printable_message(text);
  std::string out;
  out.reserve(shown.size());
  for (const char c : shown) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out;
}

}  // namespace rass
