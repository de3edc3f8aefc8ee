#include "rass/batch/output_guard.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace fs = std::filesystem;

namespace rass::batch {

namespace {

// A folder an output needs (`dir` itself, made if missing) must be one that
// can be made: its deepest existing path must be a directory. Checked before
// the work, so "-O afile" is exit 2 at once, not a failure per item after
// hours of computing.
void check_can_make_dir(const fs::path& dir, const std::string& what, const std::string& given) {
  // Not lexically normalised: "link/../x" goes where the link points, as
  // make_directories will; stat resolves ".." the same way.
  std::string missing;
  if (climbs_out_of_missing(dir.string(), &missing))
    throw_usage(what + " " + given + ": \"..\" climbs out of " + missing + ", which does not exist");
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  while (!p.empty() && (!p.has_filename() || p.filename() == ".") && p != p.parent_path()) p = p.parent_path();  // "out/", "out/." -> "out"
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        throw_usage(what + " " + given + ": " + p.string() + " exists and is not a directory");
      // Outputs are made there (a temporary renamed into place, a folder):
      // a folder this process cannot write in (permissions, a read-only
      // filesystem) is refused now, not once per item after the work.
      if (::access(p.c_str(), W_OK | X_OK) != 0)
        throw_usage(what + " " + given + ": cannot write in " + p.string() + ": " + std::strerror(errno));
      return;
    }
    // A link that resolves to nothing (a loop, a dangling link) is there but
    // cannot become a folder: mkdir would fail on it after the run started.
    const int stat_errno = errno;
    struct stat lst {};
    if (::lstat(p.c_str(), &lst) == 0)
      throw_usage(what + " " + given + ": " + p.string() +
                  (stat_errno == ENOENT || stat_errno == ELOOP || stat_errno == ENOTDIR ? " is a link that leads nowhere ("
                                                                                        : " cannot be reached (") +
                  std::strerror(stat_errno) + ")");
    if (p == p.parent_path() || p.empty()) return;
    p = p.parent_path();
  }
}

// The file stdout is redirected to, in *st; false when stdout is not a
// regular file (a terminal, a pipe, /dev/null).
bool stdout_regular_file(struct stat* st) { return ::fstat(STDOUT_FILENO, st) == 0 && S_ISREG(st->st_mode); }

// Whether descriptor `fd` writes into the file `in` holds. For a file
// found by listing a folder the tool reads (a model folder's files), only
// when it could harm it: appending or read-write (`>> f`, `1<> f`), or a
// file that holds bytes; a file the shell truncated (`2> model/run.log`)
// is a new log beside the model's files, nothing the tool reads. An input
// the user named is refused whatever the redirection: truncated by `>
// cap.txt`, it would be read empty and the run would exit 0.
bool writes_over(int fd, const struct stat& in, bool listed) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != in.st_dev || st.st_ino != in.st_ino) return false;
  if (!listed) return true;
  const int fl = ::fcntl(fd, F_GETFL);
  return fl < 0 || (fl & O_APPEND) || (fl & O_ACCMODE) == O_RDWR || st.st_size > 0;
}

// A name the system cannot take fails only when the output is written,
// after the work (and make_directories had made the folders before it):
// refused now. Limits of Linux's filesystems: NAME_MAX bytes a component,
// PATH_MAX bytes a path given to a system call.
void check_name_lengths(const std::string& path, const std::string& what) {
  if (path.size() >= PATH_MAX)
    throw_usage(what + " " + path.substr(0, 80) + "...: the path is " + std::to_string(path.size()) +
                " bytes, the system's limit " + std::to_string(PATH_MAX - 1));
  size_t a = 0;
  while (a < path.size()) {
    size_t b = path.find('/', a);
    if (b == std::string::npos) b = path.size();
    if (b - a > NAME_MAX)
      throw_usage(what + " " + path + ": the name " + path.substr(a, 40) + "... is " + std::to_string(b - a) +
                  " bytes, longer than a file name may be (" + std::to_string(NAME_MAX) + ")");
    a = b + 1;
  }
}

}  // namespace

std::string OutputGuard::normalised_path(const std::string& p) {
  // Links resolved before ".." is applied, as the kernel does: "lnk/../o"
  // is o beside lnk's target, not beside lnk (a lexical ".." first let an
  // output into an input folder). weakly_canonical keeps a missing tail
  // ("out/../a.png" before out/ exists) and normalises it.
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  std::string n = ec ? fs::absolute(p, ec).lexically_normal().string() : c.lexically_normal().string();
  // "out/" and "out/." name the folder "out" (lexically_normal keeps the
  // slash), so every spelling compares equal.
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

bool OutputGuard::path_within(const std::string& inner, const std::string& outer) {
  if (inner == outer) return true;
  const std::string o = outer.back() == '/' ? outer : outer + "/";
  return inner.compare(0, o.size(), o) == 0;
}

std::string OutputGuard::output_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    return S_ISREG(st.st_mode) ? "inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) : "";
  return "path:" + normalised_path(path);
}

void OutputGuard::check_distinct(const std::vector<std::pair<std::string, std::string>>& outputs) {
  std::vector<std::pair<std::string, std::string>> seen;  // identity, "what path"
  for (const auto& [what, path] : outputs) {
    if (path.empty()) continue;
    struct stat st {};
    // "-": the file stdout is redirected to, if any (`--csv - --per-image x > x`).
    if (path == "-" && !stdout_regular_file(&st)) continue;
    const std::string id = path == "-" ? "inode:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)
                                       : output_identity(path);
    if (id.empty()) continue;
    for (const auto& [other, named] : seen)
      if (other == id) throw_usage(what + " " + path + " and " + named + " name the same file: one would replace the other");
    seen.emplace_back(id, what + " " + path);
  }
}

void OutputGuard::add_input(const std::string& path, bool listed) {
  if (path.empty()) return;
  struct stat st {};
  if (path == "-") {  // stdin redirected from a file (`- < a.png`): that file is an input
    if (::fstat(STDIN_FILENO, &st) != 0 || !S_ISREG(st.st_mode)) return;
  } else if (::stat(path.c_str(), &st) != 0) {
    return;
  } else if (S_ISDIR(st.st_mode)) {
    dirs_.push_back(normalised_path(path));
    return;
  }
  files_.insert({(unsigned long long)st.st_dev, (unsigned long long)st.st_ino});
  // stderr on an input (`2>> a.png`, `2<> a.png`, `>> a.png 2>&1`): its
  // notes and any refusal went into the input. Checked first, so that the
  // stdout refusal below is not written there either. The refusal cannot be
  // said: stderr is pointed at /dev/null first, and the exit code (2) says it.
  if (writes_over(STDERR_FILENO, st, listed)) {
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, STDERR_FILENO);
      ::close(null);
    }
    throw_usage("stderr is one of the inputs: refusing to write over an input");
  }
  // stdout appending to or opened read-write on an input (`>> a.png`,
  // `1<> a.png`): whatever the tool writes there (an image, records, a
  // summary) goes into the input. Checked here, once, for every tool and flag.
  if (writes_over(STDOUT_FILENO, st, listed))
    throw_usage("stdout is one of the inputs (" + (path == "-" ? std::string("stdin's file") : path) +
                "): refusing to write over an input");
}

void OutputGuard::add_folder_files(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator() && n < 10000; it.increment(ec), ++n)
    if (it->is_regular_file(ec)) add_input(it->path().string(), /*listed=*/true);
}

void OutputGuard::check_output_file(const std::string& path, const std::string& what, bool per_item) const {
  if (path.empty() || path == "-") return;  // stdout: checked against each input by add_input
  // A batch item's name too long is that item's problem (a bad item), not the run's.
  if (!per_item) check_name_lengths(path, what);
  check_descriptor_output(path);  // /dev/fd/N: open for writing, and not the tool's own
  check_not_an_input(path, what);
  if (per_item) return;
  // An existing directory cannot be renamed over: found here, not as a write
  // failure after all the work.
  // (A FIFO or device named as the one output is written through, as the
  // user asked: `-o /dev/null`.)
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw_usage(what + " " + path + " is an existing directory; name a new path");
}

std::string OutputGuard::item_output_problem(const std::string& path, const std::string& what) {
  if (path.empty() || path == "-") return "";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";  // missing (or a dangling link or loop, replaced by the file)
  if (S_ISDIR(st.st_mode)) return what + " " + path + " is an existing directory, which the output cannot replace";
  // A FIFO would block the run at the write (or --resume's read), a device
  // such as a link to /dev/null would swallow the output while the run
  // counts it as made: a batch names its outputs itself, so neither is asked for.
  if (!S_ISREG(st.st_mode))
    return what + " " + path + " is an existing " +
           (S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket" : "device") +
           ", not a regular file: a batch writes its outputs as files";
  return "";
}

void OutputGuard::check_not_an_input(const std::string& path, const std::string& what, bool check_folder) const {
  // Also the lexically normal form: "out/../a.png" is a.png even while out/ does not exist yet.
  std::error_code ec;
  const std::string normal = fs::absolute(path, ec).lexically_normal().string();
  // A device, FIFO or /dev/fd/N is written in place: it replaces no file
  // (stdout's included), and its folder is not written.
  const bool renamed = removable_output(path);
  struct stat out {};
  const bool stdout_file = renamed && stdout_regular_file(&out);
  for (const std::string& p : {path, normal}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) continue;
    if (files_.count({(unsigned long long)st.st_dev, (unsigned long long)st.st_ino}))
      throw_usage(what + " " + path + " is one of the inputs: refusing to write over an input");
    // `-o x.png --json > x.png`: the output renamed into place would replace
    // the file stdout writes (the records went with the old inode, exit 0).
    if (stdout_file && st.st_dev == out.st_dev && st.st_ino == out.st_ino)
      throw_usage(what + " " + path + " is the file stdout is redirected to: the output would replace what is " +
                  "written there; redirect stdout elsewhere");
  }
  for (const std::string& in : dirs_)
    if (normal == in) throw_usage(what + " " + path + " is an input directory");
  if (!check_folder || !renamed) return;
  check_can_make_dir(fs::absolute(path, ec).parent_path(), what, path);
}

void OutputGuard::check_output_dir(const std::string& dir, const std::string& what) const {
  if (dir.empty()) return;
  // "-" is stdout everywhere else: as a folder it would silently become ./-.
  if (dir == "-") throw_usage(what + " -: a folder is needed here ('-' is stdout; name a directory)");
  const std::string out = normalised_path(dir);
  for (const std::string& in : dirs_)
    if (path_within(out, in))
      throw_usage(what + " " + dir + (out == in ? " is" : " is inside") + " the input directory " + in +
                  ": outputs could replace or mix with the inputs; choose an output directory outside it");
  // The folder itself must be writable (or makeable), not its parent: an
  // existing -O in a read-only tree (/tmp under /) is fine.
  check_name_lengths(dir, what);
  check_not_an_input(dir, what, false);
  check_can_make_dir(dir, what, dir);
}

void OutputGuard::check_output_file_outside_dirs(const std::string& path, const std::string& what, bool per_item) const {
  if (path.empty() || path == "-") return;
  check_output_file(path, what, per_item);
  const std::string out = normalised_path(path);
  for (const std::string& in : dirs_)
    if (path_within(out, in))
      throw_usage(what + " " + path + " is inside the input folder " + in + ": refusing to write into an input");
}

}  // namespace rass::batch
