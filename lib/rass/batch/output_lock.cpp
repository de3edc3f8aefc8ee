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
#include <utility>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace fs = std::filesystem;

namespace rass::batch {

namespace {

constexpr char kWhat[] = "the output folder's lock file";

// Takes `how` on the lock file at `path`: its descriptor, or -1 where the
// filesystem has no locks. Throws Error(usage) when another run holds a
// conflicting lock. A lock taken on a file that a finishing run removed in
// the meantime (it abandons a folder it made) would lock nothing: the file
// under the name must still be the one locked, else it is opened again.
int lock_file(const std::string& path, int how, const std::string& dir, const std::string& holder) {
  for (int tries = 0;; ++tries) {
    const int fd = open_lock_file(path, kWhat);
    const int err = try_flock(fd, how);
    if (err == ENOLCK) return ::close(fd), -1;
    if (err == EWOULDBLOCK) {
      ::close(fd);
      throw_usage(dir + ": another run is writing this output folder (" + holder +
                  "); two runs at once would mix their outputs: wait for it to end, or choose another output folder");
    }
    if (err != 0) {
      ::close(fd);
      throw_runtime(dir + ": cannot lock the output folder: " + std::strerror(err));
    }
    struct stat held {}, named {};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
        held.st_ino == named.st_ino)
      return fd;
    ::close(fd);
    if (tries == 10) throw_runtime(path + ": " + kWhat + " keeps being replaced");
  }
}

// Shards of two counts at once (--shard 0/3 beside 0/2) split the items
// differently, so they write the same outputs. Each shard holds a read lock
// on byte N (its count) of DIR/.rass-lock.counts, then asks whether any other
// byte is locked: of two starting at once, the later asker sees the earlier.
// Byte-range locks of a file nothing flocks (NFS emulates flock with
// whole-file byte-range locks, which would conflict with the probe). Returns
// the descriptor holding the lock, or -1 where there are no such locks.
int claim_shard_count(const std::string& dir, const Shard& shard) {
#ifdef F_OFD_SETLK
  const int fd = open_lock_file(path_join(dir, ".rass-lock.counts"), kWhat);
  struct flock mine {};
  mine.l_type = F_RDLCK;  // read locks never conflict with each other: shards of one count all take it
  mine.l_whence = SEEK_SET;
  mine.l_start = shard.count;
  mine.l_len = 1;
  if (::fcntl(fd, F_OFD_SETLK, &mine) != 0) return ::close(fd), -1;  // no byte-range locks here
  const off_t ranges[2][2] = {{0, off_t(shard.count)}, {off_t(shard.count) + 1, 0}};  // l_len 0: to the end
  for (const auto& r : ranges) {
    struct flock probe {};
    probe.l_type = F_WRLCK;  // conflicts with any read lock in the range
    probe.l_whence = SEEK_SET;
    probe.l_start = r[0];
    probe.l_len = r[1];
    if (::fcntl(fd, F_OFD_GETLK, &probe) != 0 || probe.l_type == F_UNLCK) continue;
    ::close(fd);
    throw_usage(dir + ": shards of another count (--shard I/" + std::to_string(probe.l_start) +
                ") are writing this output folder; shards of two counts split the items differently and would "
                "write the same outputs: use one count per output folder");
  }
  return fd;
#else
  (void)dir, (void)shard;
  return -1;
#endif
}

}  // namespace

OutputLock::OutputLock(const std::string& dir, const Shard& shard, const std::string& prog, bool created,
                       const std::string& made_top)
    : dir_(dir), made_top_(made_top), created_(created), uncaught_(std::uncaught_exceptions()) {
  const bool sharded = shard.count > 1;
  try {
    folder_fd_ = lock_file(path_join(dir, ".rass-lock"), sharded ? LOCK_SH : LOCK_EX, dir,
                           sharded ? "a run of the whole set" : "a run of the whole set, or a shard of one");
    if (folder_fd_ >= 0 && sharded) {
      shard_file_ = path_join(dir, ".rass-lock." + std::to_string(shard.index) + "-of-" + std::to_string(shard.count));
      shard_fd_ = lock_file(shard_file_, LOCK_EX, dir, "shard " + shard.str());
      if (shard_fd_ >= 0) count_fd_ = claim_shard_count(dir, shard);
    }
  } catch (...) {  // a half-made object's destructor does not run
    if (shard_fd_ >= 0) ::close(shard_fd_);
    if (folder_fd_ >= 0) ::close(folder_fd_);
    throw;
  }
  if (folder_fd_ < 0 || (sharded && shard_fd_ < 0))
    std::fprintf(stderr,
                 "%s: warning: %s: this filesystem has no file locks, so a second run writing the same folder "
                 "at the same time would not be stopped\n",
                 prog.c_str(), printable_message(dir).c_str());
}

bool OutputLock::remove_if_unused() {
  if (!created_ || folder_fd_ < 0) return false;
  // Only when no other run (a shard beside this one) holds the folder: this
  // run's shared lock becomes exclusive, or nothing is removed.
  if (try_flock(folder_fd_, LOCK_EX) != 0) return false;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (!it->is_directory(ec) && !is_lock_file_name(it->path().filename().string())) return false;
  if (ec) return false;
  if (!shard_file_.empty()) ::unlink(shard_file_.c_str());
  if (count_fd_ >= 0) ::unlink(path_join(dir_, ".rass-lock.counts").c_str());
  ::unlink(path_join(dir_, ".rass-lock").c_str());
  fs::remove_all(dir_, ec);  // only empty folders are left in it
  if (ec) return false;
  // The empty folders this run made above it, up to the highest.
  if (!made_top_.empty()) {
    const fs::path top = fs::path(made_top_).lexically_normal();
    fs::path d = fs::path(dir_).lexically_normal();
    if (d.filename().empty()) d = d.parent_path();  // "new/x/y/": its parent is new/x/y itself
    for (fs::path p = d.parent_path(); !p.empty(); p = p.parent_path()) {
      const auto rel = p.lexically_relative(top);
      if (rel.empty() || *rel.begin() == "..") break;  // not at or under the highest made
      if (::rmdir(p.c_str()) != 0) break;  // not empty (another run's files): kept
      if (p == top) break;
    }
  }
  return true;
}

OutputLock::~OutputLock() {
  // A run that ends by an exception (a model that does not load) in a
  // folder it made leaves no folder behind.
  if (std::uncaught_exceptions() > uncaught_) remove_if_unused();
  // Closing releases the locks.
  if (count_fd_ >= 0) ::close(count_fd_);
  if (shard_fd_ >= 0) ::close(shard_fd_);
  if (folder_fd_ >= 0) ::close(folder_fd_);
}

namespace {

// An existing lock file taken shared (never made, never through a link):
// its descriptor, -1 where there is none or no locks. Throws Error(usage)
// when a batch holds it exclusively.
int share_existing_lock(const std::string& file, const std::string& dir, const std::string& out, bool keep) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return ::close(fd), -1;
  const int err = try_flock(fd, LOCK_SH);
  if (err == EWOULDBLOCK) {
    ::close(fd);
    throw_usage(out + ": a batch run is writing the folder " + dir + "; an output of one input written there "
                "beside it would mix with the batch's (its --resume would take the file for its own): wait for it "
                "to end, or write elsewhere");
  }
  if (err != 0 || !keep) return ::close(fd), -1;
  return fd;
}

}  // namespace

OneOutputHold::OneOutputHold(const std::vector<std::string>& outputs) {
  std::set<std::string> seen;
  try {
    for (const std::string& out : outputs) {
      if (out.empty() || out == "-") continue;
      std::error_code ec;
      fs::path dir = fs::absolute(fs::path(out), ec).lexically_normal().parent_path();
      if (ec) continue;
      for (;; dir = dir.parent_path()) {
        if (!seen.insert(dir.string()).second) break;  // this folder and those above it were asked
        const std::string d = dir.string();
        const int fd = share_existing_lock(path_join(d, ".rass-lock"), d, out, true);
        // Shards leave .rass-lock.counts (output_lock's claim_shard_count):
        // only then is the folder (perhaps 100k outputs) listed for them.
        if (fd >= 0) {
          fds_.push_back(fd);
          if (!fs::exists(dir / ".rass-lock.counts", ec)) continue;
          for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
            const std::string n = it->path().filename().string();
            if (n.size() > 11 && n.compare(0, 11, ".rass-lock.") == 0 && n.find("-of-") != std::string::npos)
              share_existing_lock(it->path().string(), d, out, false);
          }
        }
        if (dir == dir.root_path() || dir.parent_path() == dir) break;
      }
    }
  } catch (...) {
    for (int fd : fds_) ::close(fd);
    throw;
  }
}

OneOutputHold::~OneOutputHold() {
  for (int fd : fds_) ::close(fd);
}

bool is_lock_file_name(const std::string& name) { return name.compare(0, 10, ".rass-lock") == 0; }

std::list<OutputLock> lock_output_dirs(const std::vector<std::string>& dirs, const Shard& shard, const std::string& prog) {
  std::list<OutputLock> locks;
  std::set<std::pair<dev_t, ino_t>> seen;  // one folder under two names (a link, a bind mount) is locked once
  for (const std::string& d : dirs) {
    if (d.empty() || d == "-") continue;
    std::error_code ec;
    const bool created = !fs::exists(d, ec);
    // The highest folder this run makes: a failed run removes it too
    // (-O new/x/y left an empty new/x).
    std::string top;
    if (created)
      for (fs::path p = fs::path(d).lexically_normal(); !p.empty() && !fs::exists(p, ec) && !ec; p = p.parent_path()) {
        if (p.filename().empty() && p.has_parent_path() && p.parent_path() != p) p = p.parent_path();  // "new/x/y/"
        if (p.filename().empty() || p.filename() == "." || p.filename() == "..") break;
        top = p.string();
        if (p.parent_path() == p) break;
      }
    make_directories(d);
    struct stat st {};
    if (::stat(d.c_str(), &st) != 0) throw_runtime(d + ": cannot read the output folder: " + std::strerror(errno));
    if (seen.insert({st.st_dev, st.st_ino}).second) locks.emplace_back(d, shard, prog, created, top);
  }
  return locks;
}

}  // namespace rass::batch
