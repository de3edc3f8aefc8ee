// Why a path given as a folder (--model, --weights, a config's hq_dir) is
// not one, in words: "/nonexistent: is not a folder" sent users looking for
// a file where the path was only misspelled.
#pragma once
#include <string>

namespace rass {

// "" when path is a folder (through symbolic links); else "does not exist",
// "is a broken symbolic link", "is a symbolic-link loop", "is not a folder"
// or "cannot be examined (<reason>)".
std::string folder_problem(const std::string& path);

// Error(bad_input) "<path>: <problem> (<what>)" unless path is a folder.
void require_folder(const std::string& path, const std::string& what);

}  // namespace rass
