#include "rass/model/model_folder.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace fs = std::filesystem;

namespace rass::model {

namespace {
bool is_weight_file(const std::string& name) {
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  return ends(".safetensors") || ends(".bin") || ends(".ckpt") || ends(".pt") || ends(".pth") ||
         (name.find(".index") != std::string::npos && ends(".json"));
}

// Each temporary folder holds this file while it is written: the host and
// process writing it, so a later run can tell a folder whose writer was
// killed from one another process is still filling (on a shared filesystem,
// perhaps from another host). It is removed once the folder is in place.
constexpr char kWriterMark[] = ".rass-writer";

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  return host;
}

void put_writer_mark(const std::string& dir) {
  write_file_atomic(path_join(dir, kWriterMark), host_name() + " " + std::to_string(::getpid()) + "\n");
}

void remove_writer_mark(const std::string& dir) { ::unlink(path_join(dir, kWriterMark).c_str()); }

// Temporary folders beside `dst` ("DST.tmp.PID.N") that a killed writer left
// (SIGKILL, or SIGTERM and SIGINT, which no tool catches: a model folder is
// gigabytes): removed when their mark names this host and a process that no
// longer exists.
void remove_stale_temporaries(const std::string& dst) {
  const fs::path d(dst);
  const fs::path parent = d.has_parent_path() ? d.parent_path() : fs::path(".");
  const std::string prefix = d.filename().string() + ".tmp.";
  const std::string host = host_name();
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const std::string name = e.path().filename().string();
    std::error_code ec2;
    if (name.compare(0, prefix.size(), prefix) != 0 || !fs::is_directory(e.symlink_status(ec2))) continue;
    std::ifstream in(e.path() / kWriterMark);
    std::string h;
    long long pid = 0;
    if (!(in >> h >> pid) || h != host || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // still running (or not ours to ask)
    stale.push_back(e.path());
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
  // A last component "." or ".." names a folder by where it is, not a new
  // one: replacing "runs/a/.." would replace "runs".
  std::string raw = dst;
  while (raw.size() > 1 && raw.back() == '/') raw.pop_back();
  const std::string tail = fs::path(raw).filename().string();
  if (name.empty() || name == "." || name == "/" || tail == "." || tail == "..")
    throw_usage("output folder '" + dst + "' names no new folder");
  std::error_code ec;
  const auto st = fs::symlink_status(name, ec);
  if (fs::exists(st) && existing == Existing::refuse)
    throw_usage(name + " exists; the output folder must be new (remove it or choose another)");
  if (fs::exists(st) && !fs::is_directory(fs::status(name, ec))) throw_usage(name + " exists and is not a folder");
  return name;
}

FolderWriter::FolderWriter(const std::string& dst, Existing existing)
    : dst_(check_destination(dst, existing)), existing_(existing) {
  std::error_code ec;
  const fs::path parent = fs::path(dst_).parent_path();
  if (!parent.empty()) make_directories(parent.string());
  remove_stale_temporaries(dst_);
  tmp_ = temporary_path(dst_);
  if (!fs::create_directory(tmp_, ec)) throw_runtime(tmp_ + ": cannot create folder: " + ec.message());
  put_writer_mark(tmp_);
}

FolderWriter::~FolderWriter() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void FolderWriter::link_tree(const std::string& src, const std::string& rel, const std::set<std::string>& skip) {
  const fs::path base = fs::path(tmp_) / rel;
  make_directories(base.string());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src, ec)) {
    const std::string name = e.path().filename().string();
    if (skip.count(name)) continue;
    if (fs::is_directory(e.path(), ec)) link_tree(e.path().string(), (fs::path(rel) / name).string());
    else place_file(e.path(), base / name);
  }
  if (ec) throw_runtime(src + ": cannot list: " + ec.message());
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
  std::error_code ec;
  std::string old;
  if (existing_ == Existing::replace && fs::exists(fs::symlink_status(dst_, ec))) {
    old = temporary_path(dst_);
    put_writer_mark(dst_);  // killed while it is aside, the old folder is removed by a later run
    if (std::rename(dst_.c_str(), old.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      remove_writer_mark(dst_);
      throw_runtime(dst_ + ": cannot move the old folder aside to replace it: " + why);
    }
  }
  if (std::rename(tmp_.c_str(), dst_.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    if (!old.empty() && std::rename(old.c_str(), dst_.c_str()) == 0) remove_writer_mark(dst_);
    throw_runtime(dst_ + ": cannot rename " + tmp_ + " to it: " + why);
  }
  committed_ = true;
  // After the rename, so that a killed writer's folder always has its mark
  // (killed between the two, the finished folder keeps a stray mark, which
  // nothing reads).
  remove_writer_mark(dst_);
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace rass::model
