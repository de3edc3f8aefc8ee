#include "rass/batch/ordered_lines.hpp"

#include "rass/core/error.hpp"

namespace rass::batch {

OrderedLines::OrderedLines(const std::string& path) : path_(path) {
  if (!path.empty()) file_ = std::make_unique<AtomicFile>(path);
}

void OrderedLines::put(size_t index, std::string line) {
  if (!file_) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.emplace(index, std::move(line));
  for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it), ++next_) {
    if (!error_.empty()) continue;
    try {
      file_->write(it->second);
    } catch (const Error& e) {
      error_ = e.what();
    }
  }
}

void OrderedLines::finish() {
  if (!file_) return;
  const std::unique_ptr<AtomicFile> file = std::move(file_);
  if (!pending_.empty()) throw_runtime((path_ == "-" ? "<stdout>" : path_) + ": internal error: per-item lines missing");
  if (!error_.empty()) throw_runtime(error_);
  file->commit();
}

}  // namespace rass::batch
