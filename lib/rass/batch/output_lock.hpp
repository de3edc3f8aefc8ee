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
  OutputLock(const std::string& dir, const Shard& shard, const std::string& prog, bool created = false);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  // When this run made DIR and no other run holds it: removes DIR if it
  // holds no file but lock files (a run whose every item failed). Returns
  // whether it did.
  bool remove_if_unused();

 private:
  std::string dir_, shard_file_;
  int folder_fd_ = -1, shard_fd_ = -1;
  int count_fd_ = -1;  // .rass-lock.counts: a read lock on the byte of this shard count
  bool created_ = false;
  int uncaught_ = 0;  // std::uncaught_exceptions() when made
};

// Whether a file name is one of the lock files above (a folder holding only
// those holds no output).
bool is_lock_file_name(const std::string& name);

// Makes each distinct non-empty folder of `dirs` (one spelt two ways is
// locked once) and locks it for this run.
std::list<OutputLock> lock_output_dirs(const std::vector<std::string>& dirs, const Shard& shard, const std::string& prog);

}  // namespace rass::batch
