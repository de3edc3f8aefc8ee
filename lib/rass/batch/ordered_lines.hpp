// Per-item JSON lines in input order, whatever order the workers finish in:
// a line is written once every earlier one is there, so a reader of stdout
// sees each record as soon as it can. A file is an AtomicFile: it appears
// under its name only at finish(), complete and synced, and a killed run
// leaves nothing behind. "-" streams to stdout. Every write is checked.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "rass/core/file.hpp"

namespace rass::batch {

class OrderedLines {
 public:
  explicit OrderedLines(const std::string& path);  // "" = disabled
  OrderedLines(const OrderedLines&) = delete;
  OrderedLines& operator=(const OrderedLines&) = delete;
  bool enabled() const { return file_ != nullptr; }
  void put(size_t index, std::string line);  // `line` ends with '\n'
  // Writes out, fsyncs and renames; throws Error(runtime) naming the file on
  // the first write failure (a full disk, a closed pipe), kept until now so
  // the workers are not stopped mid-item.
  void finish();

 private:
  std::string path_;
  std::unique_ptr<AtomicFile> file_;  // without finish(): discarded, nothing left
  std::mutex mu_;
  std::map<size_t, std::string> pending_;
  size_t next_ = 0;
  std::string error_;  // the first write failure
};

}  // namespace rass::batch
