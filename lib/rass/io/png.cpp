// PNG decoding through libpng's classic API, reading from memory: the
// reference decoder, and the one every file the fast path in png_deflate.cpp
// does not take goes through (interlaced, palette, < 8-bit, any damage).
//
// libpng reports errors by calling an error function that must not return; we
// longjmp back to a setjmp placed in png_guarded(). The frames a longjmp skips
// (libpng's own and the small lambdas passed to png_guarded) hold no objects
// with destructors, and messages are copied into a plain char buffer, so the
// jump is well defined; the rass::Error is thrown only after it has landed.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>

#include "rass/core/error.hpp"
#include "rass/io/codecs.hpp"

namespace rass::detail {

namespace {

constexpr char kTruncated[] = "truncated PNG data";

struct PngErrorSink {
  char message[256] = "";
};

void on_png_error(png_structp png, png_const_charp msg) {
  auto* sink = static_cast<PngErrorSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", msg);
  png_longjmp(png, 1);
}

// Warnings (bad ancillary chunks, unknown sRGB profiles, ...) do not stop the
// decode and would only clutter stderr of a batch job.
void on_png_warning(png_structp, png_const_charp) {}

struct MemoryReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

void read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* r = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, kTruncated);
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

// Runs `step` with libpng's longjmp target set; false if libpng failed.
template <class Step>
bool png_guarded(png_structp png, Step&& step) {
  if (setjmp(png_jmpbuf(png))) return false;
  step();
  return true;
}

struct ReadHandle {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadHandle() { png_destroy_read_struct(&png, &info, nullptr); }
};

// What the header says, after the transforms we ask for.
struct Layout {
  uint32_t width = 0, height = 0;
  int channels = 0, depth = 0;
  size_t rowbytes = 0;
  int source_bits_per_pixel = 0;  // as stored in the file, before expansion
};

void read_header(png_structp png, png_infop info, bool palette_indices, Layout* out) {
  png_read_info(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  out->source_bits_per_pixel = depth * png_get_channels(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE && palette_indices) {
    if (depth < 8) png_set_packing(png);  // 1/2/4-bit indices, one byte each
  } else if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  } else if (depth == 1 && palette_indices) {
    // A 1-bit gray label map (Pillow's mode "1" masks) holds classes 0 and 1:
    // read as mmseg's Pillow backend reads it (np.array of mode "1"), not
    // scaled to 0/255, which would make class 1 the ignore index.
    png_set_packing(png);
  } else if (depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);  // 2- and 4-bit gray scaled, as Pillow's "L;2"/"L;4"
  }
  // A tRNS colour key on gray/RGB images is left alone (as PIL does): the
  // channel count then stays what the file declares.
  if (depth == 16 && host_is_little_endian()) png_set_swap(png);  // PNG is big-endian
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->depth = png_get_bit_depth(png, info);
  out->rowbytes = png_get_rowbytes(png, info);
}

// Sum of the IDAT chunk lengths present in the buffer (chunks cut off by the
// end of the data count with what is there).
uint64_t idat_bytes(const uint8_t* bytes, size_t size) {
  uint64_t total = 0;
  size_t pos = 8;  // after the signature
  while (size - pos >= 8) {
    const uint64_t len = (uint64_t{bytes[pos]} << 24) | (uint64_t{bytes[pos + 1]} << 16) |
                         (uint64_t{bytes[pos + 2]} << 8) | bytes[pos + 3];
    const bool is_idat = std::memcmp(bytes + pos + 4, "IDAT", 4) == 0;
    const uint64_t left = size - pos - 8;
    if (is_idat) total += len < left ? len : left;
    if (len + 4 >= left) break;  // data + CRC run past the end
    pos += static_cast<size_t>(8 + len + 4);
  }
  return total;
}

void check_enough_data(const std::string& name, const uint8_t* bytes, size_t size,
                       const Layout& layout) {
  const uint64_t pixel_bytes = uint64_t{layout.width} * layout.height *
                               static_cast<uint64_t>(layout.source_bits_per_pixel) / 8;
  check_enough_png_data(name, idat_bytes(bytes, size), pixel_bytes);
}

[[noreturn]] void throw_decode_failure(const std::string& name, const PngErrorSink& sink) {
  if (std::strcmp(sink.message, kTruncated) == 0) throw_bad_input(name, kTruncated);
  throw_bad_input(name, std::string("corrupt PNG data (") + sink.message + ")");
}

std::vector<png_bytep> row_pointers(uint8_t* data, int height, size_t stride) {
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = data + y * stride;
  return rows;
}

}  // namespace

// Deflate cannot compress better than about 1032:1, so compressed data much
// smaller than the pixels it claims is truncated (or a corrupt header); this
// refuses it before a large pixel buffer is allocated.
void check_enough_png_data(const std::string& name, uint64_t idat_bytes, uint64_t pixel_bytes) {
  if (idat_bytes * 1032 + 4096 < pixel_bytes) throw_bad_input(name, kTruncated);
}

Image decode_png_libpng(const uint8_t* bytes, size_t size, const std::string& name, bool palette_indices) {
  PngErrorSink sink;
  ReadHandle h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error, on_png_warning);
  if (h.png) h.info = png_create_info_struct(h.png);
  if (!h.info) throw_runtime("out of memory creating a PNG decoder");
  MemoryReader reader{bytes, size, 0};
  png_set_read_fn(h.png, &reader, read_from_memory);

  Layout layout;
  if (!png_guarded(h.png, [&] { read_header(h.png, h.info, palette_indices, &layout); }))
    throw_decode_failure(name, sink);
  check_dimensions(name, layout.width, layout.height, static_cast<uint64_t>(layout.channels));
  check_enough_data(name, bytes, size, layout);

  Image img(static_cast<int>(layout.width), static_cast<int>(layout.height), layout.channels,
            layout.depth);
  const size_t stride = static_cast<size_t>(img.width) * img.channels * (img.depth / 8);
  if (layout.rowbytes != stride)
    throw_runtime(name + ": PNG row size " + std::to_string(layout.rowbytes) +
                  " does not match the expanded layout");
  std::vector<png_bytep> rows = row_pointers(img.data.data(), img.height, stride);
  if (!png_guarded(h.png, [&] {
        png_read_image(h.png, rows.data());
        png_read_end(h.png, nullptr);
      }))
    throw_decode_failure(name, sink);
  return img;
}

}  // namespace rass::detail
