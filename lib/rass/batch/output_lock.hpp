// One run at a time per batch output folder. Two runs writing one folder
// (a requeued Slurm job while the old one still runs, a second terminal)
// each exit 0 and leave a mix of both: images of one seed beside records of
// another, a manifest from whichever ended last. A run takes a lock in the
// folder before any work and a second one is refused (exit 2). Shards of one
// set may run at once: each takes the folder's lock shared and its own
// shard's lock exclusively, so only a run of the same shard, or a whole
// (unsharded) run, is refused; so is a shard of another count (--shard 0/3
// beside 1/2: the two split the items differently). Torch-free.
#pragma once
#include <list>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::batch {

class OutputLock {
 public:
  // Locks DIR/.rass-lock (and DIR/.rass-lock.I-of-N for a shard); DIR must
  // exist. The locks are flock(2) locks: released when the process ends,
  // even by SIGKILL, so a killed run never blocks the next one. The files
  // stay (empty; nothing reads them). Where the filesystem has no locks
  // (some cluster filesystems), the run goes on with a warning on stderr.
  // Throws Error(usage) naming DIR when another run holds it.
  // `created`: this run made DIR. If the run then ends by an exception (a
  // model that does not load, a refused option) while DIR holds nothing but
  // lock files and no other run holds it, DIR is removed: a failed run
  // leaves no folder.
  // `made_top`: the highest of the folders this run made for DIR (DIR or
  // one above it), removed with DIR when empty.
  OutputLock(const std::string& dir, const Shard& shard, const std::string& prog, bool created = false,
             const std::string& made_top = "");
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  // When this run made DIR and no other run holds it: removes DIR if it
  // holds no file but lock files (a run whose every item failed). Returns
  // whether it did.
  bool remove_if_unused();

 private:
  std::string dir_, made_top_, shard_file_;
  int folder_fd_ = -1, shard_fd_ = -1;
  int count_fd_ = -1;  // .rass-lock.counts: a read lock on the byte of this shard count
  bool created_ = false;
  int uncaught_ = 0;  // std::uncaught_exceptions() when made
};

// A run of one input (-o FILE) writing into a batch's output folder (the
// folder, or one under it) beside that batch: both exited 0 over a mix of
// their outputs, and a --resume of the batch took the stranger's file for
// its own. For each folder above each output that holds a lock file (this
// never makes one), a run of one input takes the whole-set lock shared,
// which a batch holding it exclusively refuses and a batch starting later
// is refused by, and asks each shard's lock the same (released at once:
// shards share the whole-set lock). Error(usage) naming the folder when a
// batch holds it. Runs of one input do not exclude each other.
class OneOutputHold {
 public:
  explicit OneOutputHold(const std::vector<std::string>& outputs);
  ~OneOutputHold();
  OneOutputHold(const OneOutputHold&) = delete;
  OneOutputHold& operator=(const OneOutputHold&) = delete;

 private:
  std::vector<int> fds_;
};

// Whether a file name is one of the lock files above (a folder holding only
// those holds no output).
bool is_lock_file_name(const std::string& name);

// Makes each distinct non-empty folder of `dirs` (one spelt two ways is
// locked once) and locks it for this run.
std::list<OutputLock> lock_output_dirs(const std::vector<std::string>& dirs, const Shard& shard, const std::string& prog);

}  // namespace rass::batch
