// Whole-file I/O with `-` meaning stdin/stdout, and atomic output: data goes to
// an unnamed (or temporary) file in the destination directory, then rename(2),
// so a killed job never leaves a half-written file under the final name.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rass/core/signals.hpp"

namespace rass {

// Reads a whole file ("-" = stdin). Throws Error(bad_input) naming the path if
// it cannot be opened or read, or (max_bytes > 0) when it holds more than
// max_bytes: a device such as /dev/zero or an endless pipe then ends in an
// error instead of filling the memory.
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes = 0);

// Called once with the first bytes read (at least 16, or the whole file when
// shorter) before the rest is read; throws to stop there. A reader that knows
// what it expects (an image's magic bytes, text without NUL) so refuses
// /dev/zero or a file of another kind at once, instead of reading it until
// the memory runs out.
using HeadCheck = std::function<void(const uint8_t* head, size_t size)>;
// `over_limit`: why more than max_bytes is refused, for the message ("" =
// "not the file expected here").
std::vector<uint8_t> read_file_bytes(const std::string& path, size_t max_bytes, const HeadCheck& head,
                                     const std::string& over_limit = "");

// A text file (tags, prompts, class lists, manifests, logs): refused with
// Error(bad_input) naming the file when its first bytes hold a NUL (a binary
// file, /dev/zero).
std::vector<uint8_t> read_text_file_bytes(const std::string& path, size_t max_bytes = 0);
// Size of a UTF-8 byte-order mark at the start of text (0 or 3). Windows
// editors write one; it is not text (kept, it joined the first key or tag).
size_t utf8_bom_size(const uint8_t* text, size_t size);

// Writes bytes atomically ("-" = stdout). Creates no partial file on failure.
// Throws Error(runtime) naming the path.
void write_file_atomic(const std::string& path, const void* data, size_t size);
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}
inline void write_file_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

// A file written in pieces (a stream of lines, a large tensor file written
// tensor by tensor) that appears under its name only once complete and synced.
// The data go into a file without a name (O_TMPFILE), linked under a
// temporary name and renamed over `path` by commit(): a process killed while
// writing (SIGKILL, a job's time limit, SIGXFSZ) leaves nothing behind. Where
// the filesystem has no O_TMPFILE (NFS, some cluster filesystems) or /proc is
// missing, a named temporary next to `path` is used instead (removed by the
// handlers of signals.hpp when SIGTERM, SIGINT and the like end the process;
// left behind only by SIGKILL). "-" writes to stdout, and /dev/stdout, /dev/stderr,
// /dev/fd/N, /proc/self/fd/N (or a link to one) to that open descriptor; an
// existing device or pipe (/dev/null, a FIFO) is written in place: never
// renamed over. Destroyed without commit(): nothing is left and `path` is
// untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws Error(runtime) naming the path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  // Throws Error(runtime) naming the path (a full disk, a closed pipe).
  void write(const void* data, size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // fsync, name, rename into place. Throws Error(runtime) naming the path;
  // the temporary is then gone.
  void commit();

 private:
  enum class Kind { descriptor, in_place, unnamed, named };
  std::string path_, tmp_;  // tmp_: the named temporary (Kind::named)
  Kind kind_ = Kind::named;
  int fd_ = -1;
  SignalCleanup cleanup_;  // tmp_ while it may exist: a SIGTERM removes it (signals.hpp)
};

// "-", /dev/stdout, /dev/fd/1, /proc/self/fd/1 or a link to one: stdout.
// run_main maps such arguments to "-", so every tool's stdout rules (one
// report on stdout, tables to stderr) apply to them.
bool names_stdout(const std::string& path);
// "-" or a path that stands for an open descriptor (/dev/stdout, /dev/fd/N,
// /proc/self/fd/N, or a link to one): written through it, with no file
// name of its own (so no extension to tell a format by).
bool names_descriptor(const std::string& path);

// An output that clean-up after a failure may remove: a regular file (or
// nothing yet) at a name the tool writes by rename. Not "-", a descriptor
// path (/dev/fd/3, a link to /proc/self/fd/1) or a device or FIFO: removing
// those would delete the user's link or the device node, not the output.
bool removable_output(const std::string& path);

// A descriptor path (/dev/fd/N, ...) must name a descriptor the process was
// given open for writing: not a closed one (found at the first write, after
// the work), not one the tool opened itself (close-on-exec: a lock file, a
// model file). Throws Error(usage) naming the path. Other paths pass.
void check_descriptor_output(const std::string& path);

// A temporary name next to `path` (same filesystem, so rename(2) is atomic),
// unique within the process and across processes: `path` + ".tmp.PID.N",
// the base name shortened where the whole would pass 255 bytes.
std::string temporary_path(const std::string& path);

// Copies the data of `from` (links followed) into the new file `to`, with
// `from`'s permission bits, and syncs it. `shown` is the name the user will
// know the copy by (a folder written under a temporary name shows its final
// name); a failure throws Error(runtime) naming it and the system's reason
// ("No space left on device", not std::filesystem's EIO) and removes `to`.
void copy_file_to(const std::string& from, const std::string& to, const std::string& shown);

// Opens (creating) a lock file for flock(2): read-write where it can be
// (NFS grants an exclusive flock only on a file open for writing), read-only
// where another user's file allows no more; never through a symbolic link
// (Error(usage)), and only a regular file (Error(usage): a directory, device
// or FIFO in its place). `what` names it in messages ("the output folder's
// lock file"). Other failures: Error(runtime).
int open_lock_file(const std::string& path, const std::string& what);

// flock(fd, how | LOCK_NB): 0 when taken, else the errno; EWOULDBLOCK: held
// by another open file. A filesystem without locks (ENOLCK, EOPNOTSUPP,
// ENOSYS, EINVAL, or EBADF for a read-only file on NFS) gives ENOLCK.
int try_flock(int fd, int how);

// Standard descriptors 0, 1 and 2 that are closed (`>&-`, a daemon's
// child) are opened on /dev/null the wrong way round (stdin write-only,
// stdout and stderr read-only), so the next file the tool opens (an output
// lock, a temporary) cannot take their numbers and receive its reports and
// messages, while reads and writes through them still fail with EBADF as
// they would on a closed descriptor (exit 1 for a lost report). Call first.
void occupy_closed_std_fds();

// mkdir -p. Throws Error(runtime) on failure, and before making anything
// when a ".." climbs out of a folder it would have to make
// ("missing/../out": mkdir -p would leave an empty "missing").
void make_directories(const std::string& dir);

// True when a ".." in `dir` follows a component that does not exist (the
// first such folder in *missing).
bool climbs_out_of_missing(const std::string& dir, std::string* missing = nullptr);
bool file_exists(const std::string& path);
// The name is there, whatever it points to (lstat: a dangling or looping
// symlink too), so opening it reports why it cannot be read.
bool path_entry_exists(const std::string& path);
// An existing path that is neither a regular file nor a directory (a device
// such as /dev/null, a FIFO): outputs there are written in place, not renamed over.
bool is_special_file(const std::string& path);

// Path helpers: "a/b/c.png" -> stem "c", extension ".png" (lower-cased), dirname "a/b".
std::string path_stem(const std::string& path);
std::string path_extension_lower(const std::string& path);
std::string path_join(const std::string& dir, const std::string& name);

}  // namespace rass
