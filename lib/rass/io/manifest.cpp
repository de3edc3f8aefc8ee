#include "rass/io/manifest.hpp"

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/file.hpp"
#include "rass/core/text_lines.hpp"

namespace fs = std::filesystem;

namespace rass {

std::vector<ManifestRow> read_manifest(const std::string& path) {
  // A lone CR ends a line too, as in tag files (a CR cannot be part of a
  // JSON line, nor of a key).
  std::vector<ManifestRow> rows;
  int n = 0;
  for (const std::string& line : text_lines(read_text_file_bytes(path))) {
    ++n;
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    ManifestRow row;
    row.line = n;
    if (line[first] == '{') {
      const std::string where = (path == "-" ? std::string("<stdin>") : path) + ": line " + std::to_string(n) + ": ";
      nlohmann::json j;
      try {
        j = parse_json_unique_keys<nlohmann::json>(line);
      } catch (const std::exception& e) {
        row.error = where + "invalid JSON: " + e.what();
      }
      if (row.error.empty() && !j.is_object()) row.error = where + "expected a JSON object";
      if (row.error.empty())
        for (auto it = j.begin(); it != j.end(); ++it) {
          if (it->is_string()) row.fields[it.key()] = it->get<std::string>();
          else row.other_fields.push_back(it.key());
        }
    } else {
      std::stringstream ls(line);
      std::string col;
      while (std::getline(ls, col, '\t')) row.columns.push_back(col);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string resolve_manifest_path(const std::string& manifest_path, const std::string& p) {
  if (p.empty() || p == "-" || p[0] == '/' || manifest_path == "-") return p;
  fs::path dir = fs::path(manifest_path).parent_path();
  return dir.empty() ? p : (dir / p).lexically_normal().string();
}

std::string relative_to_manifest(const std::string& manifest_path, const std::string& p) {
  fs::path dir = fs::path(manifest_path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::path rel = fs::proximate(fs::path(p), dir, ec);
  return ec ? p : rel.string();
}

}  // namespace rass
