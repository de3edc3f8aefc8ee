#include "rass/train/train_checkpoint.hpp"

#include <cstdio>
#include <dirent.h>

#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"

namespace rass::train {

void write_train_checkpoint(const std::string& path, const TrainCheckpoint& ck) {
  std::vector<torch::Tensor> keep;  // contiguous CPU copies alive until written
  std::vector<TensorToWrite> out;
  keep.reserve(ck.tensors.size());
  for (const auto& [name, t] : ck.tensors) {
    keep.push_back(t.detach().cpu().contiguous());
    const torch::Tensor& c = keep.back();
    out.push_back({name, model::file_dtype(c.scalar_type()), std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
                   c.data_ptr(), size_t(c.numel()) * c.element_size()});
  }
  std::map<std::string, std::string> meta = {{"format", kCheckpointFormat},
                                             {"format_version", std::to_string(kCheckpointVersion)},
                                             {"step", std::to_string(ck.step)},
                                             {"seed", std::to_string(ck.seed)},
                                             {"world_size", std::to_string(ck.world)},
                                             {"stage", ck.stage},
                                             {"config", json_file_text(ck.config, path)}};
  write_safetensors(path, out, meta);
}

namespace {
int64_t meta_int(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  if (it == m.end()) throw_bad_input(path, "checkpoint metadata lacks '" + key + "'");
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used != it->second.size() || v < 0) throw std::invalid_argument("");
    return v;
  } catch (const std::exception&) {
    throw_bad_input(path, "checkpoint metadata '" + key + "' is not a non-negative integer: '" + it->second + "'");
  }
}
}  // namespace

std::string checkpoint_damage(const std::string& path) {
  try {
    SafeTensorsFile::open(path);
  } catch (const Error& e) {
    if (e.code() == ExitCode::bad_input) return e.what();
    throw;
  }
  return "";
}

TrainCheckpoint read_train_checkpoint(const std::string& path) {
  auto f = SafeTensorsFile::open(path);
  const auto& m = f->metadata();
  auto fmt = m.find("format");
  if (fmt == m.end() || fmt->second != kCheckpointFormat)
    throw_bad_input(path, "not a rass-train checkpoint (its metadata has no format '" + std::string(kCheckpointFormat) + "')");
  const int64_t version = meta_int(m, "format_version", path);
  if (version > kCheckpointVersion)
    throw_bad_input(path, "checkpoint format version " + std::to_string(version) + " is newer than this rass-train's (" +
                              std::to_string(kCheckpointVersion) + ")");
  TrainCheckpoint ck;
  ck.path = path;
  ck.step = meta_int(m, "step", path);
  try {
    ck.seed = std::stoull(m.count("seed") ? m.at("seed") : std::string("x"));
  } catch (const std::exception&) {
    throw_bad_input(path, "checkpoint metadata 'seed' is missing or not a number");
  }
  ck.world = int(meta_int(m, "world_size", path));
  ck.stage = m.count("stage") ? m.at("stage") : "";
  if (!m.count("config")) throw_bad_input(path, "checkpoint metadata has no 'config' (not a rass-train checkpoint?)");
  try {
    ck.config = parse_json_bounded<nlohmann::ordered_json>(m.at("config"));
  } catch (const std::exception& e) {
    throw_bad_input(path, std::string("checkpoint metadata 'config' is not JSON: ") + e.what());
  }
  for (const TensorView& v : f->tensors()) ck.tensors[v.name] = model::to_tensor(v, path);
  return ck;
}

std::string checkpoint_path(const std::string& dir, int64_t step) {
  return path_join(dir, "step_" + std::to_string(step) + ".safetensors");
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    const std::string pre = "step_", suf = ".safetensors";
    if (n.size() <= pre.size() + suf.size() || n.compare(0, pre.size(), pre) != 0 ||
        n.compare(n.size() - suf.size(), suf.size(), suf) != 0)
      continue;
    const std::string num = n.substr(pre.size(), n.size() - pre.size() - suf.size());
    if (num.find_first_not_of("0123456789") != std::string::npos || num.size() > 18) continue;
    out.emplace_back(std::stoll(num), path_join(dir, n));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void prune_checkpoints(const std::string& dir, int keep) {
  if (keep <= 0) return;
  auto all = list_checkpoints(dir);
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) std::remove(all[i].second.c_str());
}

namespace {
void diff(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b, const std::string& at,
          const std::set<std::string>& ignore, std::vector<std::string>& out) {
  if (ignore.count(at)) return;
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      const std::string k = at.empty() ? it.key() : at + "." + it.key();
      if (!b.contains(it.key())) {
        if (!ignore.count(k)) out.push_back(k);
      } else {
        diff(it.value(), b.at(it.key()), k, ignore, out);
      }
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      const std::string k = at.empty() ? it.key() : at + "." + it.key();
      if (!a.contains(it.key()) && !ignore.count(k)) out.push_back(k);
    }
    return;
  }
  if (a == b) return;
  // One file or folder spelled two ways ("data/hq" and "./data/hq/", a
  // relative and an absolute path, a link) is the same input.
  if (a.is_string() && b.is_string() && !a.get<std::string>().empty() && !b.get<std::string>().empty()) {
    std::error_code ec;
    if (std::filesystem::equivalent(a.get<std::string>(), b.get<std::string>(), ec) && !ec) return;
  }
  out.push_back(at.empty() ? "(the whole configuration)" : at);
}
}  // namespace

std::vector<std::string> config_differences(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b,
                                            const std::set<std::string>& ignore) {
  std::vector<std::string> out;
  diff(a, b, "", ignore, out);
  return out;
}

}  // namespace rass::train
