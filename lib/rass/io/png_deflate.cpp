// PNG with libdeflate: the encoder, and the decoder's fast path.
//
// Encoder: rows are filtered here ('up' at level 1, libpng's adaptive choice
// above) and the whole zlib stream is made in one libdeflate call, which is
// several times faster than libpng + zlib on the noisy images rass-degrade
// writes, at a smaller size. The bytes differ from libpng's; the pixels any
// PNG reader decodes are the same.
//
// Decoder: the files rass reads most (intact, non-interlaced, 8/16-bit gray,
// gray+alpha, RGB, RGBA) are checked whole first (chunk layout, every CRC, no
// unknown critical chunk, zlib stream ending exactly at the last row, adler32),
// then inflated by libdeflate in one call and unfiltered here. Any file that
// does not pass every check goes to libpng (png.cpp), so interlaced, palette,
// low-bit-depth and damaged files decode, or fail, exactly as before.
#include <libdeflate.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>

#include "rass/core/error.hpp"
#include "rass/io/codecs.hpp"

namespace rass::detail {

namespace {

void store_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// One compressor per level and one decompressor per thread, made on first use
// (a level-1 compressor is a few hundred KiB; allocating it per image costs).
struct DeflateCache {
  libdeflate_compressor* compressors[10] = {};
  libdeflate_decompressor* decompressor = nullptr;
  ~DeflateCache() {
    for (libdeflate_compressor* c : compressors) libdeflate_free_compressor(c);
    libdeflate_free_decompressor(decompressor);
  }
};

DeflateCache& cache() {
  thread_local DeflateCache c;
  return c;
}

libdeflate_compressor* compressor(int level) {
  libdeflate_compressor*& c = cache().compressors[level];
  if (!c) c = libdeflate_alloc_compressor(level);
  if (!c) throw std::bad_alloc();
  return c;
}

libdeflate_decompressor* decompressor() {
  libdeflate_decompressor*& d = cache().decompressor;
  if (!d) d = libdeflate_alloc_decompressor();
  if (!d) throw std::bad_alloc();
  return d;
}

// ---- filters (PNG spec 9.2; bpp = bytes per complete pixel, at least 1) ----

enum Filter : uint8_t { kNone = 0, kSub = 1, kUp = 2, kAverage = 3, kPaeth = 4 };

// Written as selects, not branches: on noisy images the branches mispredict.
inline uint8_t paeth_predictor(int a, int b, int c) {
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  int pred = pb <= pc ? b : c;
  pred = pa <= pb && pa <= pc ? a : pred;
  return uint8_t(pred);
}

#if defined(__SSE2__)
// Paeth unfiltering one pixel at a time, the pixel's bytes in 16-bit lanes
// (as libpng's SSE2 code): the chain through the pixel to the left is serial,
// the bytes of one pixel are not.
template <size_t BPP>
__m128i load_pixel(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, BPP);
  return _mm_unpacklo_epi8(_mm_cvtsi64_si128(static_cast<long long>(v)), _mm_setzero_si128());
}

template <size_t BPP>
void store_pixel(uint8_t* p, __m128i v) {
  const uint64_t bytes = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_packus_epi16(v, v)));
  std::memcpy(p, &bytes, BPP);
}

inline __m128i abs16(__m128i x) { return _mm_max_epi16(x, _mm_sub_epi16(_mm_setzero_si128(), x)); }

inline __m128i select16(__m128i mask, __m128i yes, __m128i no) {
  return _mm_or_si128(_mm_and_si128(mask, yes), _mm_andnot_si128(mask, no));
}

// Loads 8 bytes (lanes past BPP hold the next pixels' bytes; every lane is
// computed on its own, and only BPP bytes are stored) where the row has them,
// else BPP bytes: an 8-byte load over a partial one would stall on the store.
inline __m128i load8(const uint8_t* p) {
  return _mm_unpacklo_epi8(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), _mm_setzero_si128());
}

template <size_t BPP>
void unpaeth_sse2(uint8_t* d, const uint8_t* prev, size_t n) {
  const __m128i mask = _mm_set1_epi16(0xff);
  __m128i a = _mm_setzero_si128(), c = _mm_setzero_si128();
  for (size_t i = 0; i < n; i += BPP) {
    const bool whole = i + 8 <= n;
    const __m128i b = whole ? load8(prev + i) : load_pixel<BPP>(prev + i);
    const __m128i x = whole ? load8(d + i) : load_pixel<BPP>(d + i);
    const __m128i p = _mm_sub_epi16(b, c), q = _mm_sub_epi16(a, c);  // pa = |p|, pb = |q|, pc = |p + q|
    const __m128i pa = abs16(p), pb = abs16(q), pc = abs16(_mm_add_epi16(p, q));
    const __m128i least = _mm_min_epi16(pa, _mm_min_epi16(pb, pc));
    __m128i pred = select16(_mm_cmpeq_epi16(pb, least), b, c);  // ties: a, then b, then c
    pred = select16(_mm_cmpeq_epi16(pa, least), a, pred);
    a = _mm_and_si128(_mm_add_epi16(x, pred), mask);
    store_pixel<BPP>(d + i, a);
    c = b;
  }
}

// true when done here (bpp 1..8 and whole pixels).
bool unpaeth_fast(uint8_t* d, const uint8_t* prev, size_t n, size_t bpp) {
  if (n % bpp) return false;
  switch (bpp) {
    case 1: unpaeth_sse2<1>(d, prev, n); return true;
    case 2: unpaeth_sse2<2>(d, prev, n); return true;
    case 3: unpaeth_sse2<3>(d, prev, n); return true;
    case 4: unpaeth_sse2<4>(d, prev, n); return true;
    case 6: unpaeth_sse2<6>(d, prev, n); return true;
    case 8: unpaeth_sse2<8>(d, prev, n); return true;
    default: return false;
  }
}
#else
bool unpaeth_fast(uint8_t*, const uint8_t*, size_t, size_t) { return false; }
#endif

// out[i] = cur[i] - predictor; prev is the row above (zeros for the first).
void filter_row(Filter f, const uint8_t* cur, const uint8_t* prev, size_t n, size_t bpp, uint8_t* out) {
  const size_t head = std::min(n, bpp);
  switch (f) {
    case kNone: std::memcpy(out, cur, n); break;
    case kSub:
      std::memcpy(out, cur, head);
      for (size_t i = bpp; i < n; ++i) out[i] = uint8_t(cur[i] - cur[i - bpp]);
      break;
    case kUp:
      for (size_t i = 0; i < n; ++i) out[i] = uint8_t(cur[i] - prev[i]);
      break;
    case kAverage:
      for (size_t i = 0; i < head; ++i) out[i] = uint8_t(cur[i] - (prev[i] >> 1));
      for (size_t i = bpp; i < n; ++i) out[i] = uint8_t(cur[i] - ((cur[i - bpp] + prev[i]) >> 1));
      break;
    case kPaeth:
      for (size_t i = 0; i < head; ++i) out[i] = uint8_t(cur[i] - prev[i]);
      for (size_t i = bpp; i < n; ++i) out[i] = uint8_t(cur[i] - paeth_predictor(cur[i - bpp], prev[i], prev[i - bpp]));
      break;
  }
}

// libpng's heuristic: the filter whose output, read as signed bytes, has the
// least sum of absolute values.
uint64_t abs_sum(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i] < 128 ? p[i] : 256 - p[i];
  return s;
}

// Inverse of filter_row, in place: d holds the filtered row and gets the
// pixels. false for a filter type outside 0..4.
bool unfilter_row(uint8_t type, uint8_t* d, const uint8_t* prev, size_t n, size_t bpp) {
  const size_t head = std::min(n, bpp);
  switch (type) {
    case kNone: return true;
    case kSub:
      for (size_t i = bpp; i < n; ++i) d[i] = uint8_t(d[i] + d[i - bpp]);
      return true;
    case kUp:
      for (size_t i = 0; i < n; ++i) d[i] = uint8_t(d[i] + prev[i]);
      return true;
    case kAverage:
      for (size_t i = 0; i < head; ++i) d[i] = uint8_t(d[i] + (prev[i] >> 1));
      for (size_t i = bpp; i < n; ++i) d[i] = uint8_t(d[i] + ((d[i - bpp] + prev[i]) >> 1));
      return true;
    case kPaeth:
      if (unpaeth_fast(d, prev, n, bpp)) return true;
      for (size_t i = 0; i < head; ++i) d[i] = uint8_t(d[i] + prev[i]);
      for (size_t i = bpp; i < n; ++i) d[i] = uint8_t(d[i] + paeth_predictor(d[i - bpp], prev[i], prev[i - bpp]));
      return true;
    default: return false;
  }
}

void swap16(uint8_t* p, size_t n_bytes) {
  for (size_t i = 0; i + 1 < n_bytes; i += 2) std::swap(p[i], p[i + 1]);
}

uint8_t color_type_for(int channels) {
  switch (channels) {
    case 1: return 0;  // gray
    case 2: return 4;  // gray + alpha
    case 3: return 2;  // RGB
    default: return 6;  // RGBA
  }
}

// Appends one chunk: length, type, data, CRC-32 of type + data.
void put_chunk(std::vector<uint8_t>& out, const char* type, const uint8_t* data, size_t n) {
  const size_t at = out.size();
  out.resize(at + 12 + n);
  uint8_t* p = out.data() + at;
  store_be32(p, static_cast<uint32_t>(n));
  std::memcpy(p + 4, type, 4);
  if (n) std::memcpy(p + 8, data, n);
  store_be32(p + 8 + n, libdeflate_crc32(0, p + 4, 4 + n));
}

bool is_letter(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

}  // namespace

std::vector<uint8_t> encode_png(const Image& img, const EncodeOptions& opt) {
  return encode_png_with_filter(img, opt.png_compression, -1);
}

std::vector<uint8_t> encode_png_with_filter(const Image& img, int level, int filter) {
  if (filter < -1 || filter > kPaeth) throw_usage("PNG filter type must be 0..4 (got " + std::to_string(filter) + ")");
  if (level < 0 || level > 9)
    throw_usage("PNG compression level must be 0..9 (got " + std::to_string(level) + ")");
  const size_t bytes = size_t(img.depth / 8);
  const size_t bpp = size_t(img.channels) * bytes;
  const size_t rb = size_t(img.width) * bpp;
  const size_t h = size_t(img.height);
  const bool swap = bytes == 2 && host_is_little_endian();  // PNG samples are big-endian

  // The filtered rows, each after its filter type byte: what the zlib stream holds.
  std::vector<uint8_t> raw(h * (rb + 1));
  std::vector<uint8_t> zero(rb, 0);
  std::vector<uint8_t> be_rows(swap ? 2 * rb : 0);  // this row and the one above, big-endian
  std::vector<uint8_t> trial(level >= 2 && filter < 0 ? 5 * rb : 0);
  const uint8_t* prev = zero.data();
  for (size_t y = 0; y < h; ++y) {
    const uint8_t* cur = img.data.data() + y * rb;
    if (swap) {
      uint8_t* b = be_rows.data() + (y % 2) * rb;
      std::memcpy(b, cur, rb);
      swap16(b, rb);
      cur = b;
    }
    uint8_t* out = raw.data() + y * (rb + 1);
    if (filter >= 0) {
      out[0] = uint8_t(filter);
      filter_row(Filter(out[0]), cur, prev, rb, bpp, out + 1);
    } else if (level == 0) {
      out[0] = kNone;
      std::memcpy(out + 1, cur, rb);
    } else if (level == 1) {
      // 'up' costs one subtraction per byte and compresses the noisy LQ images
      // as well as the adaptive choice (within a few per cent); the first row
      // has nothing above it, so it takes 'sub'.
      out[0] = y == 0 ? kSub : kUp;
      filter_row(Filter(out[0]), cur, prev, rb, bpp, out + 1);
    } else {
      uint64_t best = UINT64_MAX;
      for (uint8_t f = kNone; f <= kPaeth; ++f) {
        uint8_t* t = trial.data() + f * rb;
        filter_row(Filter(f), cur, prev, rb, bpp, t);
        const uint64_t s = abs_sum(t, rb);
        if (s < best) {
          best = s;
          out[0] = f;
        }
      }
      std::memcpy(out + 1, trial.data() + out[0] * rb, rb);
    }
    prev = cur;
  }

  libdeflate_compressor* c = compressor(level);
  std::vector<uint8_t> z(libdeflate_zlib_compress_bound(c, raw.size()));
  const size_t zn = libdeflate_zlib_compress(c, raw.data(), raw.size(), z.data(), z.size());
  if (zn == 0) throw_runtime("PNG encoding failed: the zlib stream did not fit its bound");
  raw = std::vector<uint8_t>();  // give the filtered copy back before the file is built

  constexpr size_t kMaxIdat = size_t{1} << 20;  // IDAT chunks of 1 MiB: any reader takes them
  std::vector<uint8_t> out;
  out.reserve(8 + 25 + zn + 12 * (zn / kMaxIdat + 1) + 12);
  out.insert(out.end(), kPngSignature, kPngSignature + 8);
  uint8_t ihdr[13];
  store_be32(ihdr, static_cast<uint32_t>(img.width));
  store_be32(ihdr + 4, static_cast<uint32_t>(img.height));
  ihdr[8] = uint8_t(img.depth);
  ihdr[9] = color_type_for(img.channels);
  ihdr[10] = ihdr[11] = ihdr[12] = 0;  // deflate, adaptive filtering, not interlaced
  put_chunk(out, "IHDR", ihdr, sizeof ihdr);
  for (size_t at = 0; at < zn; at += kMaxIdat) put_chunk(out, "IDAT", z.data() + at, std::min(kMaxIdat, zn - at));
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

bool decode_png_fast(const uint8_t* bytes, size_t size, const std::string& name, Image* result) {
  if (size < 8 || std::memcmp(bytes, kPngSignature, 8) != 0) return false;
  uint32_t width = 0, height = 0;
  int depth = 0, channels = 0;
  std::vector<std::pair<const uint8_t*, size_t>> idat;
  enum { before, inside, after } idat_state = before;
  bool first = true;
  size_t pos = 8;
  for (;;) {
    if (size - pos < 12) return false;  // no IEND: truncated
    const uint32_t len = load_be32(bytes + pos);
    if (len > 0x7fffffffu || len > size - pos - 12) return false;
    const uint8_t* type = bytes + pos + 4;
    const uint8_t* data = type + 4;
    if (!is_letter(type[0]) || !is_letter(type[1]) || !is_letter(type[2]) || !is_letter(type[3]) ||
        (type[2] & 0x20))  // the reserved bit must be clear
      return false;
    if (libdeflate_crc32(0, type, 4 + size_t{len}) != load_be32(data + len)) return false;
    const bool critical = !(type[0] & 0x20);
    if (first) {
      if (std::memcmp(type, "IHDR", 4) != 0 || len != 13) return false;
      width = load_be32(data);
      height = load_be32(data + 4);
      depth = data[8];
      const int color = data[9];
      // Larger sides go to libpng too, so its header errors stay the ones users see.
      if (width == 0 || height == 0 || width > 65535 || height > 65535) return false;
      if (depth != 8 && depth != 16) return false;
      channels = color == 0 ? 1 : color == 4 ? 2 : color == 2 ? 3 : color == 6 ? 4 : 0;
      if (channels == 0 || data[10] != 0 || data[11] != 0 || data[12] != 0) return false;
      first = false;
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      if (idat_state == after) return false;  // IDAT chunks must be consecutive
      idat_state = inside;
      idat.emplace_back(data, len);
    } else {
      if (idat_state == inside) idat_state = after;
      if (std::memcmp(type, "IEND", 4) == 0) {
        if (len != 0) return false;
        break;
      }
      if (critical) return false;  // IHDR again, PLTE, or one we do not know
    }
    pos += 12 + size_t{len};
  }
  if (idat.empty()) return false;

  const size_t bpp = size_t(channels) * size_t(depth / 8);
  const size_t rb = size_t(width) * bpp;
  uint64_t idat_total = 0;
  for (const auto& span : idat) idat_total += span.second;
  check_dimensions(name, width, height, uint64_t(channels));
  check_enough_png_data(name, idat_total, uint64_t(height) * rb);
  // A zlib header asking for a window under 32 KiB: zlib (so libpng) refuses
  // distances beyond it, libdeflate does not; leave such streams to libpng.
  if (idat.front().second < 2 || (idat.front().first[0] >> 4) != 7) return false;

  std::vector<uint8_t> joined;
  const uint8_t* zdata = idat.front().first;
  if (idat.size() > 1) {
    joined.reserve(idat_total);
    for (const auto& span : idat) joined.insert(joined.end(), span.first, span.first + span.second);
    zdata = joined.data();
  }
  const size_t raw_size = size_t(height) * (rb + 1);
  std::vector<uint8_t> raw(raw_size);
  size_t in_used = 0, out_made = 0;
  const libdeflate_result r =
      libdeflate_zlib_decompress_ex(decompressor(), zdata, idat_total, raw.data(), raw_size, &in_used, &out_made);
  if (r != LIBDEFLATE_SUCCESS || in_used != idat_total || out_made != raw_size) return false;
  joined = std::vector<uint8_t>();

  // Unfilter in place: row y moves down to y * rb (over its own filter byte
  // and the bytes of earlier rows already moved), then is unfiltered against
  // the finished row above.
  std::vector<uint8_t> zero(rb, 0);
  for (size_t y = 0; y < height; ++y) {
    const uint8_t type = raw[y * (rb + 1)];
    uint8_t* row = raw.data() + y * rb;
    std::memmove(row, raw.data() + y * (rb + 1) + 1, rb);
    if (!unfilter_row(type, row, y == 0 ? zero.data() : row - rb, rb, bpp)) return false;
  }
  raw.resize(size_t(height) * rb);
  if (depth == 16 && host_is_little_endian()) swap16(raw.data(), raw.size());
  Image img;
  img.width = int(width);
  img.height = int(height);
  img.channels = channels;
  img.depth = depth;
  img.data = std::move(raw);
  *result = std::move(img);
  return true;
}

Image decode_png(const uint8_t* bytes, size_t size, const std::string& name, bool palette_indices) {
  Image img;
  if (decode_png_fast(bytes, size, name, &img)) return img;
  return decode_png_libpng(bytes, size, name, palette_indices);
}

}  // namespace rass::detail
