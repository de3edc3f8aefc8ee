#include "rass/core/oom_message.hpp"

namespace rass {

std::string allocation_failure_line(const std::string& what) {
  if (what.find("can't allocate memory") == std::string::npos && what.find("out of memory") == std::string::npos)
    return "";
  std::string line = what.substr(0, what.find('\n'));  // no C++ stack after it
  // "[enforce fail at alloc_cpu.cpp:75] err == 0. " says where, not what.
  if (line.rfind("[enforce fail", 0) == 0) {
    const size_t dot = line.find(". ", line.find("] "));
    if (dot != std::string::npos) line.erase(0, dot + 2);
  }
  return line;
}

std::string describe_allocation_failure(const std::string& what) {
  const std::string line = allocation_failure_line(what);
  if (line.empty()) return what;
  if (line.rfind("out of memory", 0) == 0) return line;  // already said
  return "out of memory (" + line + "): a smaller input, batch or tile may fit";
}

}  // namespace rass
