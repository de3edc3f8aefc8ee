#include "rass/batch/ordered_lines.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass::batch {

OrderedLines::OrderedLines(const std::string& path) : path_(path) {
  if (path.empty()) return;
  if (path == "-") {
    f_ = stdout;
    return;
  }
  if (is_special_file(path)) {  // /dev/null, a FIFO: written in place, never renamed over
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw_runtime(path + ": cannot open: " + std::strerror(errno));
    return;
  }
  tmp_ = temporary_path(path);
  f_ = std::fopen(tmp_.c_str(), "wbx");  // x: O_EXCL, never an existing file
  if (!f_) throw_runtime(path + ": cannot create: " + std::strerror(errno));
}

OrderedLines::~OrderedLines() {
  if (f_ && f_ != stdout) {
    std::fclose(f_);
    if (!tmp_.empty()) std::remove(tmp_.c_str());
  }
}

void OrderedLines::put(size_t index, std::string line) {
  if (!f_) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.emplace(index, std::move(line));
  for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it), ++next_)
    if (errno_ == 0 && std::fwrite(it->second.data(), 1, it->second.size(), f_) != it->second.size())
      errno_ = errno ? errno : EIO;
}

void OrderedLines::finish() {
  if (!f_) return;
  if (!pending_.empty()) throw_runtime(path_ + ": internal error: per-item lines missing");
  FILE* f = f_;
  f_ = nullptr;
  if (f == stdout) {
    if (std::fflush(stdout) != 0 && errno_ == 0) errno_ = errno;
    if (errno_ != 0) throw_runtime("<stdout>: write failed: " + std::string(std::strerror(errno_)));
    return;
  }
  if (errno_ == 0 && std::fflush(f) != 0) errno_ = errno;
  if (errno_ == 0 && !tmp_.empty() && ::fsync(fileno(f)) != 0) errno_ = errno;
  if (std::fclose(f) != 0 && errno_ == 0) errno_ = errno;
  if (tmp_.empty()) {  // written in place (a device or a FIFO)
    if (errno_ != 0) throw_runtime(path_ + ": write failed: " + std::strerror(errno_));
    return;
  }
  if (errno_ == 0 && std::rename(tmp_.c_str(), path_.c_str()) != 0) errno_ = errno;
  if (errno_ != 0) {
    std::remove(tmp_.c_str());
    throw_runtime(path_ + ": write failed: " + std::strerror(errno_));
  }
}

}  // namespace rass::batch
