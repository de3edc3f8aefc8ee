// Format detection, dispatch to the codecs, and file-level read/write.
#include "rass/io/image_io.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/codecs.hpp"

namespace rass {

namespace {

// UINT64_MAX: not set yet (the environment or the default decides on first use).
constexpr uint64_t kUnset = UINT64_MAX;
std::atomic<uint64_t> g_max_pixels{kUnset};

uint64_t limit_from_environment() {
  const char* env = std::getenv("RASS_MAX_PIXELS");
  if (!env || !*env) return kDefaultMaxPixels;
  const std::string text = env;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(env, &end, 10);
  if (!std::isdigit(static_cast<unsigned char>(text[0])) || *end != '\0' || errno == ERANGE ||
      v >= kUnset)
    throw_usage("RASS_MAX_PIXELS='" + text + "' is not a pixel count (a non-negative integer; 0 = no limit)");
  return v;
}

}  // namespace

void set_max_pixels(uint64_t pixels) {
  g_max_pixels.store(pixels == kUnset ? kUnset - 1 : pixels, std::memory_order_relaxed);
}

uint64_t max_pixels() {
  uint64_t v = g_max_pixels.load(std::memory_order_relaxed);
  if (v != kUnset) return v;
  v = limit_from_environment();
  uint64_t expected = kUnset;
  // A concurrent set_max_pixels wins over the environment.
  if (!g_max_pixels.compare_exchange_strong(expected, v, std::memory_order_relaxed)) return expected;
  return v;
}

void check_pixel_limit(const std::string& name, uint64_t width, uint64_t height) {
  const uint64_t limit = max_pixels();
  if (limit == 0) return;
  // Sides above 2^32 would overflow the product; such a size exceeds any limit anyway.
  const bool over = width > UINT32_MAX || height > UINT32_MAX || width * height > limit;
  if (over)
    throw_bad_input(name, "image too large (" + std::to_string(width) + "x" + std::to_string(height) +
                              (width > UINT32_MAX || height > UINT32_MAX
                                   ? std::string()
                                   : " = " + std::to_string(width * height) + " pixels") +
                              "; the pixel limit is " + std::to_string(limit) +
                              ": raise it with --max-pixels N or RASS_MAX_PIXELS=N, 0 = no limit)");
}

namespace detail {

void check_dimensions(const std::string& name, uint64_t width, uint64_t height,
                      uint64_t channels) {
  if (width == 0 || height == 0) throw_bad_input(name, "image has zero width or height");
  check_pixel_limit(name, width, height);
  const std::string dims = std::to_string(width) + "x" + std::to_string(height);
  if (width > 65535 || height > 65535)
    throw_bad_input(name, "image too large (" + dims + "; at most 65535 pixels per side)");
  // Both sides are < 2^16 and channels is small, so the product cannot overflow.
  if (width * height * channels > (uint64_t{1} << 31))
    throw_bad_input(name, "image too large (" + dims + "x" + std::to_string(channels) +
                              " samples; at most 2^31)");
}

}  // namespace detail

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::png: return "png";
    case ImageFormat::jpeg: return "jpeg";
    case ImageFormat::pnm: return "pnm";
    case ImageFormat::unknown: break;
  }
  return "unknown";
}

ImageFormat sniff_format(const uint8_t* bytes, size_t size) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(bytes, png_sig, 8) == 0) return ImageFormat::png;
  if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    return ImageFormat::jpeg;
  if (size >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '6') return ImageFormat::pnm;
  return ImageFormat::unknown;
}

ImageFormat format_from_extension(const std::string& path) {
  const std::string ext = path_extension_lower(path);
  if (ext == ".png") return ImageFormat::png;
  if (ext == ".jpg" || ext == ".jpeg") return ImageFormat::jpeg;
  if (ext == ".ppm" || ext == ".pgm" || ext == ".pnm") return ImageFormat::pnm;
  return ImageFormat::unknown;
}

ImageFormat output_image_format(const std::string& path) {
  const ImageFormat by_name = format_from_extension(path);  // "-" has no extension
  if (by_name != ImageFormat::unknown) return by_name;
  return names_descriptor(path) ? ImageFormat::png : ImageFormat::unknown;
}

void check_colour_image_output(const std::string& path) {
  if (output_image_format(path) == ImageFormat::unknown)
    throw_usage("-o " + path + ": cannot tell the image format from the extension (.png, .jpg, .ppm)");
  if (path_extension_lower(path) == ".pgm")
    throw_usage("-o " + path + ": a .pgm holds a gray image and this output is colour (use .ppm, .pnm, .png or .jpg)");
}

ImageFormat parse_format(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "png") return ImageFormat::png;
  if (s == "jpeg" || s == "jpg") return ImageFormat::jpeg;
  if (s == "pnm" || s == "ppm" || s == "pgm") return ImageFormat::pnm;
  throw_usage("unknown image format '" + name + "' (expected png, jpeg or pnm)");
}

Image decode_image(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size == 0) throw_bad_input(name, "empty file");
  switch (sniff_format(bytes, size)) {
    case ImageFormat::png: return detail::decode_png(bytes, size, name);
    case ImageFormat::jpeg: return detail::decode_jpeg(bytes, size, name);
    case ImageFormat::pnm: return detail::decode_pnm(bytes, size, name);
    case ImageFormat::unknown: break;
  }
  throw_bad_input(name, "unsupported image format (expected PNG, JPEG or PNM)");
}

uint64_t max_image_file_bytes() {
  const uint64_t pixels = max_pixels();
  if (pixels == 0 || pixels > (UINT64_MAX - (uint64_t(64) << 20)) / 24) return 0;
  return 24 * pixels + (uint64_t(64) << 20);
}

std::vector<uint8_t> read_image_bytes(const std::string& path) {
  const std::string name = path == "-" ? "<stdin>" : path;
  return read_file_bytes(
      path, size_t(max_image_file_bytes()),
      [&](const uint8_t* p, size_t n) {
        if (n > 0 && sniff_format(p, n) == ImageFormat::unknown)
          throw_bad_input(name, "unsupported image format (expected PNG, JPEG or PNM)");
      },
      "more than an image of the pixel limit (" + std::to_string(max_pixels()) +
          ") can take; raise it with --max-pixels N or RASS_MAX_PIXELS=N, 0 = no limit");
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_image_bytes(path);
  return decode_image(bytes, path == "-" ? "<stdin>" : path);
}

Image decode_label_image(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size > 0 && sniff_format(bytes, size) == ImageFormat::png)
    return detail::decode_png(bytes, size, name, /*palette_indices=*/true);
  // A PGM's samples are class values whatever its maxval (a map with
  // maxval 2 holds classes 0..2, not 0, 128, 255).
  if (size > 0 && sniff_format(bytes, size) == ImageFormat::pnm) {
    return detail::decode_pnm(bytes, size, name, /*raw=*/true);
  }
  return decode_image(bytes, size, name);
}

Image read_label_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_image_bytes(path);
  return decode_label_image(bytes.data(), bytes.size(), path == "-" ? "<stdin>" : path);
}

namespace {

// An Image handed to an encoder must be self-consistent; anything else is a
// bug in the caller, not bad user input.
void check_encodable(const Image& img) {
  if (img.width <= 0 || img.height <= 0) throw_runtime("cannot encode an empty image");
  if (img.channels < 1 || img.channels > 4 || (img.depth != 8 && img.depth != 16))
    throw_runtime("cannot encode an image with " + std::to_string(img.channels) +
                  " channels at depth " + std::to_string(img.depth));
  if (img.data.size() != img.samples() * (img.depth / 8))
    throw_runtime("image buffer size does not match its dimensions");
}

}  // namespace

std::vector<uint8_t> encode_image(const Image& img, ImageFormat fmt, const EncodeOptions& opt) {
  check_encodable(img);
  switch (fmt) {
    case ImageFormat::png: return detail::encode_png(img, opt);
    case ImageFormat::jpeg: return detail::encode_jpeg(img, opt);
    case ImageFormat::pnm: return detail::encode_pnm(img);
    case ImageFormat::unknown: break;
  }
  throw_usage("no output image format given");
}

void write_image(const std::string& path, const Image& img, ImageFormat fmt,
                 const EncodeOptions& opt) {
  if (fmt == ImageFormat::unknown) fmt = output_image_format(path);
  if (fmt == ImageFormat::unknown)
    throw_usage(path + ": cannot tell the image format from the extension "
                       "(use .png, .jpg, .ppm/.pgm or give the format)");
  write_file_atomic(path, encode_image(img, fmt, opt));
}

}  // namespace rass
