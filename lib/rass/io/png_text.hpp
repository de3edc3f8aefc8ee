// Text in PNG files: iTXt chunks (uncompressed UTF-8), the way image tools
// keep what made an image (Stable Diffusion front ends write their settings
// into a "parameters" chunk). rass-restore and rass-segment write theirs
// under the keyword "rass" (batch/provenance.hpp). Pixels are untouched:
// every PNG reader ignores ancillary chunks it does not know. Torch-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rass {

// `png` (a whole PNG file) with one iTXt chunk per (keyword, text) placed
// right after IHDR, before the image data. Keywords are 1-79 printable
// Latin-1 characters (Error(runtime) otherwise: a programming error).
std::vector<uint8_t> png_add_text(const std::vector<uint8_t>& png,
                                  const std::vector<std::pair<std::string, std::string>>& text);

// The text of the first tEXt or uncompressed iTXt chunk named `keyword`
// before the image data. Reads only the chunks ahead of IDAT (no pixels
// decoded); nullopt for a file that cannot be read, is not a PNG, has no
// such chunk, or whose chunk fails its CRC.
std::optional<std::string> read_png_text(const std::string& path, const std::string& keyword);

struct Image;
// An output image of a network tool: the format of `path`'s extension (PNG
// for "-", stdout, or an unknown one), written atomically; a PNG carries
// `settings` in its "rass" chunk (JPEG and PPM have no place for it).
void write_image_with_settings(const std::string& path, const Image& img, const std::string& settings);

}  // namespace rass
