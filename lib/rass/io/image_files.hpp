// Finding input files: the image extensions the codecs read, and a recursive
// directory listing shared by every batch tool.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace rass {

// .png .jpg .jpeg .ppm .pgm .pnm (case-insensitive). The format itself is
// sniffed from the bytes when reading; this only selects files in a directory.
bool has_image_extension(const std::string& path);

// Regular files under `dir` (recursively, following directory symlinks) whose
// path `keep` accepts, in directory order; the subtree at `skip_dir` (e.g. an
// output directory inside the input) is not entered. Throws Error(bad_input)
// naming `dir` when it cannot be listed.
std::vector<std::string> list_files(const std::string& dir, const std::function<bool(const std::string&)>& keep,
                                    const std::string& skip_dir = "");

}  // namespace rass
