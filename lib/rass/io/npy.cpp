// .npy read/write as numpy.lib.format does it, and .npz (ZIP) reading.
#include "rass/io/npy.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"

namespace rass {

namespace {

constexpr bool kHostLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

struct DTypeInfo {
  DType type;
  char kind;  // numpy kind character: f, u, i, b
  size_t size;
  const char* descr;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::f16, 'f', 2, "<f2"}, {DType::f32, 'f', 4, "<f4"}, {DType::f64, 'f', 8, "<f8"},
    {DType::u8, 'u', 1, "|u1"},  {DType::u16, 'u', 2, "<u2"}, {DType::u32, 'u', 4, "<u4"},
    {DType::u64, 'u', 8, "<u8"}, {DType::i8, 'i', 1, "|i1"},  {DType::i16, 'i', 2, "<i2"},
    {DType::i32, 'i', 4, "<i4"}, {DType::i64, 'i', 8, "<i8"}, {DType::b1, 'b', 1, "|b1"},
};

const DTypeInfo& dtype_info(DType t) {
  for (const DTypeInfo& d : kDTypes)
    if (d.type == t) return d;
  throw_runtime(std::string("dtype ") + dtype_name(t) + " has no .npy (numpy) equivalent");
}

void byteswap_items(uint8_t* data, size_t bytes, size_t item_size) {
  if (item_size < 2) return;
  for (size_t i = 0; i + item_size <= bytes; i += item_size)
    std::reverse(data + i, data + i + item_size);
}

// ---- the header: a Python dict literal ------------------------------------

// The subset of Python literals a .npy header holds: strings, integers,
// True/False/None, and tuples or lists of those (structured dtypes).
struct PyValue {
  enum class Kind { string, integer, boolean, none, sequence } kind = Kind::none;
  std::string text;
  int64_t integer = 0;
  bool boolean = false;
  std::vector<PyValue> items;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  // The top-level dict; only whitespace may follow it.
  std::vector<std::pair<std::string, PyValue>> dict() {
    std::vector<std::pair<std::string, PyValue>> entries;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      PyValue key = value(0);
      if (key.kind != PyValue::Kind::string) fail("dictionary key is not a string");
      expect(':');
      entries.emplace_back(key.text, value(0));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the dictionary");
    return entries;
  }

 private:
  static constexpr int kMaxDepth = 32;  // structured dtypes nest; garbage must not blow the stack

  PyValue value(int depth) {
    if (depth > kMaxDepth) fail("nested too deeply");
    skip_space();
    const char c = peek();
    if (c == '\'' || c == '"') return string_value();
    if (c == '(' || c == '[') return sequence(depth);
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return integer();
    if (std::isalpha(static_cast<unsigned char>(c))) return identifier();
    fail("unexpected character");
  }

  PyValue string_value() {
    const char quote = s_[pos_++];
    PyValue v;
    v.kind = PyValue::Kind::string;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;  // keep the escaped character
      v.text += s_[pos_++];
    }
    if (pos_ == s_.size()) fail("unterminated string");
    ++pos_;
    return v;
  }

  PyValue sequence(int depth) {
    const char close = s_[pos_++] == '(' ? ')' : ']';
    PyValue v;
    v.kind = PyValue::Kind::sequence;
    for (;;) {
      skip_space();
      if (peek() == close) break;
      v.items.push_back(value(depth + 1));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != close) fail("expected ',' or a closing bracket");
    }
    ++pos_;
    return v;
  }

  // Decimal integer; Python 2 era files may write longs as "3L".
  PyValue integer() {
    PyValue v;
    v.kind = PyValue::Kind::integer;
    const bool negative = s_[pos_] == '-';
    if (negative) ++pos_;
    if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("malformed number");
    uint64_t magnitude = 0;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      magnitude = magnitude * 10 + static_cast<uint64_t>(s_[pos_++] - '0');
      if (magnitude > static_cast<uint64_t>(INT64_MAX)) fail("number out of range");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l')) ++pos_;
    v.integer = negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
    return v;
  }

  PyValue identifier() {
    const size_t start = pos_;
    while (pos_ < s_.size() && std::isalnum(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    const std::string word = s_.substr(start, pos_ - start);
    PyValue v;
    if (word == "True" || word == "False") {
      v.kind = PyValue::Kind::boolean;
      v.boolean = word == "True";
    } else if (word != "None") {
      fail("unexpected word '" + word + "'");
    }
    return v;
  }

  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw_bad_input(name_, "malformed .npy header (" + what + " at offset " +
                               std::to_string(pos_) + ")");
  }

  const std::string& s_;
  const std::string& name_;
  size_t pos_ = 0;
};

struct Descr {
  DType type;
  bool swap;  // stored in the other byte order than the host's
};

Descr parse_descr(const std::string& descr, const std::string& name) {
  std::string code = descr;
  char order = '|';
  if (!code.empty() && std::strchr("<>|=", code[0])) {
    order = code[0];
    code.erase(0, 1);
  }
  if (code == "O") throw_bad_input(name, "object arrays (dtype 'O', pickled) are not supported");
  if (!code.empty() && code[0] == 'V')
    throw_bad_input(name, "structured/void dtype '" + descr + "' is not supported");
  for (const DTypeInfo& d : kDTypes) {
    if (code.size() == 2 && code[0] == d.kind && static_cast<size_t>(code[1] - '0') == d.size) {
      const bool big = order == '>';
      const bool little = order == '<';
      return {d.type, d.size > 1 && (kHostLittleEndian ? big : little)};
    }
  }
  throw_bad_input(name, "unsupported dtype '" + descr +
                            "' (expected f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 or b1)");
}

struct Header {
  Descr descr{DType::f32, false};
  std::vector<int64_t> shape;
  bool fortran_order = false;
};

Header interpret_header(const std::string& text, const std::string& name) {
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  const auto entries = HeaderParser(text, name).dict();
  for (const auto& [key, value] : entries) {
    if (key == "descr") descr = &value;
    if (key == "fortran_order") fortran = &value;
    if (key == "shape") shape = &value;
  }
  if (!descr || !fortran || !shape)
    throw_bad_input(name, ".npy header lacks 'descr', 'fortran_order' or 'shape'");
  if (descr->kind == PyValue::Kind::sequence)
    throw_bad_input(name, "structured dtypes are not supported");
  if (descr->kind != PyValue::Kind::string) throw_bad_input(name, ".npy 'descr' is not a string");
  if (fortran->kind != PyValue::Kind::boolean)
    throw_bad_input(name, ".npy 'fortran_order' is not True or False");
  if (shape->kind != PyValue::Kind::sequence) throw_bad_input(name, ".npy 'shape' is not a tuple");

  Header h;
  h.descr = parse_descr(descr->text, name);
  for (const PyValue& d : shape->items) {
    if (d.kind != PyValue::Kind::integer || d.integer < 0)
      throw_bad_input(name, ".npy 'shape' must hold non-negative integers");
    h.shape.push_back(d.integer);
  }
  h.fortran_order = fortran->boolean;
  return h;
}

// Fortran order stores the first axis fastest. Walks the C-order index (last
// axis fastest) while tracking the matching Fortran offset.
std::vector<uint8_t> fortran_to_c(const uint8_t* src, const std::vector<int64_t>& shape,
                                  size_t numel, size_t item) {
  std::vector<uint8_t> out(numel * item);
  std::vector<size_t> stride(shape.size()), index(shape.size(), 0);
  size_t s = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    stride[k] = s;
    s *= static_cast<size_t>(shape[k]);
  }
  size_t offset = 0;
  for (size_t i = 0; i < numel; ++i) {
    std::memcpy(out.data() + i * item, src + offset * item, item);
    for (size_t k = shape.size(); k-- > 0;) {
      if (++index[k] < static_cast<size_t>(shape[k])) {
        offset += stride[k];
        break;
      }
      offset -= (index[k] - 1) * stride[k];  // back to the start of axis k
      index[k] = 0;
    }
  }
  return out;
}

uint32_t read_le(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// ---- .npz: the ZIP container ----------------------------------------------

// Little-endian fields at checked offsets of an untrusted buffer.
class ZipView {
 public:
  ZipView(const uint8_t* bytes, size_t size, const std::string& name)
      : p_(bytes), size_(size), name_(name) {}

  bool has(uint64_t pos, uint64_t n) const { return pos <= size_ && n <= size_ - pos; }
  const uint8_t* at(uint64_t pos, uint64_t n) const {
    if (!has(pos, n)) fail("truncated or corrupt ZIP structure");
    return p_ + pos;
  }
  uint64_t u16(uint64_t pos) const { return read_le(at(pos, 2), 2); }
  uint64_t u32(uint64_t pos) const { return read_le(at(pos, 4), 4); }
  uint64_t u64(uint64_t pos) const { return u32(pos) | (u32(pos + 4) << 32); }
  size_t size() const { return size_; }
  [[noreturn]] void fail(const std::string& what) const { throw_bad_input(name_, what); }

 private:
  const uint8_t* p_;
  size_t size_;
  const std::string& name_;
};

constexpr uint64_t kEndOfCentralDir = 0x06054b50;
constexpr uint64_t kZip64EndLocator = 0x07064b50;
constexpr uint64_t kZip64End = 0x06064b50;
constexpr uint64_t kCentralEntry = 0x02014b50;
constexpr uint64_t kLocalEntry = 0x04034b50;

struct CentralDir {
  uint64_t entries = 0, offset = 0, size = 0;
};

CentralDir find_central_dir(const ZipView& zip) {
  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  if (zip.size() < 22) zip.fail("not a ZIP archive (.npz)");
  uint64_t eocd = zip.size() - 22;
  const uint64_t lowest = eocd > 65535 ? eocd - 65535 : 0;
  while (zip.u32(eocd) != kEndOfCentralDir) {
    if (eocd == lowest) zip.fail("not a ZIP archive (.npz)");
    --eocd;
  }
  CentralDir cd{zip.u16(eocd + 10), zip.u32(eocd + 16), zip.u32(eocd + 12)};
  if (cd.entries == 0xFFFF || cd.offset == 0xFFFFFFFF || cd.size == 0xFFFFFFFF) {
    if (eocd < 20 || zip.u32(eocd - 20) != kZip64EndLocator)
      zip.fail("corrupt ZIP64 archive (no ZIP64 end locator)");
    const uint64_t rec = zip.u64(eocd - 20 + 8);
    if (zip.u32(rec) != kZip64End) zip.fail("corrupt ZIP64 archive (bad end record)");
    cd = {zip.u64(rec + 32), zip.u64(rec + 48), zip.u64(rec + 40)};
  }
  if (!zip.has(cd.offset, cd.size)) zip.fail("truncated ZIP archive (central directory)");
  return cd;
}

struct ZipEntry {
  std::string name;
  uint64_t method = 0, flags = 0, crc = 0;
  uint64_t compressed = 0, uncompressed = 0, local_offset = 0;
};

// Sizes and offset saturated at 0xFFFFFFFF are in the ZIP64 extra field
// (id 1), in this order, each present only if saturated.
void apply_zip64_extra(const ZipView& zip, uint64_t extra, uint64_t extra_len, ZipEntry& e) {
  uint64_t pos = extra;
  while (pos + 4 <= extra + extra_len) {
    const uint64_t id = zip.u16(pos), len = zip.u16(pos + 2);
    uint64_t field = pos + 4;
    const uint64_t end = field + len;
    if (end > extra + extra_len) zip.fail("corrupt ZIP extra field");
    if (id == 1) {
      for (uint64_t* v : {&e.uncompressed, &e.compressed, &e.local_offset}) {
        if (*v != 0xFFFFFFFF) continue;
        if (field + 8 > end) zip.fail("corrupt ZIP64 extra field");
        *v = zip.u64(field);
        field += 8;
      }
      return;
    }
    pos = end;
  }
}

std::vector<ZipEntry> read_central_dir(const ZipView& zip, const CentralDir& cd) {
  std::vector<ZipEntry> entries;
  uint64_t pos = cd.offset;
  for (uint64_t i = 0; i < cd.entries; ++i) {
    if (zip.u32(pos) != kCentralEntry) zip.fail("corrupt ZIP central directory");
    ZipEntry e;
    e.flags = zip.u16(pos + 8);
    e.method = zip.u16(pos + 10);
    e.crc = zip.u32(pos + 16);
    e.compressed = zip.u32(pos + 20);
    e.uncompressed = zip.u32(pos + 24);
    const uint64_t name_len = zip.u16(pos + 28), extra_len = zip.u16(pos + 30),
                   comment_len = zip.u16(pos + 32);
    e.local_offset = zip.u32(pos + 42);
    const uint8_t* n = zip.at(pos + 46, name_len);
    e.name.assign(n, n + name_len);
    zip.at(pos + 46 + name_len, extra_len);
    apply_zip64_extra(zip, pos + 46 + name_len, extra_len, e);
    entries.push_back(std::move(e));
    pos += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

uint32_t crc_of(const uint8_t* data, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < n;) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n - done, 1u << 30));
    crc = crc32(crc, data + done, chunk);
    done += chunk;
  }
  return static_cast<uint32_t>(crc);
}

// Raw deflate (ZIP method 8) of exactly `expected` bytes.
std::vector<uint8_t> inflate_raw(const uint8_t* src, uint64_t n, uint64_t expected,
                                 const std::string& what) {
  std::vector<uint8_t> out(static_cast<size_t>(expected));
  if (expected == 0) return out;  // zlib refuses a null output pointer
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw_runtime("zlib inflateInit2 failed");
  int ret = Z_OK;
  while (ret == Z_OK) {  // zlib counts in 32 bits per call, so feed at most 1 GiB at a time
    zs.next_in = const_cast<Bytef*>(src + zs.total_in);
    zs.avail_in = static_cast<uInt>(std::min<uint64_t>(n - zs.total_in, 1u << 30));
    zs.next_out = out.data() + zs.total_out;
    zs.avail_out = static_cast<uInt>(std::min<uint64_t>(expected - zs.total_out, 1u << 30));
    ret = inflate(&zs, Z_NO_FLUSH);
  }
  const bool ok = ret == Z_STREAM_END && zs.total_out == expected;
  inflateEnd(&zs);
  if (!ok) throw_bad_input(what, "corrupt or truncated deflate data");
  return out;
}

std::vector<uint8_t> entry_data(const ZipView& zip, const ZipEntry& e, const std::string& what) {
  if (e.flags & 1) throw_bad_input(what, "encrypted ZIP entries are not supported");
  if (zip.u32(e.local_offset) != kLocalEntry) throw_bad_input(what, "corrupt ZIP local header");
  // The local header's own sizes may be deferred to a data descriptor, so
  // only its name and extra lengths are taken from it.
  const uint64_t start =
      e.local_offset + 30 + zip.u16(e.local_offset + 26) + zip.u16(e.local_offset + 28);
  if (!zip.has(start, e.compressed)) throw_bad_input(what, "truncated ZIP entry");
  const uint8_t* src = zip.at(start, e.compressed);
  std::vector<uint8_t> data;
  if (e.method == 0) {
    if (e.compressed != e.uncompressed) throw_bad_input(what, "corrupt ZIP entry sizes");
    data.assign(src, src + e.compressed);
  } else if (e.method == 8) {
    // Deflate expands at most ~1032:1; a larger claim is corrupt, and is
    // refused before allocating for it.
    if (e.uncompressed > e.compressed * 1032 + 1024)
      throw_bad_input(what, "corrupt ZIP entry sizes");
    data = inflate_raw(src, e.compressed, e.uncompressed, what);
  } else {
    throw_bad_input(what, "unsupported ZIP compression method " + std::to_string(e.method));
  }
  if (crc_of(data.data(), data.size()) != e.crc) throw_bad_input(what, "ZIP entry CRC mismatch");
  return data;
}

// ---- numeric conversion ----------------------------------------------------

template <class Out, class In>
void convert_items(const NpyArray& a, std::vector<Out>& out) {
  const In* in = a.as<In>();
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<Out>(in[i]);
}

template <class Out>
std::vector<Out> convert(const NpyArray& a) {
  std::vector<Out> out(a.numel());
  switch (a.dtype) {
    case DType::f16:
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<Out>(half_to_float(a.as<uint16_t>()[i]));
      break;
    case DType::f32: convert_items<Out, float>(a, out); break;
    case DType::f64: convert_items<Out, double>(a, out); break;
    case DType::u8: convert_items<Out, uint8_t>(a, out); break;
    case DType::u16: convert_items<Out, uint16_t>(a, out); break;
    case DType::u32: convert_items<Out, uint32_t>(a, out); break;
    case DType::u64: convert_items<Out, uint64_t>(a, out); break;
    case DType::i8: convert_items<Out, int8_t>(a, out); break;
    case DType::i16: convert_items<Out, int16_t>(a, out); break;
    case DType::i32: convert_items<Out, int32_t>(a, out); break;
    case DType::i64: convert_items<Out, int64_t>(a, out); break;
    case DType::b1:
      for (size_t i = 0; i < out.size(); ++i) out[i] = a.data[i] ? Out(1) : Out(0);
      break;
    case DType::bf16:
      for (size_t i = 0; i < out.size(); ++i) {
        const uint32_t bits = uint32_t(a.as<uint16_t>()[i]) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        out[i] = static_cast<Out>(f);
      }
      break;
    case DType::f8_e4m3:
    case DType::f8_e5m2: throw_runtime(std::string("no conversion from ") + dtype_name(a.dtype));
  }
  return out;
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Shifts right by `shift` bits, rounding to nearest, ties to even.
uint32_t shift_round_even(uint32_t v, int shift) {
  const uint32_t kept = v >> shift;
  const uint32_t rest = v & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}

}  // namespace

const char* dtype_descr(DType t) { return dtype_info(t).descr; }

size_t NpyArray::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size == 0) throw_bad_input(name, "empty file");
  if (size < 10 || std::memcmp(bytes, magic, 6) != 0)
    throw_bad_input(name, "not a .npy file (bad magic)");
  const int major = bytes[6], minor = bytes[7];
  if ((major < 1 || major > 3) || minor != 0)
    throw_bad_input(name, "unsupported .npy version " + std::to_string(major) + "." +
                              std::to_string(minor));
  const size_t prefix = major == 1 ? 10 : 12;
  if (size < prefix) throw_bad_input(name, "truncated .npy header");
  const uint64_t header_len = read_le(bytes + 8, major == 1 ? 2 : 4);
  if (header_len > size - prefix) throw_bad_input(name, "truncated .npy header");
  const std::string text(reinterpret_cast<const char*>(bytes + prefix), header_len);
  const Header h = interpret_header(text, name);

  const size_t item = dtype_size(h.descr.type);
  const size_t available = size - prefix - header_len;
  uint64_t needed = item;
  for (int64_t d : h.shape) {
    if (__builtin_mul_overflow(needed, static_cast<uint64_t>(d), &needed))
      throw_bad_input(name, ".npy shape " + shape_repr(h.shape) + " is too large");
  }
  if (needed > available)
    throw_bad_input(name, "truncated .npy data (shape " + shape_repr(h.shape) + " needs " +
                              std::to_string(needed) + " bytes, file has " +
                              std::to_string(available) + ")");
  NpyArray a;
  a.dtype = h.descr.type;
  a.shape = h.shape;
  const uint8_t* data = bytes + prefix + header_len;
  if (h.fortran_order && h.shape.size() > 1)
    a.data = fortran_to_c(data, h.shape, needed / item, item);
  else  // with fewer than two axes both orders are the same bytes
    a.data.assign(data, data + needed);
  if (h.descr.swap) byteswap_items(a.data.data(), a.data.size(), item);
  return a;
}

bool npy_file_complete(const std::string& path) {
  try {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec || size < 10) return false;
    std::ifstream f(path, std::ios::binary);
    uint8_t head[12] = {};
    if (!f.read(reinterpret_cast<char*>(head), 10) || std::memcmp(head, "\x93NUMPY", 6) != 0) return false;
    const int major = head[6];
    if (major < 1 || major > 3 || head[7] != 0) return false;
    if (major > 1 && !f.read(reinterpret_cast<char*>(head + 10), 2)) return false;
    const size_t prefix = major == 1 ? 10 : 12;
    const uint64_t header_len = read_le(head + 8, major == 1 ? 2 : 4);
    if (header_len > (uint64_t(1) << 20) || prefix + header_len > size) return false;
    std::string text(size_t(header_len), '\0');
    if (!f.read(text.data(), std::streamsize(header_len))) return false;
    const Header h = interpret_header(text, path);
    uint64_t needed = dtype_size(h.descr.type);
    for (int64_t d : h.shape)
      if (__builtin_mul_overflow(needed, static_cast<uint64_t>(d), &needed)) return false;
    return size == prefix + header_len + needed;
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<uint8_t> read_npy_bytes(const std::string& path) {
  const std::string name = path == "-" ? "<stdin>" : path;
  // The magic first: /dev/zero is refused before it is read whole.
  return read_file_bytes(path, 0, [&](const uint8_t* p, size_t n) {
    if (n >= 6 && std::memcmp(p, "\x93NUMPY", 6) != 0) throw_bad_input(name, "not a .npy file (bad magic)");
  });
}

NpyArray read_npy(const std::string& path) {
  const std::vector<uint8_t> bytes = read_npy_bytes(path);
  return parse_npy(bytes.data(), bytes.size(), path == "-" ? "<stdin>" : path);
}

std::vector<uint8_t> serialize_npy(const NpyArray& a) {
  for (int64_t d : a.shape)
    if (d < 0) throw_runtime("npy: negative dimension in shape " + shape_repr(a.shape));
  const size_t item = dtype_size(a.dtype);
  if (a.data.size() != a.numel() * item)
    throw_runtime("npy: data size does not match shape " + shape_repr(a.shape));

  // Exactly numpy's layout (format.py, numpy >= 1.24): sorted keys, spare
  // spaces after the dict so the first axis can grow in place, then spaces
  // and '\n' up to a multiple of 64 bytes counting the magic and length.
  std::string header = std::string("{'descr': '") + dtype_descr(a.dtype) +
                       "', 'fortran_order': False, 'shape': " + shape_repr(a.shape) + ", }";
  if (!a.shape.empty())
    header.append(21 - std::min<size_t>(21, std::to_string(a.shape[0]).size()), ' ');
  const size_t text_len = header.size() + 1;  // with the final '\n'
  size_t prefix = 10;
  size_t pad = 64 - (prefix + text_len) % 64;
  if (text_len + pad > 65535) {  // too long for version 1.0's 16-bit length
    prefix = 12;
    pad = 64 - (prefix + text_len) % 64;
  }
  header.append(pad, ' ');
  header += '\n';

  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(prefix == 10 ? 1 : 2), 0};
  for (size_t i = 0, len = header.size(); i < prefix - 8; ++i, len >>= 8)
    out.push_back(static_cast<uint8_t>(len & 0xFF));
  out.insert(out.end(), header.begin(), header.end());
  const size_t data_start = out.size();
  out.insert(out.end(), a.data.begin(), a.data.end());
  if (!kHostLittleEndian) byteswap_items(out.data() + data_start, a.data.size(), item);
  return out;
}

void write_npy(const std::string& path, const NpyArray& a) {
  write_file_atomic(path, serialize_npy(a));
}

NpzFile parse_npz(const uint8_t* bytes, size_t size, const std::string& name, uint64_t max_entry_bytes) {
  if (size == 0) throw_bad_input(name, "empty file");
  const ZipView zip(bytes, size, name);
  NpzFile npz;
  for (const ZipEntry& e : read_central_dir(zip, find_central_dir(zip))) {
    if (!e.name.empty() && e.name.back() == '/') continue;  // a directory
    const std::string what = name + ":" + e.name;
    const std::string suffix = ".npy";
    if (e.name.size() <= suffix.size() ||
        e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      throw_bad_input(what, "not a .npy entry");
    if (max_entry_bytes > 0 && e.uncompressed > max_entry_bytes)
      throw_bad_input(what, "inflates to " + std::to_string(e.uncompressed) + " bytes, more than the " +
                                std::to_string(max_entry_bytes) + " this file may hold");
    const std::vector<uint8_t> data = entry_data(zip, e, what);
    npz.arrays[e.name.substr(0, e.name.size() - suffix.size())] =
        parse_npy(data.data(), data.size(), what);
  }
  return npz;
}

std::vector<uint8_t> serialize_npz(const std::vector<std::pair<std::string, NpyArray>>& arrays) {
  std::vector<uint8_t> out, central;
  auto put16 = [](std::vector<uint8_t>& v, uint32_t x) {
    v.push_back(uint8_t(x)), v.push_back(uint8_t(x >> 8));
  };
  auto put32 = [&](std::vector<uint8_t>& v, uint32_t x) { put16(v, x & 0xffff), put16(v, x >> 16); };
  auto fits = [](uint64_t n, const std::string& what) {
    if (n > 0xffffffffull) throw_runtime("npz: " + what + " passes 4 GiB (ZIP64 archives are not written)");
  };
  // DOS time 00:00:00, date 1980-01-01: archives of the same arrays are the same bytes.
  constexpr uint32_t kTime = 0, kDate = (0u << 9) | (1u << 5) | 1u;
  for (const auto& [key, a] : arrays) {
    if (key.empty() || key.size() > 0xfff0) throw_runtime("npz: bad entry name '" + key + "'");
    const std::string name = key + ".npy";
    const std::vector<uint8_t> data = serialize_npy(a);
    fits(data.size(), "the entry " + name);
    fits(out.size(), "the archive");
    const uint32_t offset = uint32_t(out.size()), crc = crc_of(data.data(), data.size());
    auto header = [&](std::vector<uint8_t>& v, bool central_entry) {
      put32(v, central_entry ? 0x02014b50u : 0x04034b50u);
      if (central_entry) put16(v, 20);  // made by: version 2.0
      put16(v, 20);                     // needed: version 2.0
      put16(v, 0);                      // flags
      put16(v, 0);                      // method: stored
      put16(v, kTime), put16(v, kDate);
      put32(v, crc), put32(v, uint32_t(data.size())), put32(v, uint32_t(data.size()));
      put16(v, uint32_t(name.size())), put16(v, 0);  // name, extra field lengths
      if (central_entry) {
        put16(v, 0), put16(v, 0), put16(v, 0);  // comment length, disk, internal attributes
        put32(v, 0);                            // external attributes
        put32(v, offset);
      }
      v.insert(v.end(), name.begin(), name.end());
    };
    header(out, false);
    out.insert(out.end(), data.begin(), data.end());
    header(central, true);
  }
  fits(out.size() + central.size(), "the archive");
  const uint32_t cd_offset = uint32_t(out.size()), cd_size = uint32_t(central.size());
  out.insert(out.end(), central.begin(), central.end());
  put32(out, 0x06054b50u);
  put16(out, 0), put16(out, 0);                                          // this disk, the directory's disk
  put16(out, uint32_t(arrays.size())), put16(out, uint32_t(arrays.size()));  // entries here, in all
  put32(out, cd_size), put32(out, cd_offset);
  put16(out, 0);  // comment length
  if (arrays.size() > 0xffff) throw_runtime("npz: more than 65535 arrays");
  return out;
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, NpyArray>>& arrays) {
  write_file_atomic(path, serialize_npz(arrays));
}

NpzFile read_npz(const std::string& path) {
  const std::string name = path == "-" ? "<stdin>" : path;
  const std::vector<uint8_t> bytes = read_file_bytes(path, 0, [&](const uint8_t* p, size_t n) {
    if (n >= 2 && (p[0] != 'P' || p[1] != 'K')) throw_bad_input(name, "not a ZIP archive (.npz)");
  });
  return parse_npz(bytes.data(), bytes.size(), name);
}

std::vector<double> npy_to_f64(const NpyArray& a) { return convert<double>(a); }
std::vector<float> npy_to_f32(const NpyArray& a) { return convert<float>(a); }

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bits_float(sign | 0x7F800000u | (mantissa << 13));  // inf, nan
  return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t float_to_half(float f) {
  const uint32_t bits = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7FFFFFFF;
  const uint32_t exponent = magnitude >> 23;
  const uint32_t mantissa = magnitude & 0x7FFFFF;
  if (exponent == 255)  // inf stays inf; nan stays a (quiet) nan with its top payload bits
    return sign | 0x7C00 | (mantissa ? 0x200 | (mantissa >> 13) : 0);
  if (exponent >= 143) return sign | 0x7C00;  // >= 2^16: beyond half's range
  if (exponent >= 113) {
    // Normal half. A carry out of the mantissa correctly bumps the exponent,
    // up to infinity for values that round past 65504.
    const uint32_t h = (exponent - 112) << 23 | mantissa;
    return sign | static_cast<uint16_t>(shift_round_even(h, 13));
  }
  if (exponent < 102) return sign;  // below 2^-25: rounds to zero
  // Subnormal half: the value in units of 2^-24, from the full 24-bit mantissa.
  const int shift = 126 - static_cast<int>(exponent);
  return sign | static_cast<uint16_t>(shift_round_even(mantissa | 0x800000, shift));
}

}  // namespace rass
