// Whole-file I/O with `-` meaning stdin/stdout, and atomic output: data goes to
// a temporary file in the destination directory, then rename(2), so a killed
// job never leaves a half-written file under the final name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rass {

// Reads a whole file ("-" = stdin). Throws Error(bad_input) naming the path if
// it cannot be opened or read, or (max_bytes > 0) when it holds more than
// max_bytes: a device such as /dev/zero or an endless pipe then ends in an
// error instead of filling the memory.
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes = 0);

// Writes bytes atomically ("-" = stdout). Creates no partial file on failure.
// Throws Error(runtime) naming the path.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// A temporary name next to `path` (same filesystem, so rename(2) is atomic),
// unique within the process and across processes.
std::string temporary_path(const std::string& path);

// mkdir -p. Throws Error(runtime) on failure.
void make_directories(const std::string& dir);
bool file_exists(const std::string& path);
// An existing path that is neither a regular file nor a directory (a device
// such as /dev/null, a FIFO): outputs there are written in place, not renamed over.
bool is_special_file(const std::string& path);

// Path helpers: "a/b/c.png" -> stem "c", extension ".png" (lower-cased), dirname "a/b".
std::string path_stem(const std::string& path);
std::string path_extension_lower(const std::string& path);
std::string path_join(const std::string& dir, const std::string& name);

}  // namespace rass
