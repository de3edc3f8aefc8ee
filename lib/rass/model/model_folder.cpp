#include "rass/model/model_folder.hpp"

#include <cstdio>
#include <filesystem>

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

void place_file(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::is_symlink(from, ec)) {
    fs::create_hard_link(from, to, ec);
    if (!ec) return;
  }
  fs::copy_file(from, to, ec);  // follows a symbolic link: the output holds the data
  if (ec) throw_runtime(to.string() + ": cannot copy " + from.string() + ": " + ec.message());
}
}  // namespace

FolderWriter::FolderWriter(std::string dst) : dst_(std::move(dst)) {
  while (dst_.size() > 1 && dst_.back() == '/') dst_.pop_back();
  std::error_code ec;
  if (fs::exists(dst_, ec)) throw_usage(dst_ + " exists; the output folder must be new (remove it or choose another)");
  const fs::path parent = fs::path(dst_).parent_path();
  if (!parent.empty()) make_directories(parent.string());
  tmp_ = temporary_path(dst_);
  if (!fs::create_directory(tmp_, ec)) throw_runtime(tmp_ + ": cannot create folder: " + ec.message());
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
    fs::copy_file(e.path(), base / name, ec);
    if (ec) throw_runtime((base / name).string() + ": cannot copy " + e.path().string() + ": " + ec.message());
  }
}

void FolderWriter::commit() {
  if (std::rename(tmp_.c_str(), dst_.c_str()) != 0)
    throw_runtime(dst_ + ": cannot rename " + tmp_ + " to it");
  committed_ = true;
}

}  // namespace rass::model
