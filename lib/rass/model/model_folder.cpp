#include "rass/model/model_folder.hpp"

#include <fstream>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <random>
#include <vector>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"

namespace fs = std::filesystem;

namespace rass::model {

namespace {
bool is_weight_file(const std::string& name) {
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends(".safetensors") || ends(".bin") || ends(".ckpt") || ends(".pt") || ends(".pth") ||
         (name.find(".index") != std::string::npos && ends(".json"));
}

// Each temporary folder holds this file, locked (flock) by its writer for
// as long as the writer lives: a later run can tell a folder whose writer
// was killed (the lock is free) from one another process is still filling,
// whatever host or PID namespace that process is in and whatever its PID.
constexpr char kWriterMark[] = ".rass-writer";
constexpr char kOldFolder[] = ".rass-old";  // where a replaced folder waits inside the new one's temporary
// Every folder written in replace mode (a training export) holds this file:
// only such a folder (or an empty one) is replaced by a later export, never
// a folder of other files that export_dir happened to name.
constexpr char kExportMark[] = ".rass-export";
// In a training run's folder: the run's random id, named by its exports' marks.
constexpr char kRunId[] = ".rass-run-id";

}  // namespace

const char* FolderWriter::run_id_file() { return kRunId; }

namespace {

// set_export_run's value (one training run per process).
std::string& export_run() {
  static std::string run;
  return run;
}

// "NAME.tmp.PID.N" (temporary_path's form) for `name`.
bool is_temporary_of(const std::string& entry, const std::string& name) {
  const std::string prefix = name + ".tmp.";
  if (entry.size() <= prefix.size() || entry.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string rest = entry.substr(prefix.size());
  const size_t dot = rest.find('.');
  auto digits = [](const std::string& d) {
    return !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
  };
  return dot != std::string::npos && digits(rest.substr(0, dot)) && digits(rest.substr(dot + 1));
}

// Temporary folders beside `dst` that a killed writer left (SIGKILL, a
// kill while it put the folder in place, or a folder deeper than the signal
// handlers remove; a model folder is gigabytes): removed when their mark's
// lock is free. One without a mark, or on a
// filesystem without locks, is left alone.
void remove_stale_temporaries(const std::string& dst) {
  const fs::path d(dst);
  const fs::path parent = d.has_parent_path() ? d.parent_path() : fs::path(".");
  const std::string name = d.filename().string();
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    std::error_code ec2;
    if (!is_temporary_of(e.path().filename().string(), name) || !fs::is_directory(e.symlink_status(ec2))) continue;
    const std::string mark = (e.path() / kWriterMark).string();
    const int fd = ::open(mark.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    if (try_flock(fd, LOCK_EX) == 0) stale.push_back(e.path());
    ::close(fd);
  }
  for (const fs::path& p : stale) fs::remove_all(p, ec);
}

}  // namespace

// A path under the temporary folder as the user will know it: under the
// destination's name.
std::string FolderWriter::shown(const fs::path& p) const { return dst_ + p.string().substr(tmp_.size()); }

void FolderWriter::place_file(const fs::path& from, const fs::path& to) const {
  std::error_code ec;
  if (!fs::is_symlink(from, ec)) {
    fs::create_hard_link(from, to, ec);
    if (!ec) return;
  }
  copy_file_to(from.string(), to.string(), shown(to));  // follows a symbolic link: the output holds the data
}

std::string FolderWriter::check_destination(const std::string& dst, Existing existing) {
  std::string name = fs::path(dst).lexically_normal().string();
  while (name.size() > 1 && name.back() == '/') name.pop_back();  // "out/" names the folder "out"
  // A last component ".." names a folder by where it is, not a new one:
  // replacing "runs/a/.." would replace "runs". "out/." is "out", and
  // "runs/a/../." is "runs/a/..".
  std::string raw = dst;
  for (bool changed = true; changed;) {
    changed = false;
    while (raw.size() > 1 && raw.back() == '/') raw.pop_back(), changed = true;
    if (raw.size() > 2 && raw.compare(raw.size() - 2, 2, "/.") == 0) raw.resize(raw.size() - 2), changed = true;
  }
  const std::string tail = fs::path(raw).filename().string();
  if (name.empty() || name == "." || name == "/" || tail == "..")
    throw_usage("output folder '" + dst + "' names no new folder");
  std::error_code ec;
  // A file where a folder above it belongs (init afile/sub, afile/../x):
  // the usage error it is, before any work, not a failure to make folders
  // (exit 1). Every prefix of the path as given, as the kernel walks it.
  bool climbs = false;
  fs::path prefix;
  const fs::path given(raw);
  for (auto it = given.begin(); it != given.end() && std::next(it) != given.end(); ++it) {
    prefix /= *it;
    climbs = climbs || *it == "..";
    if (fs::exists(fs::status(prefix, ec)) && !fs::is_directory(fs::status(prefix, ec)))
      throw_usage(prefix.string() + " is not a folder, so " + dst + " cannot be made in it");
  }
  // A ".." after a symbolic link climbs from the link's target: the folder
  // named is where the kernel puts it (lnk/../out is real/out, not ./out).
  if (climbs) {
    const fs::path parent = fs::weakly_canonical(given.parent_path(), ec);
    if (!ec) name = (parent / given.filename()).lexically_normal().string();
  }
  const auto st = fs::symlink_status(name, ec);
  if (fs::exists(st) && existing == Existing::refuse)
    throw_usage(name + " exists; the output folder must be new (remove it or choose another)");
  if (fs::exists(st) && existing == Existing::empty_only) {
    if (fs::is_symlink(st)) throw_usage(name + " is a symbolic link; give a new folder (or the link's target) instead");
    if (!fs::is_directory(st)) throw_usage(name + " exists and is not a folder");
    const bool empty = fs::is_empty(name, ec);
    if (ec) throw_usage(name + ": cannot list it (" + ec.message() + ")");
    if (!empty) throw_usage(name + " exists and is not empty; a new folder is written only");
  }
  if (fs::exists(st) && !fs::is_directory(fs::status(name, ec))) throw_usage(name + " exists and is not a folder");
  if (fs::exists(st) && existing == Existing::replace) {
    if (fs::is_symlink(st)) throw_usage(name + " is a symbolic link; give a new folder (or the link's target) instead");
    const bool empty = fs::is_empty(name, ec);
    if (ec) throw_usage(name + ": cannot list it (" + ec.message() + ")");
    if (!empty && !fs::exists(fs::symlink_status(path_join(name, kExportMark), ec)))
      throw_usage(name + " exists and is not an earlier export (it holds no " + kExportMark +
                  "): an export replaces its folder whole; choose a new folder, or remove this one");
  }
  return name;
}

void FolderWriter::set_export_run(const std::string& run) { export_run() = run; }

std::string FolderWriter::export_owner(const std::string& dir) {
  // Files of this tool's own making, found: a FIFO there blocked the run at
  // its export, after all the training.
  require_found_file(path_join(dir, kExportMark), "an export's mark file");
  std::ifstream f(path_join(dir, kExportMark));
  std::string line, run, relative, id;
  while (std::getline(f, line)) {
    // The run relative to the export (an export inside its run's folder):
    // a run folder moved or copied elsewhere still owns its export.
    if (line.rfind("run-relative: ", 0) == 0) relative = line.substr(14);
    if (line.rfind("run-id: ", 0) == 0) id = line.substr(8);
    if (line.rfind("run: ", 0) == 0 && run.empty()) run = line.substr(5);
  }
  // The folder up there owns it only if it is that run (its id, which moves
  // and copies with it): an export moved on its own into another folder is
  // still the first run's. Not normalised here: ".." after a link is the
  // caller's to resolve (normalised_path), as the kernel does.
  if (!relative.empty() && !id.empty()) {
    const std::string up = (fs::path(dir) / relative).string();
    require_found_file(path_join(up, kRunId), "a run's id file");
    std::ifstream idf(path_join(up, kRunId));
    std::string there;
    if (std::getline(idf, there) && there == id) return up;
  }
  return run;
}

FolderWriter::FolderWriter(const std::string& dst, Existing existing)
    : dst_(check_destination(dst, existing)), existing_(existing) {
  const fs::path parent = fs::path(dst_).parent_path();
  if (!parent.empty()) make_directories(parent.string());
  remove_stale_temporaries(dst_);
  for (int tries = 0;; ++tries) {  // a name a killed process with this PID left (containers reuse PIDs) is skipped
    tmp_ = temporary_path(dst_);
    if (::mkdir(tmp_.c_str(), 0755) == 0) {
      cleanup_.arm(tmp_.c_str(), /*tree=*/true);  // SIGTERM and the like remove it (signals.hpp)
      break;
    }
    if (errno != EEXIST || tries == 100) throw_runtime(tmp_ + ": cannot create folder: " + std::strerror(errno));
  }
  try {
    mark_fd_ = open_lock_file(path_join(tmp_, kWriterMark), "the folder writer's mark");
    try_flock(mark_fd_, LOCK_EX);  // without locks, the folder is never taken for a killed writer's
  } catch (...) {  // a half-made object's destructor does not run
    std::error_code ec;
    fs::remove_all(tmp_, ec);
    throw;
  }
}

FolderWriter::~FolderWriter() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  if (mark_fd_ >= 0) ::close(mark_fd_);
}

void FolderWriter::link_tree(const std::string& src, const std::string& rel, const std::set<std::string>& skip) {
  const fs::path base = fs::path(tmp_) / rel;
  make_directories(base.string());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src, ec)) {
    const std::string name = e.path().filename().string();
    if (skip.count(name)) continue;
    // A folder made from an export is not an export (commit marks the real ones).
    if (name == kExportMark || name == kWriterMark) continue;
    if (fs::is_directory(e.path(), ec)) link_tree(e.path().string(), (fs::path(rel) / name).string());
    else place_file(e.path(), base / name);
  }
  if (ec) throw_runtime(src + ": cannot list: " + ec.message());
}

namespace {
void check_tree_below(const std::string& dir, std::set<std::pair<dev_t, ino_t>>& open,
                      const std::set<std::string>& skip = {}) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw_bad_input(dir, std::strerror(errno));
  if (!open.insert({st.st_dev, st.st_ino}).second)
    throw_bad_input(dir, "is a symbolic link loop: the folder holds itself");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (skip.count(e.path().filename().string())) continue;
    const std::string p = e.path().string();
    struct stat es {};
    if (::stat(p.c_str(), &es) != 0) throw_bad_input(p, std::strerror(errno));
    if (S_ISDIR(es.st_mode)) check_tree_below(p, open);
    else if (!S_ISREG(es.st_mode)) throw_bad_input(p, "is not a regular file or folder");
    else if (::access(p.c_str(), R_OK) != 0) throw_bad_input(p, std::strerror(errno));
  }
  if (ec) throw_bad_input(dir, "cannot list: " + ec.message());
  open.erase({st.st_dev, st.st_ino});
}
}  // namespace

void FolderWriter::check_tree(const std::string& src, const std::set<std::string>& skip) {
  std::set<std::pair<dev_t, ino_t>> open;
  check_tree_below(src, open, skip);
}

void FolderWriter::copy_component_extras(const std::string& src, const std::string& rel) {
  const fs::path base = fs::path(tmp_) / rel;
  make_directories(base.string());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src, ec)) {
    const std::string name = e.path().filename().string();
    if (fs::is_directory(e.path(), ec) || is_weight_file(name)) continue;
    copy_file_to(e.path().string(), (base / name).string(), shown(base / name));
  }
}

void FolderWriter::commit() {
  if (existing_ == Existing::replace) {
    std::string run_lines;
    if (!export_run().empty()) {
      // The run checked the folder's owner when it started; another run may
      // have exported there since (two runs started at once).
      const std::string owner = export_owner(dst_);
      std::error_code ec1, ec2;
      if (!owner.empty() && fs::weakly_canonical(fs::absolute(owner), ec1).lexically_normal() !=
                                fs::weakly_canonical(fs::absolute(export_run()), ec2).lexically_normal())
        throw_usage(dst_ + " became the export of another run (" + owner +
                    ") while this one ran, and is left to it; this run's checkpoints are kept: --resume with "
                    "another loop.export_dir exports them");
      run_lines = "run: " + export_run() + "\n";
      // Inside the run's folder (the default OUT/final): also the way up to
      // it, which stays true when the run folder moves.
      std::error_code ec;
      const fs::path here = fs::weakly_canonical(fs::absolute(dst_, ec), ec).lexically_normal();
      const fs::path up = fs::path(export_run()).lexically_relative(here);
      bool only_up = !up.empty();
      for (const auto& part : up) only_up = only_up && part == "..";
      if (!ec && only_up) {
        // The run's id, made at its first export, travels with its folder.
        const std::string id_file = path_join(export_run(), kRunId);
        require_found_file(id_file, "a run's id file");
        std::string id;
        std::ifstream idf(id_file);
        if (!std::getline(idf, id) || id.size() != 16) {
          std::random_device rd;
          char buf[17];
          std::snprintf(buf, sizeof buf, "%08x%08x", unsigned(rd()), unsigned(rd()));
          id = buf;
          write_file_atomic(id_file, id + "\n");
        }
        run_lines += "run-relative: " + up.string() + "\nrun-id: " + id + "\n";
      }
    }
    write_file_atomic(path_join(tmp_, kExportMark),
                      "rass: a training export; a later export of the same run may replace this folder whole\n" +
                          run_lines);
  }
  // A folder being replaced waits inside the new one's temporary (still
  // marked by this writer): killed between the two renames, the next writer
  // removes both with the temporary, and the finished folder never has it.
  std::error_code ec;
  // From here the temporary may hold the user's old folder: a signal must
  // not remove it (killed in these few calls, the next writer sorts it out).
  // If a handler on another thread already took it, the process is ending:
  // nothing may be moved into place (the handler's open folder would follow
  // the rename and empty the new folder, and the old one moved into it).
  if (!cleanup_.disarm())
    for (;;) ::pause();
  const std::string old = path_join(tmp_, kOldFolder);
  const bool replacing = existing_ == Existing::replace && fs::exists(fs::symlink_status(dst_, ec));
  if (replacing && std::rename(dst_.c_str(), old.c_str()) != 0)
    throw_runtime(dst_ + ": cannot move the old folder aside to replace it: " + std::strerror(errno));
  if (std::rename(tmp_.c_str(), dst_.c_str()) != 0) {
    const int err = errno;
    const std::string why = std::strerror(err);
    // rename(2) puts a folder over an empty folder only: one that filled,
    // or became a file or link, since the check is left as it is.
    if (existing_ == Existing::empty_only && (err == ENOTEMPTY || err == EEXIST || err == ENOTDIR || err == EISDIR))
      throw_usage(dst_ + " was made or filled by someone else while this ran (" + why +
                  "): it is left as it is, and the new folder is discarded");
    if (replacing && std::rename(old.c_str(), dst_.c_str()) != 0)
      throw_runtime(dst_ + ": cannot rename " + tmp_ + " to it (" + why + "), and the old folder stays at " + old +
                    ": " + std::strerror(errno));
    throw_runtime(dst_ + ": cannot rename " + tmp_ + " to it: " + why);
  }
  committed_ = true;
  // Killed before these, the finished folder keeps a stray mark (or the old
  // folder), which nothing reads.
  if (replacing) fs::remove_all(path_join(dst_, kOldFolder), ec);
  ::unlink(path_join(dst_, kWriterMark).c_str());
}

}  // namespace rass::model
