// The lines of a text file, one rule for the line-based files the tools read.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rass {

// The lines of a text file's bytes (tag files, manifests): a UTF-8
// byte-order mark skipped; a line ends in LF, CRLF or a lone CR (classic Mac
// files); a last line without its end counts unless it is empty.
std::vector<std::string> text_lines(const std::vector<uint8_t>& bytes);

}  // namespace rass
