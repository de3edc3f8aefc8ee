// One grammar for the numbers people type (flags, settings, table scores,
// metadata): strtod alone also takes hexadecimal ("0x1p3" = 8), "inf",
// "nan", "infinity" and leading blanks, which no user means as a number.
#pragma once
#include <string>

namespace rass {

// `text` is a finite decimal number: [+-] digits [. digits] [e|E [+-] digits]
// (".5" and "5." too), nothing before or after. On success *out holds it
// (values below the smallest double read as 0 or subnormal, as strtod's);
// false for anything else, a value past the double range included (then
// *out_of_range, when given, is set: the text is a number, too large).
bool parse_decimal(const std::string& text, double* out, bool* out_of_range = nullptr);

}  // namespace rass
