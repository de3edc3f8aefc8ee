#include "rass/train/run_dir.hpp"

#include "rass/model/model_folder.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "rass/batch/output_guard.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/manifest.hpp"

namespace fs = std::filesystem;

namespace rass::train {

RunDirLock::RunDirLock(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  created_ = !fs::exists(dir, ec);
  make_directories(dir);
  const std::string path = path_join(dir, ".rass-train.lock");
  path_ = path;
  // The process id is written into it: never through a link (a planted
  // .rass-train.lock -> some file would be truncated), never a device or a
  // FIFO (open_lock_file), nor into a file with other names.
  fd_ = open_lock_file(path, "the run's lock file");
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || st.st_nlink != 1) {
    ::close(fd_);
    fd_ = -1;
    throw_usage(path + ": the run's lock file has other names (hard links); refusing to write into it (remove it)");
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(buf, size_t(n)) : std::string();
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw_usage(dir + ": another rass-train run" + (holder.empty() ? "" : " (process " + holder + ")") +
                  " is using this output directory; wait for it to end or choose another --out-dir");
    throw_runtime(path + ": cannot lock the run's lock file: " + std::strerror(err));
  }
  // The holder's process id, for the message a second run prints.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    // Only the message needs it; the lock itself holds.
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

void RunDirLock::abandon() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // still held: no other run can be using it
  ::close(fd_);
  fd_ = -1;
  if (created_) ::rmdir(dir_.c_str());  // fails, as it should, when anything else is there
}

std::vector<std::string> input_directories(const nlohmann::ordered_json& stage_section, const std::string& stage,
                                           bool listed) {
  std::vector<std::string> out;
  if (!stage_section.is_object()) return out;
  for (auto it = stage_section.begin(); it != stage_section.end(); ++it) {
    if (!it.value().is_string()) continue;
    const std::string p = it.value().get<std::string>();
    std::error_code ec;
    if (!p.empty() && fs::is_directory(p, ec)) out.push_back(stage + "." + it.key() + "=" + p);
    const std::string& k = it.key();
    if (!listed || p.empty() || k.size() < 8 || k.compare(k.size() - 8, 8, "manifest") != 0 || !fs::is_regular_file(p, ec))
      continue;
    // The folders of the files it lists (a malformed manifest is the stage's
    // to report, with its line).
    std::set<std::string> seen;
    try {
      for (const ManifestRow& row : read_manifest(p)) {
        std::vector<std::string> named = row.columns;
        for (const auto& f : row.fields) named.push_back(f.second);
        for (const std::string& n : named) {
          if (n.empty() || n == "-") continue;
          const std::string file = resolve_manifest_path(p, n);
          if (!fs::is_regular_file(file, ec)) continue;
          const std::string dir = fs::path(file).parent_path().string();
          if (seen.insert(dir.empty() ? "." : dir).second)
            out.push_back(stage + "." + k + " (a folder it lists files in)=" + (dir.empty() ? "." : dir));
        }
      }
    } catch (const Error&) {
    }
  }
  // unet's texts default to <images>/../captions or ../tags (the
  // rass-scenes layout; pretrain_data.cpp): a folder it reads that no
  // setting names (a run was written into it, exit 0).
  const auto images = stage_section.find("images"), text = stage_section.find("text"),
             text_dir = stage_section.find("text_dir");
  if (images != stage_section.end() && images->is_string() && text != stage_section.end() && text->is_string() &&
      (*text == "caption" || *text == "tags") && text_dir != stage_section.end() && text_dir->is_string() &&
      text_dir->get<std::string>().empty()) {
    fs::path img = fs::path(images->get<std::string>()).lexically_normal();
    if (img.filename().empty()) img = img.parent_path();
    const std::string d = (img.parent_path() / (*text == "caption" ? "captions" : "tags")).string();
    std::error_code ec;
    if (!images->get<std::string>().empty() && fs::is_directory(d, ec))
      out.push_back(stage + ".text_dir (" + images->get<std::string>() + "/../" +
                    (*text == "caption" ? "captions" : "tags") + ")=" + d);
  }
  return out;
}

std::vector<std::string> input_file_folders(const nlohmann::ordered_json& stage_section, const std::string& stage) {
  std::vector<std::string> out;
  if (!stage_section.is_object()) return out;
  for (auto it = stage_section.begin(); it != stage_section.end(); ++it) {
    if (!it.value().is_string()) continue;
    const std::string p = it.value().get<std::string>();
    std::error_code ec;
    if (p.empty() || !fs::is_regular_file(p, ec)) continue;
    const std::string dir = fs::path(p).parent_path().string();
    out.push_back(stage + "." + it.key() + " (the folder of the file it names)=" + (dir.empty() ? "." : dir));
  }
  return out;
}

void check_output_outside_inputs(const std::string& what, const std::string& dir, const std::vector<std::string>& inputs) {
  if (dir.empty()) return;
  using batch::OutputGuard;
  const std::string out = OutputGuard::normalised_path(dir);
  for (const std::string& in : inputs) {
    const size_t eq = in.find('=');
    const std::string key = in.substr(0, eq), path = in.substr(eq + 1), in_dir = OutputGuard::normalised_path(path);
    if (OutputGuard::path_within(out, in_dir))
      throw_usage(what + " " + dir + " is " + (in_dir == out ? "" : "inside ") + "the input folder " + path + " (" +
                  key + "): a run never writes into the folders it reads; choose another");
  }
}

void check_export_dir(const std::string& export_dir, const std::string& out_dir, const std::vector<std::string>& inputs,
                      const std::vector<std::string>& file_folders) {
  if (export_dir.empty()) return;
  check_output_outside_inputs("loop.export_dir", export_dir, inputs);
  using batch::OutputGuard;
  const std::string ex = OutputGuard::normalised_path(export_dir);
  std::vector<std::string> held = inputs;
  held.insert(held.end(), file_folders.begin(), file_folders.end());
  for (const std::string& in : held) {
    const size_t eq = in.find('=');
    const std::string key = in.substr(0, eq), path = in.substr(eq + 1);
    if (OutputGuard::path_within(OutputGuard::normalised_path(path), ex))
      throw_usage("loop.export_dir " + export_dir + " holds the input folder " + path + " (" + key +
                  "), and the export replaces its folder whole; choose another");
  }
  if (out_dir.empty()) return;
  const std::string out = OutputGuard::normalised_path(out_dir);
  // An export replaces only its own run's earlier export.
  const std::string owner_named = model::FolderWriter::export_owner(export_dir);
  const std::string owner = owner_named.empty() ? "" : OutputGuard::normalised_path(owner_named);
  if (!owner.empty() && owner != out)
    throw_usage("loop.export_dir " + export_dir + " is the export of another run (" + owner +
                "), and the export replaces its folder whole; choose another folder, or remove that one");
  if (OutputGuard::path_within(out, ex))
    throw_usage("loop.export_dir " + export_dir + " is or holds the run's output directory " + out_dir +
                " (its log and checkpoints), and the export replaces its folder whole; choose another (default: " +
                out_dir + "/final)");
  if (OutputGuard::path_within(ex, OutputGuard::normalised_path(path_join(out_dir, "checkpoints"))))
    throw_usage("loop.export_dir " + export_dir + " lies in the run's checkpoints folder; choose another");
}

void check_export_writable(const std::string& export_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(export_dir, ec).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  // The temporary and the old folder go beside the export: its parent, or
  // the nearest folder above that exists (the writer makes the rest).
  for (p = p.parent_path(); !p.empty() && !fs::exists(p, ec); p = p.parent_path())
    if (p == p.root_path()) break;
  if (p.empty()) return;
  if (!fs::is_directory(p, ec))
    throw_usage("loop.export_dir " + export_dir + ": " + p.string() + " on its way is not a folder; choose another");
  if (::access(p.c_str(), W_OK | X_OK) != 0)
    throw_usage("loop.export_dir " + export_dir + ": cannot write in " + p.string() + " (" + std::strerror(errno) +
                "), where the export is made; choose another");
}

}  // namespace rass::train
