// Files a tool finds by itself (a model folder's config, DIR/<key>.npz of a
// folder input) rather than files the user names. A FIFO or device in such
// a place blocks the tool at its open, or reads forever: refused as bad
// input. A FIFO the user names (`mkfifo f; --replay f`, `<(...)`) is read.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rass {

// Error(bad_input) naming `path` when it exists and is not a regular file
// (`what`: what was expected there, e.g. "a caption file"). A missing path
// passes: its reader says so.
void require_found_file(const std::string& path, const std::string& what);
// The same as a message without the path ("is not a regular file but a
// FIFO (... is expected there)"), "" when nothing is wrong: for callers that
// make a bad item of it rather than throw.
std::string found_file_problem(const std::string& path, const std::string& what);

// read_json_file (json_file.hpp) after require_found_file(path, "a JSON file").
// `unique_keys`: a key given twice in one object is refused (this project's
// own formats: sam.json, samsr.json, dreamclear.json, segment.json), where
// other programs' files keep the last, as Python reads them.
nlohmann::ordered_json read_found_json(const std::string& path, bool unique_keys = false);

}  // namespace rass
