#include "rass/model/run_files.hpp"

#include <filesystem>

#include "rass/core/error.hpp"

namespace fs = std::filesystem;

namespace rass::model {

using batch::OutputGuard;

RunFiles::RunFiles(const std::string& model, const std::vector<std::string>& loras,
                   const std::vector<std::string>& others) {
  add_folder_or_file(model, "model folder");
  for (const std::string& l : loras) {
    if (l.empty() || l == "-") continue;
    guard_.add_input(l);
    // lora_io reads the alpha from the PEFT config beside an adapter_model.safetensors.
    if (fs::path(l).filename() == "adapter_model.safetensors")
      guard_.add_input((fs::path(l).parent_path() / "adapter_config.json").string());
  }
  // Other inputs may be folders too (rass-samsr's --sam DIR): nothing is
  // written inside them either.
  for (const std::string& f : others)
    if (f != "-") add_folder_or_file(f, "input folder");
}

void RunFiles::add_folder_or_file(const std::string& path, const char* kind) {
  if (path.empty()) return;
  guard_.add_input(path);
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return;
  folders_.emplace_back(OutputGuard::normalised_path(path), kind);
  guard_.add_folder_files(path);
}

void RunFiles::refuse_in_model(const std::string& path, const std::string& what) const {
  const std::string p = OutputGuard::normalised_path(path);
  for (const auto& [folder, kind] : folders_)
    if (OutputGuard::path_within(p, folder))
      throw_usage(what + " " + path + " is inside the " + kind + " " + folder +
                  ": refusing to write into an input; choose a path outside it");
}

void RunFiles::check_output_file(const std::string& path, const std::string& what, bool per_item) {
  if (path.empty()) return;
  guard_.check_output_file(path, what, per_item);
  if (path == "-") return;
  refuse_in_model(path, what);
  const std::string id = OutputGuard::output_identity(path);
  if (id.empty()) return;  // a device or pipe: outputs may share /dev/null
  const auto [it, fresh] = written_.emplace(id, what + " " + path);
  if (!fresh)
    throw_usage(what + " " + path + " and " + it->second + " name the same file: one would overwrite the other");
}

void RunFiles::check_item_outputs(batch::Item& item, const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (const auto& [path, what] : outputs) {
    check_output_file(path, what, true);
    const std::string why = batch::OutputGuard::item_output_problem(path, what);
    if (!why.empty() && item.error.empty()) item.error = item.name() + ": " + why;
  }
}

void RunFiles::check_output_dir(const std::string& dir, const std::string& what, bool own_folder) {
  if (dir.empty()) return;
  guard_.check_output_dir(dir, what);
  refuse_in_model(dir, what);
  if (!own_folder) return;
  const auto [it, fresh] = out_dirs_.emplace(OutputGuard::normalised_path(dir), what + " " + dir);
  if (!fresh)
    throw_usage(what + " " + dir + " and " + it->second +
                " name the same folder: give each kind of output a folder of its own");
}

}  // namespace rass::model
