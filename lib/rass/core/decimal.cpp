#include "rass/core/decimal.hpp"

#include <cmath>
#include <cstdlib>

namespace rass {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

bool parse_decimal(const std::string& text, double* out, bool* out_of_range) {
  if (out_of_range) *out_of_range = false;
  // The grammar is checked here; strtod only converts (the "C" locale's
  // point: no tool calls setlocale).
  size_t i = 0;
  const size_t n = text.size();
  if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
  size_t digits = 0;
  while (i < n && is_digit(text[i])) ++i, ++digits;
  if (i < n && text[i] == '.') {
    ++i;
    while (i < n && is_digit(text[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < n && is_digit(text[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != n) return false;
  const double v = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(v)) {  // past the double range (1e400)
    if (out_of_range) *out_of_range = true;
    return false;
  }
  *out = v;
  return true;
}

}  // namespace rass
