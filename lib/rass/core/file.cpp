#include "rass/core/file.hpp"

#include <fcntl.h>
#include <sys/file.h>
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
  return read_file_bytes(path, max_bytes, nullptr);
}

std::vector<uint8_t> read_text_file_bytes(const std::string& path, size_t max_bytes) {
  const std::string name = path == "-" ? "<stdin>" : path;
  return read_file_bytes(path, max_bytes, [&](const uint8_t* p, size_t n) {
    if (std::memchr(p, 0, n)) throw_bad_input(name, "holds NUL bytes: not a text file");
  });
}

std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes, const HeadCheck& head_check,
                                     const std::string& over_limit) {
  HeadCheck head = head_check;  // cleared once called
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
    if (head && out.size() >= 16) {
      try {
        head(out.data(), out.size());
      } catch (...) {
        if (!is_stdin) ::close(fd);
        throw;
      }
      head = nullptr;  // once
    }
    if (max_bytes > 0 && out.size() > max_bytes) {
      if (!is_stdin) ::close(fd);
      throw_bad_input(name, "larger than " + std::to_string(max_bytes) + " bytes: " +
                                (over_limit.empty() ? std::string("not the file expected here") : over_limit));
    }
  }
  if (!is_stdin) ::close(fd);
  if (head) head(out.data(), out.size());  // a file shorter than 16 bytes
  return out;
}

namespace {

// Whether files without a name work here. Checked before any data are
// written and remembered, so a process on a filesystem without O_TMPFILE
// does not try again for every file.
std::atomic<bool> unnamed_unsupported{false};

// An unnamed file in `path`'s directory, opened for reading too (see
// copy_all), or -1 where there is none to be had.
int open_unnamed(const std::string& path) {
#ifdef O_TMPFILE
  static const bool proc_fd = ::access("/proc/self/fd", X_OK) == 0;  // linkat in commit() names the file through it
  if (!proc_fd || unnamed_unsupported) return -1;
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) unnamed_unsupported = true;
  return fd;
#else
  (void)path;
  return -1;
#endif
}

// The whole of `from`, read from its start, into `to`: where an unnamed file
// could not be linked (rare: /proc was checked), its data go to a named
// temporary rather than being lost.
bool copy_all(int from, int to) {
  uint8_t buf[1 << 16];
  for (off_t at = 0;;) {
    const ssize_t r = ::pread(from, buf, sizeof buf, at);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    if (!write_all(to, buf, size_t(r))) return false;
    at += r;
  }
}

// A new named temporary next to `path` (its name in `tmp`), or -1 with errno
// set. A name left by a killed process with the same PID (containers reuse
// small PIDs) is skipped, not taken as an error.
// `cleanup` holds the name once the file is made (never before: the name
// may be another process's, in another PID namespace).
int create_temporary(const std::string& path, std::string& tmp, SignalCleanup& cleanup) {
  for (int tries = 0; tries < 100; ++tries) {
    tmp = temporary_path(path);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) cleanup.arm(tmp.c_str());
    if (fd >= 0 || errno != EEXIST) {
      if (fd < 0) tmp.clear();
      return fd;
    }
  }
  tmp.clear();
  return -1;
}

// The descriptor a path stands for, or -1: /dev/stdout, /dev/stderr,
// /dev/fd/N, /proc/self/fd/N (and /proc/<own pid>/fd/N), directly or through
// links. Such a path means "the file this process already has open" (as a
// shell redirect set it up), so it is written through that descriptor: a
// temporary renamed over the name would replace the link itself (as root,
// /dev/stdout) and the data would not reach stdout's file.
int descriptor_of(const std::string& path) {
  const std::string own = "/proc/" + std::to_string(::getpid()) + "/fd/";
  std::string p = path;
  for (int hops = 0; hops < 40; ++hops) {  // as the kernel's link limit
    if (p == "/dev/stdout") return STDOUT_FILENO;
    if (p == "/dev/stderr") return STDERR_FILENO;
    for (const std::string& dir : {std::string("/dev/fd/"), std::string("/proc/self/fd/"), own}) {
      if (p.compare(0, dir.size(), dir) != 0) continue;
      const std::string n = p.substr(dir.size());
      if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos) return -1;
      return std::stoi(n);
    }
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return -1;
    char buf[4096];
    const ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return -1;
    std::string target(buf, size_t(n));
    if (target[0] != '/') {  // relative to the link's folder
      const size_t slash = p.rfind('/');
      target = (slash == std::string::npos ? "" : p.substr(0, slash + 1)) + target;
    }
    p = target;
  }
  return -1;
}

}  // namespace

bool names_stdout(const std::string& path) { return path == "-" || descriptor_of(path) == STDOUT_FILENO; }

bool names_descriptor(const std::string& path) { return path == "-" || descriptor_of(path) >= 0; }

bool removable_output(const std::string& path) {
  return !path.empty() && path != "-" && descriptor_of(path) < 0 && !is_special_file(path);
}

// Standard descriptors that were closed at start (occupy_closed_std_fds):
// still "not open" to the user, whatever now holds their numbers.
static unsigned g_filled_std_fds = 0;

void check_descriptor_output(const std::string& path) {
  const int fd = path == "-" ? -1 : descriptor_of(path);
  if (fd < 0) return;
  if (fd <= 2 && (g_filled_std_fds & (1u << fd)))
    throw_usage(path + ": descriptor " + std::to_string(fd) + " is not open");
  const int fd_flags = ::fcntl(fd, F_GETFD), fl = ::fcntl(fd, F_GETFL);
  if (fd_flags < 0 || fl < 0) throw_usage(path + ": descriptor " + std::to_string(fd) + " is not open");
  if (fd_flags & FD_CLOEXEC)
    throw_usage(path + ": descriptor " + std::to_string(fd) + " is one this program opened itself, not an output");
  if ((fl & O_ACCMODE) == O_RDONLY) throw_usage(path + ": descriptor " + std::to_string(fd) + " is open for reading only");
}

std::string temporary_path(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const std::string suffix = ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  // A name near the filesystem's limit (255 bytes) must still get a
  // temporary: its base name is shortened (at a UTF-8 character boundary)
  // so that the suffix fits.
  constexpr size_t kNameMax = 255;
  const size_t slash = path.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  size_t keep = path.size() - base;
  if (keep + suffix.size() <= kNameMax) return path + suffix;
  keep = kNameMax - suffix.size();
  while (keep > 0 && (static_cast<unsigned char>(path[base + keep]) & 0xC0) == 0x80) --keep;
  return path.substr(0, base + keep) + suffix;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  const int fd = path_ == "-" ? STDOUT_FILENO : descriptor_of(path_);
  if (fd >= 0) {  // "-", /dev/stdout, /dev/fd/3: written through the open descriptor, never closed here
    if (path_ != "-") check_descriptor_output(path_);
    kind_ = Kind::descriptor;
    fd_ = fd;
    return;
  }
  if (is_special_file(path_)) {
    // A device or a pipe (/dev/null, /dev/tty, a FIFO) is written in place:
    // renaming a file over it would replace the device node itself.
    kind_ = Kind::in_place;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) throw_runtime(path_ + ": cannot open: " + errno_text());
    return;
  }
  // Its folder is made if missing (mkdir -p): OutputGuard refuses before any
  // work an output whose folder cannot be made, so one that can is made here
  // rather than failing once the work is done.
  const size_t slash = path_.rfind('/');
  if (slash != std::string::npos && slash > 0) make_directories(path_.substr(0, slash));
  fd_ = open_unnamed(path_);
  if (fd_ >= 0) {
    kind_ = Kind::unnamed;
    return;
  }
  kind_ = Kind::named;  // unique name in the same directory: same filesystem, so rename is atomic
  fd_ = create_temporary(path_, tmp_, cleanup_);
  if (fd_ < 0) throw_runtime(path_ + ": cannot create: " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0 || kind_ == Kind::descriptor) return;
  ::close(fd_);
  if (kind_ == Kind::named) ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  if (fd_ >= 0 && write_all(fd_, static_cast<const uint8_t*>(data), size)) return;  // every line or tensor: no string built
  const std::string name = path_ == "-" ? "<stdout>" : path_;
  if (fd_ < 0) throw_runtime(name + ": internal error: written after commit");
  throw_runtime(name + ": write failed: " + errno_text());
}

void AtomicFile::commit() {
  const int fd = fd_;
  fd_ = -1;  // whatever happens below, this file is finished
  if (fd < 0 || kind_ == Kind::descriptor) return;
  auto fail = [&](const std::string& e, int open_fd) {
    if (open_fd >= 0) ::close(open_fd);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    cleanup_.disarm();
    throw_runtime(path_ + ": write failed: " + e);
  };
  if (kind_ == Kind::in_place) {
    if (::close(fd) != 0) fail(errno_text(), -1);
    return;
  }
  // fsync before rename: after a node crash the final name holds all the data or nothing.
  if (::fsync(fd) != 0) fail(errno_text(), fd);
  if (kind_ == Kind::unnamed) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    // A new name is linked directly: nothing is ever left behind, even by a
    // kill right after. Only a name that exists needs a temporary name and
    // rename(2) over it (a kill between the two leaves the temporary).
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path_.c_str(), AT_SYMLINK_FOLLOW) == 0) {
      if (::close(fd) != 0) {
        const std::string e = errno_text();
        ::unlink(path_.c_str());
        fail(e, -1);
      }
      return;
    }
    bool linked = false;
    for (int tries = 0; tries < 100 && !linked; ++tries) {  // EEXIST: a killed earlier process with our PID left it
      const std::string name = temporary_path(path_);
      linked = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0;
      if (linked) tmp_ = name, cleanup_.arm(name.c_str());
      else if (errno != EEXIST) break;
    }
    if (!linked) {
      // Only these say "no linking through /proc here"; ENOSPC or EDQUOT are this file's trouble.
      if (errno == ENOENT || errno == EPERM || errno == EOPNOTSUPP || errno == EXDEV) unnamed_unsupported = true;
      const int to = create_temporary(path_, tmp_, cleanup_);
      if (to < 0) fail("cannot create: " + errno_text(), fd);
      const bool ok = copy_all(fd, to) && ::fsync(to) == 0;
      const std::string e = ok ? "" : errno_text();
      if (::close(to) != 0 && ok) fail(errno_text(), fd);
      if (!ok) fail(e, fd);
    }
  }
  if (::close(fd) != 0) fail(errno_text(), -1);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail(errno_text(), -1);
  cleanup_.disarm();
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  AtomicFile f(path);
  f.write(data, size);
  f.commit();
}

void copy_file_to(const std::string& from, const std::string& to, const std::string& shown) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not hang the open
  if (in < 0) throw_runtime(from + ": cannot open for copying: " + errno_text());
  struct stat st {};
  const bool stat_ok = ::fstat(in, &st) == 0;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    const std::string why = stat_ok ? "not a regular file" : errno_text();
    ::close(in);
    throw_runtime(from + ": cannot copy: " + why);
  }
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
  if (out < 0) {
    const std::string why = errno_text();
    ::close(in);
    throw_runtime(shown + ": cannot create (copying " + from + "): " + why);
  }
  // copy_all reads with pread from offset 0; its failure leaves errno set.
  bool ok = copy_all(in, out);
  std::string why = ok ? "" : errno_text();
  if (ok && ::fsync(out) != 0) ok = false, why = errno_text();
  if (::close(out) != 0 && ok) ok = false, why = errno_text();
  ::close(in);
  if (!ok) {
    ::unlink(to.c_str());
    throw_runtime(shown + ": cannot copy " + from + ": " + why);
  }
}

int open_lock_file(const std::string& path, const std::string& what) {
  const int flags = O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;  // O_NONBLOCK: a FIFO in its place must not hang
  int fd = ::open(path.c_str(), O_RDWR | flags, 0666);
  if (fd < 0 && errno == EACCES) fd = ::open(path.c_str(), O_RDONLY | flags, 0666);
  if (fd < 0 && errno == ELOOP) throw_usage(path + ": " + what + " is a symbolic link; refusing to follow it (remove it)");
  if (fd < 0 && errno == EISDIR) throw_usage(path + ": " + what + " is a directory (remove it)");
  if (fd < 0) throw_runtime(path + ": cannot open " + what + ": " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_usage(path + ": " + what + " is not a regular file (remove it)");
  }
  return fd;
}

int try_flock(int fd, int how) {
  if (::flock(fd, how | LOCK_NB) == 0) return 0;
  const int err = errno;
  if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL || err == EBADF) return ENOLCK;
  return err;
}

size_t utf8_bom_size(const uint8_t* text, size_t size) {
  return size >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF ? 3 : 0;
}

bool climbs_out_of_missing(const std::string& dir, std::string* missing) {
  // The usual path has no ".." component: no stat per component then (one
  // call per output, before the work; slow on NFS or Lustre).
  const bool has_dotdot = dir == ".." || dir.rfind("../", 0) == 0 || dir.find("/../") != std::string::npos ||
                          (dir.size() >= 3 && dir.compare(dir.size() - 3, 3, "/..") == 0);
  if (!has_dotdot) return false;
  std::string first_missing;
  size_t k = 0;
  while (k <= dir.size()) {
    size_t j = dir.find('/', k);
    if (j == std::string::npos) j = dir.size();
    const std::string comp = dir.substr(k, j - k);
    if (comp == ".." && !first_missing.empty()) {
      if (missing) *missing = first_missing;
      return true;
    }
    const std::string prefix = dir.substr(0, j);
    struct stat st {};
    if (first_missing.empty() && !prefix.empty() && comp != "." && comp != ".." && ::stat(prefix.c_str(), &st) != 0 &&
        (errno == ENOENT || errno == ENOTDIR))  // EACCES and the like: not "does not exist"; mkdir reports them
      first_missing = prefix;
    k = j + 1;
  }
  return false;
}

void occupy_closed_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // The lowest free number is this one: the lower ones are open by now.
    const int got = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (got >= 0 && got != fd) ::close(got);
    if (got == fd) g_filled_std_fds |= 1u << fd;
  }
}

void make_directories(const std::string& dir) {
  if (dir.empty()) return;
  struct stat have {};
  if (::stat(dir.c_str(), &have) == 0 && S_ISDIR(have.st_mode)) return;  // the usual case: one call per output file
  // mkdir -p would make "missing" for "missing/../out": the path only climbs
  // back out of it, so the tool would leave an empty folder the user never
  // asked for. Refused before anything is made.
  std::string missing;
  if (climbs_out_of_missing(dir, &missing))
    throw_runtime(dir + ": cannot create directory: \"..\" climbs out of " + missing +
                  ", which does not exist (make it first, or leave out the \"..\")");
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

bool path_entry_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
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
