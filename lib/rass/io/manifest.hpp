// Manifests: one item per line, either a JSON object ({"hq": "a.png", ...}) or
// tab-separated columns (a single column is just a path). Blank lines and lines
// starting with '#' are skipped. Relative paths in a manifest are relative to
// the manifest's own directory, so a dataset folder can be moved as a whole.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace rass {

struct ManifestRow {
  int line = 0;
  std::map<std::string, std::string> fields;  // JSON lines: the string values
  std::vector<std::string> other_fields;      // JSON lines: fields whose value is not a string
  std::vector<std::string> columns;           // TSV / plain lines
  std::string error;                          // a malformed line: "<file>: line N: ..." (the row is a bad item)
};

// Throws Error(bad_input) naming the file when it cannot be read; a malformed
// line is returned as a row with `error` set, so one bad line never ends a run.
std::vector<ManifestRow> read_manifest(const std::string& path);
// Resolves `p` from a manifest at `manifest_path` (absolute and "-" stay as they are).
std::string resolve_manifest_path(const std::string& manifest_path, const std::string& p);
// The path to write into a manifest at `manifest_path` so that it resolves to `p`.
std::string relative_to_manifest(const std::string& manifest_path, const std::string& p);

}  // namespace rass
