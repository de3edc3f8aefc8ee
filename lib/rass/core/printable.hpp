// A name as one cell of a plain-text table on stdout (rass-eval-iqa's and
// rass-eval-miou's tables, rass-merge-lora list): file names, keys and class
// names come from outside, and an escape sequence in one retitled, cleared
// or recoloured the terminal the table was printed on, and a newline or tab
// broke the table's rows and columns. --json and CSV keep the raw text.
#pragma once
#include <string>

namespace rass {

// printable_message's escapes (error.hpp: controls as "\xHH", C1 as
// "\u00HH"), and newline and tab, which it keeps, as "\n" and "\t".
std::string printable_field(const std::string& text);

}  // namespace rass
