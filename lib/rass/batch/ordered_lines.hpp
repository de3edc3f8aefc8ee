// Per-item JSON lines in input order, whatever order the workers finish in:
// a line is written once every earlier one is there. A file is written under
// a temporary name in its directory, fsync'd and renamed by finish(), so a
// killed run leaves no partial file under the final name; "-" streams to
// stdout. Every write is checked.
#pragma once
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

namespace rass::batch {

class OrderedLines {
 public:
  explicit OrderedLines(const std::string& path);  // "" = disabled
  ~OrderedLines();                                  // without finish(): the temporary file is removed
  OrderedLines(const OrderedLines&) = delete;
  OrderedLines& operator=(const OrderedLines&) = delete;
  bool enabled() const { return f_ != nullptr; }
  void put(size_t index, std::string line);  // `line` ends with '\n'
  // Writes out, fsyncs and renames; throws Error(runtime) naming the file on any failure.
  void finish();

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  std::mutex mu_;
  std::map<size_t, std::string> pending_;
  size_t next_ = 0;
  int errno_ = 0;  // first write error
};

}  // namespace rass::batch
