// Finding input files: the image extensions the codecs read, and a recursive
// directory listing shared by every batch tool.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace rass {

// .png .jpg .jpeg .ppm .pgm .pnm (case-insensitive). The format itself is
// sniffed from the bytes when reading; this only selects files in a directory.
bool has_image_extension(const std::string& path);

// Regular files under `dir` (recursively) whose path `keep` accepts, sorted
// by path. Directory symlinks are followed, but no directory is entered twice
// (a link loop lists each file once); the subtrees at `skip_dirs` (e.g. an
// output directory) are not entered. Dangling links and FIFOs, sockets or
// devices under a kept name are listed too, so that reading them names them;
// the latter also go into `not_regular` when given. Throws Error(bad_input)
// naming the directory that cannot be listed.
std::vector<std::string> list_files(const std::string& dir, const std::function<bool(const std::string&)>& keep,
                                    const std::vector<std::string>& skip_dirs = {},
                                    std::set<std::string>* not_regular = nullptr);

}  // namespace rass
