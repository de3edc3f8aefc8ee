#include "rass/core/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "rass/core/error.hpp"

namespace rass {

namespace {
std::string errno_text() { return std::strerror(errno); }

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}
}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes) {
  const bool is_stdin = path == "-";
  int fd = is_stdin ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  const std::string name = is_stdin ? "<stdin>" : path;
  if (fd < 0) throw_bad_input(name, "cannot open: " + errno_text());
  std::vector<uint8_t> out;
  struct stat st {};
  if (!is_stdin && ::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      throw_bad_input(name, "is a directory, expected a file");
    }
    if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  }
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::string e = errno_text();
      if (!is_stdin) ::close(fd);
      throw_bad_input(name, "read error: " + e);
    }
    if (r == 0) break;
    out.insert(out.end(), buf, buf + r);
    if (max_bytes > 0 && out.size() > max_bytes) {
      if (!is_stdin) ::close(fd);
      throw_bad_input(name, "larger than " + std::to_string(max_bytes) + " bytes: not the file expected here");
    }
  }
  if (!is_stdin) ::close(fd);
  return out;
}

namespace {

// The last step of both writes: the complete temporary `tmp` becomes `path`
// when `ok`; on any failure (`e` says which) it is removed and the write throws.
void rename_into_place(const std::string& tmp, const std::string& path, bool ok, std::string e) {
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    e = errno_text();
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    throw_runtime(path + ": write failed: " + e);
  }
}

// The data go into a file without a name (O_TMPFILE) that gets the temporary
// name `tmp` only once complete and synced, then `path` by rename: a process
// killed while writing (SIGKILL, a job's time limit, SIGXFSZ) leaves nothing
// behind, where a named temporary was left for good. False where the
// filesystem or kernel has no O_TMPFILE (NFS, some cluster filesystems) or
// /proc is missing, both found before any data are written (and remembered,
// so a process does not try again for every file): the caller then writes
// `tmp` itself. Write errors throw as the caller's would.
bool write_unnamed_then_link(const std::string& path, const std::string& tmp, const uint8_t* p, size_t size) {
#ifdef O_TMPFILE
  static const bool proc_fd = ::access("/proc/self/fd", X_OK) == 0;  // linkat below names the file through it
  static std::atomic<bool> unsupported{false};
  if (!proc_fd || unsupported) return false;
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) unsupported = true;
    return false;
  }
  if (!write_all(fd, p, size) || ::fsync(fd) != 0) {
    const std::string e = errno_text();
    ::close(fd);
    throw_runtime(path + ": write failed: " + e);
  }
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    ::close(fd);
    return false;  // rare (checked above): write it again under the temporary name
  }
  const bool closed = ::close(fd) == 0;
  rename_into_place(tmp, path, closed, closed ? "" : errno_text());
  return true;
#else
  (void)path, (void)tmp, (void)p, (void)size;
  return false;
#endif
}

}  // namespace

std::string temporary_path(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (path == "-") {
    if (!write_all(1, p, size)) throw_runtime("<stdout>: write error: " + errno_text());
    return;
  }
  if (is_special_file(path)) {
    // A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written in place:
    // renaming a file over it would replace the device node itself.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw_runtime(path + ": cannot open: " + errno_text());
    bool ok = write_all(fd, p, size);
    std::string e = ok ? "" : errno_text();
    if (::close(fd) != 0 && ok) ok = false, e = errno_text();
    if (!ok) throw_runtime(path + ": write failed: " + e);
    return;
  }
  // Unique temporary name in the same directory (same filesystem, so rename is atomic).
  const std::string tmp = temporary_path(path);
  if (write_unnamed_then_link(path, tmp, p, size)) return;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw_runtime(path + ": cannot create: " + errno_text());
  bool ok = write_all(fd, p, size);
  // fsync before rename: after a node crash the final name holds all the data or nothing.
  if (ok && ::fsync(fd) != 0) ok = false;
  std::string e = ok ? "" : errno_text();
  if (::close(fd) != 0 && ok) {
    ok = false;
    e = errno_text();
  }
  rename_into_place(tmp, path, ok, e);
}

void make_directories(const std::string& dir) {
  if (dir.empty()) return;
  std::string cur;
  size_t i = 0;
  while (i <= dir.size()) {
    size_t j = dir.find('/', i);
    if (j == std::string::npos) j = dir.size();
    cur = dir.substr(0, j);
    if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      throw_runtime(cur + ": cannot create directory: " + errno_text());
    i = j + 1;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw_runtime(dir + ": not a directory");
}

bool is_special_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string path_stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find_last_of('.');
  return (dot == std::string::npos || dot == 0) ? base : base.substr(0, dot);
}

std::string path_extension_lower(const std::string& path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

std::string path_join(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace rass
