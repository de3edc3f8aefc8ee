#include "rass/io/png_text.hpp"

#include <libdeflate.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/image.hpp"
#include "rass/io/codecs.hpp"
#include "rass/io/image_io.hpp"

namespace rass {

using detail::kPngSignature;
using detail::load_be32;

namespace {

constexpr uint32_t kMaxTextChunk = 1u << 20;  // settings are a few KiB; a larger chunk is skipped unread

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

// The text of a tEXt or uncompressed iTXt chunk's data when its keyword is `keyword`.
std::optional<std::string> text_of(const char type[4], const uint8_t* d, size_t n, const std::string& keyword) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(d, 0, n));
  if (!nul || std::string(reinterpret_cast<const char*>(d), size_t(nul - d)) != keyword) return std::nullopt;
  size_t at = size_t(nul - d) + 1;
  if (std::memcmp(type, "tEXt", 4) == 0) return std::string(reinterpret_cast<const char*>(d + at), n - at);
  // iTXt: compression flag, method, language tag\0, translated keyword\0, text.
  if (n - at < 2 || d[at] != 0) return std::nullopt;  // compressed: not written by rass
  at += 2;
  for (int field = 0; field < 2; ++field) {
    const uint8_t* end = static_cast<const uint8_t*>(std::memchr(d + at, 0, n - at));
    if (!end) return std::nullopt;
    at = size_t(end - d) + 1;
  }
  return std::string(reinterpret_cast<const char*>(d + at), n - at);
}

}  // namespace

std::vector<uint8_t> png_add_text(const std::vector<uint8_t>& png,
                                  const std::vector<std::pair<std::string, std::string>>& text) {
  // Signature, then IHDR: length 13, so the image data start at byte 33.
  constexpr size_t kAfterIhdr = 8 + 4 + 4 + 13 + 4;
  if (png.size() < kAfterIhdr || std::memcmp(png.data(), kPngSignature, 8) != 0 ||
      std::memcmp(png.data() + 12, "IHDR", 4) != 0)
    throw_runtime("internal error: png_add_text on bytes that are not a PNG");
  std::vector<uint8_t> out(png.begin(), png.begin() + kAfterIhdr);
  for (const auto& [keyword, value] : text) {
    bool ok = !keyword.empty() && keyword.size() <= 79;
    for (const unsigned char c : keyword) ok = ok && c >= 32 && c != 127;
    if (!ok) throw_runtime("internal error: '" + keyword + "' is not a PNG text keyword");
    std::vector<uint8_t> chunk{'i', 'T', 'X', 't'};
    chunk.insert(chunk.end(), keyword.begin(), keyword.end());
    chunk.insert(chunk.end(), {0, 0, 0, 0, 0});  // keyword end, no compression, method 0, no language, no translation
    chunk.insert(chunk.end(), value.begin(), value.end());
    put_be32(out, uint32_t(chunk.size() - 4));
    out.insert(out.end(), chunk.begin(), chunk.end());
    put_be32(out, uint32_t(libdeflate_crc32(0, chunk.data(), chunk.size())));  // over type and data
  }
  out.insert(out.end(), png.begin() + kAfterIhdr, png.end());
  return out;
}

std::optional<std::string> read_png_text(const std::string& path, const std::string& keyword) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) return std::nullopt;
  uint8_t head[8];
  if (std::fread(head, 1, 8, f.get()) != 8 || std::memcmp(head, kPngSignature, 8) != 0) return std::nullopt;
  std::vector<uint8_t> buf;
  for (int chunks = 0; chunks < 1000; ++chunks) {
    uint8_t h[8];
    if (std::fread(h, 1, 8, f.get()) != 8) return std::nullopt;
    const uint32_t n = load_be32(h);
    const char* type = reinterpret_cast<const char*>(h + 4);
    if (std::memcmp(type, "IDAT", 4) == 0 || std::memcmp(type, "IEND", 4) == 0) return std::nullopt;
    const bool text = std::memcmp(type, "tEXt", 4) == 0 || std::memcmp(type, "iTXt", 4) == 0;
    if (!text || n > kMaxTextChunk) {
      if (n > 0x7fffffffu || std::fseek(f.get(), long(n) + 4, SEEK_CUR) != 0) return std::nullopt;
      continue;
    }
    buf.resize(4 + size_t(n) + 4);
    std::memcpy(buf.data(), h + 4, 4);
    if (std::fread(buf.data() + 4, 1, size_t(n) + 4, f.get()) != size_t(n) + 4) return std::nullopt;
    if (libdeflate_crc32(0, buf.data(), 4 + size_t(n)) != load_be32(buf.data() + 4 + n)) return std::nullopt;
    if (auto t = text_of(type, buf.data() + 4, n, keyword)) return t;
  }
  return std::nullopt;
}

void write_image_with_settings(const std::string& path, const Image& img, const std::string& settings) {
  ImageFormat fmt = output_image_format(path);
  if (fmt == ImageFormat::unknown) fmt = ImageFormat::png;
  if (fmt == ImageFormat::png)
    write_file_atomic(path, png_add_text(encode_image(img, fmt), {{"rass", settings}}));
  else
    write_image(path, img, fmt);
}

}  // namespace rass
