// JPEG through libjpeg-turbo's libjpeg API (jpeglib.h) with in-memory source
// and destination.
//
// libjpeg's error_exit must not return; it longjmps back to jpeg_guarded().
// As in png.cpp, the frames skipped hold no objects with destructors and the
// message is copied into a plain buffer before the jump.
#include <cstddef>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "rass/core/error.hpp"
#include "rass/io/codecs.hpp"

namespace rass::detail {

namespace {

constexpr char kTruncated[] = "truncated JPEG data";

struct ErrorSink {
  jpeg_error_mgr mgr;  // first, so libjpeg's jpeg_error_mgr* converts back to the sink
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* sink = reinterpret_cast<ErrorSink*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, sink->message);
  std::longjmp(sink->jump, 1);
}

// Warnings are silent (libjpeg would print them to stderr), except running out
// of data: libjpeg would pad the image with grey and carry on, but a truncated
// file is an error here.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* sink = reinterpret_cast<ErrorSink*>(cinfo->err);
    std::snprintf(sink->message, sizeof sink->message, "%s", kTruncated);
    std::longjmp(sink->jump, 1);
  }
}

void install_error_sink(ErrorSink& sink) {
  jpeg_std_error(&sink.mgr);
  sink.mgr.error_exit = on_jpeg_error;
  sink.mgr.emit_message = on_jpeg_message;
  sink.message[0] = '\0';
}

// Runs `step` with the longjmp target set; false if libjpeg failed.
template <class Step>
bool jpeg_guarded(ErrorSink& sink, Step&& step) {
  if (setjmp(sink.jump)) return false;
  step();
  return true;
}

struct Decompressor {
  jpeg_decompress_struct cinfo{};  // zeroed: destroying a half-created struct is then a no-op
  ErrorSink sink;
  Decompressor() {
    install_error_sink(sink);
    cinfo.err = &sink.mgr;
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
};

struct Compressor {
  jpeg_compress_struct cinfo{};
  ErrorSink sink;
  Compressor() {
    install_error_sink(sink);
    cinfo.err = &sink.mgr;
  }
  ~Compressor() { jpeg_destroy_compress(&cinfo); }
};

// jpeg_read_header on `bytes` under the error sink; false when libjpeg failed.
bool read_header(Decompressor& d, const uint8_t* bytes, size_t size) {
  return jpeg_guarded(d.sink, [&] {
    jpeg_create_decompress(&d.cinfo);
    jpeg_mem_src(&d.cinfo, bytes, static_cast<unsigned long>(size));
    jpeg_read_header(&d.cinfo, TRUE);
  });
}

[[noreturn]] void throw_decode_failure(const std::string& name, const ErrorSink& sink) {
  if (std::strcmp(sink.message, kTruncated) == 0) throw_bad_input(name, kTruncated);
  throw_bad_input(name, std::string("corrupt JPEG data (") + sink.message + ")");
}

// Output colour space and channel count for the file's colour space.
J_COLOR_SPACE output_space(const std::string& name, J_COLOR_SPACE in) {
  switch (in) {
    case JCS_GRAYSCALE: return JCS_GRAYSCALE;
    case JCS_YCbCr:
    case JCS_RGB: return JCS_RGB;
    case JCS_CMYK:
    case JCS_YCCK: throw_bad_input(name, "CMYK/YCCK JPEG is not supported (convert it to RGB)");
    default: throw_bad_input(name, "unsupported JPEG colour space");
  }
}

// With Huffman coding every 8x8 block of the full-resolution component costs
// at least one bit (its DC code), so a file much smaller than its dimensions
// claim is truncated; refusing it here avoids allocating for a corrupt header.
// Arithmetic coding can spend less than a bit per block, so it is not checked.
void check_enough_data(const std::string& name, const jpeg_decompress_struct& cinfo,
                       size_t size) {
  if (cinfo.arith_code) return;
  const uint64_t blocks = (uint64_t{cinfo.image_width} + 7) / 8 * ((uint64_t{cinfo.image_height} + 7) / 8);
  if (blocks > uint64_t{size} * 8) throw_bad_input(name, kTruncated);
}

}  // namespace

Image decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name) {
  Decompressor d;
  jpeg_decompress_struct& cinfo = d.cinfo;
  if (!read_header(d, bytes, size)) throw_decode_failure(name, d.sink);

  cinfo.out_color_space = output_space(name, cinfo.jpeg_color_space);
  const int channels = cinfo.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  check_dimensions(name, cinfo.image_width, cinfo.image_height, static_cast<uint64_t>(channels));
  check_enough_data(name, cinfo, size);
  cinfo.dct_method = JDCT_ISLOW;  // the exact integer IDCT: same pixels on every machine

  if (!jpeg_guarded(d.sink, [&] { jpeg_start_decompress(&cinfo); }))
    throw_decode_failure(name, d.sink);
  if (cinfo.output_components != channels || cinfo.output_width != cinfo.image_width ||
      cinfo.output_height != cinfo.image_height)
    throw_runtime(name + ": unexpected JPEG output layout");

  Image img(static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height), channels);
  const size_t stride = static_cast<size_t>(img.width) * channels;
  uint8_t* const pixels = img.data.data();
  if (!jpeg_guarded(d.sink, [&] {
        // The memory source never suspends, so each call delivers a row.
        while (cinfo.output_scanline < cinfo.output_height) {
          JSAMPROW row = pixels + cinfo.output_scanline * stride;
          if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
        }
        jpeg_finish_decompress(&cinfo);
      }))
    throw_decode_failure(name, d.sink);
  return img;
}

std::pair<int, int> jpeg_header_size(const uint8_t* bytes, size_t size) {
  // The decoder's own header read: it skips what decode_jpeg skips (bytes
  // between markers, fill bytes), so the two never disagree.
  Decompressor d;
  if (!read_header(d, bytes, size) || d.cinfo.image_width == 0 || d.cinfo.image_height == 0) return {0, 0};
  return {int(d.cinfo.image_width), int(d.cinfo.image_height)};
}

std::vector<uint8_t> encode_jpeg(const Image& img, const EncodeOptions& opt) {
  if (img.depth != 8 || (img.channels != 1 && img.channels != 3))
    throw_usage("JPEG needs an 8-bit gray or RGB image (got " + std::to_string(img.depth) +
                "-bit, " + std::to_string(img.channels) + " channels); write PNG instead");
  if (opt.jpeg_quality < 1 || opt.jpeg_quality > 100)
    throw_usage("JPEG quality must be 1..100 (got " + std::to_string(opt.jpeg_quality) + ")");

  // Start with a buffer of the raw image size so jpeg_mem_dest normally never
  // has to grow it; when it does grow, the result lives in a malloc'ed buffer
  // of libjpeg's that is ours to free.
  std::vector<uint8_t> out(img.data.size() + 4096);
  unsigned char* buffer = out.data();
  unsigned long size = out.size();

  Compressor c;
  jpeg_compress_struct& cinfo = c.cinfo;
  const size_t stride = static_cast<size_t>(img.width) * img.channels;
  const uint8_t* const pixels = img.data.data();
  const bool ok = jpeg_guarded(c.sink, [&] {
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = static_cast<JDIMENSION>(img.width);
    cinfo.image_height = static_cast<JDIMENSION>(img.height);
    cinfo.input_components = img.channels;
    cinfo.in_color_space = img.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);  // 4:2:0 for colour, as cv2.imencode
    jpeg_set_quality(&cinfo, opt.jpeg_quality, TRUE);
    cinfo.dct_method = JDCT_ISLOW;
    if (img.channels == 3 && !opt.jpeg_subsample_420) {
      cinfo.comp_info[0].h_samp_factor = 1;  // luma at chroma resolution = 4:4:4
      cinfo.comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
      // libjpeg takes non-const rows but only reads them.
      JSAMPROW row = const_cast<uint8_t*>(pixels) + cinfo.next_scanline * stride;
      jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
  });
  // On failure a grown buffer of libjpeg's would leak; that takes running out
  // of memory, the only way a well-formed image can fail to encode.
  if (!ok) throw_runtime(std::string("JPEG encoding failed: ") + c.sink.message);
  if (buffer == out.data()) {
    out.resize(size);
    return out;
  }
  std::unique_ptr<unsigned char, decltype(&std::free)> grown(buffer, &std::free);
  return std::vector<uint8_t>(grown.get(), grown.get() + size);
}

}  // namespace rass::detail
