// Errors carry the process exit code of DESIGN.md, so a tool's main only has
// to catch rass::Error and return its code.
#pragma once
#include <stdexcept>
#include <string>

namespace rass {

enum class ExitCode : int {
  ok = 0,
  runtime = 1,    // runtime failure (I/O error on output, out of memory, ...)
  usage = 2,      // bad flags or arguments
  bad_input = 3,  // unreadable image, size mismatch, wrong tensor shape, ...
};

// A message as it may reach a terminal: a NUL byte as "\0" (what() is a C
// string, so a NUL in a manifest key "a\u0000b" would cut the message
// there), the other control characters but newline and tab, and every byte
// that is not part of valid UTF-8 (a lone 0x9b is CSI in an 8-bit
// terminal), as "\xHH", and the C1 controls (U+0080-U+009F, which some
// terminals obey) as "\u00HH". A file name with an escape sequence in it
// then cannot retitle, recolour or rewrite the user's terminal when a tool
// names it. Applying it twice changes nothing more.
std::string printable_message(const std::string& message);

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message)
      : std::runtime_error(printable_message(message)), code_(code) {}
  ExitCode code() const { return code_; }
  int exit_code() const { return static_cast<int>(code_); }

 private:
  ExitCode code_;
};

// "<file>: <what>" with exit code 3 (bad input data).
[[noreturn]] inline void throw_bad_input(const std::string& file, const std::string& what) {
  throw Error(ExitCode::bad_input, file + ": " + what);
}
[[noreturn]] inline void throw_usage(const std::string& what) {
  throw Error(ExitCode::usage, what);
}
[[noreturn]] inline void throw_runtime(const std::string& what) {
  throw Error(ExitCode::runtime, what);
}

}  // namespace rass
