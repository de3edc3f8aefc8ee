#include "rass/batch/output_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <set>

#include "rass/batch/output_guard.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass::batch {

namespace {

// Filesystems without flock answer with one of these; the run then goes on
// unlocked rather than not at all.
bool no_locks_here(int err) { return err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL; }

// Opens (creating) a lock file: never through a link, never a device or a
// FIFO (O_NONBLOCK: opening a FIFO must not hang). Nothing is ever written
// into it, so a hard-linked name is harmless.
int open_lock_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (fd < 0 && errno == ELOOP)
    throw_usage(path + ": the output folder's lock file is a symbolic link; refusing to follow it (remove it)");
  if (fd < 0) throw_runtime(path + ": cannot open the output folder's lock file: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_usage(path + ": the output folder's lock file is not a regular file (remove it)");
  }
  return fd;
}

// flock; false where the filesystem has no locks. Throws Error(usage) when
// another process holds a conflicting lock.
bool take(int fd, int how, const std::string& dir, const std::string& what) {
  if (::flock(fd, how | LOCK_NB) == 0) return true;
  const int err = errno;
  if (err == EWOULDBLOCK)
    throw_usage(dir + ": another run is writing this output folder (" + what +
                "); two runs at once would mix their outputs: wait for it to end, or choose another output folder");
  if (no_locks_here(err)) return false;
  throw_runtime(dir + ": cannot lock the output folder: " + std::strerror(err));
}

}  // namespace

OutputLock::OutputLock(const std::string& dir, const Shard& shard, const std::string& prog, bool created)
    : dir_(dir), created_(created), uncaught_(std::uncaught_exceptions()) {
  const bool sharded = shard.count > 1;
  bool locked = false;
  try {
    folder_fd_ = open_lock_file(path_join(dir, ".rass-lock"));
    locked = take(folder_fd_, sharded ? LOCK_SH : LOCK_EX, dir,
                  sharded ? "a run of the whole set" : "a run of the whole set, or a shard of one");
    if (locked && sharded) {
      const std::string tag = std::to_string(shard.index) + "-of-" + std::to_string(shard.count);
      shard_file_ = path_join(dir, ".rass-lock." + tag);
      shard_fd_ = open_lock_file(shard_file_);
      locked = take(shard_fd_, LOCK_EX, dir, "shard " + shard.str());
    }
  } catch (...) {  // a half-made object's destructor does not run
    if (shard_fd_ >= 0) ::close(shard_fd_);
    if (folder_fd_ >= 0) ::close(folder_fd_);
    throw;
  }
  if (!locked)
    std::fprintf(stderr,
                 "%s: warning: %s: this filesystem has no file locks, so a second run writing the same folder "
                 "at the same time would not be stopped\n",
                 prog.c_str(), dir.c_str());
}

OutputLock::~OutputLock() {
  if (created_ && std::uncaught_exceptions() > uncaught_) {
    // A failed run in a folder it made: the lock files go, then the folder
    // if they were all it held (rmdir fails on anything else).
    // The folder's lock only when no other run holds it (a shard beside this one).
    if (!shard_file_.empty()) ::unlink(shard_file_.c_str());
    if (folder_fd_ >= 0 && ::flock(folder_fd_, LOCK_EX | LOCK_NB) == 0) ::unlink(path_join(dir_, ".rass-lock").c_str());
    ::rmdir(dir_.c_str());
  }
  // Closing releases the locks.
  if (shard_fd_ >= 0) ::close(shard_fd_);
  if (folder_fd_ >= 0) ::close(folder_fd_);
}

bool is_lock_file_name(const std::string& name) { return name.compare(0, 10, ".rass-lock") == 0; }

std::list<OutputLock> lock_output_dirs(const std::vector<std::string>& dirs, const Shard& shard, const std::string& prog) {
  std::list<OutputLock> locks;
  std::set<std::string> seen;
  for (const std::string& d : dirs) {
    if (d.empty() || d == "-") continue;
    std::error_code ec;
    const bool created = !std::filesystem::exists(d, ec);
    make_directories(d);
    if (seen.insert(OutputGuard::normalised_path(d)).second) locks.emplace_back(d, shard, prog, created);
  }
  return locks;
}

}  // namespace rass::batch
