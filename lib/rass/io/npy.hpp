// NumPy .npy files (format versions 1.0, 2.0 and 3.0 on read; 1.0 written, or
// 2.0 when the header needs it). dtypes: f2 f4 f8 u1 u2 i4 i8 (also b1, i1,
// i2, u4, u8 on read), little- or big-endian on read (converted to native).
// Arrays are held in C order; Fortran-order files (as scipy/MATLAB-derived
// arrays often are) are reordered on read, as numpy.load presents them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rass/io/dtype.hpp"

namespace rass {

// DType (shared with safetensors) is in io/dtype.hpp; bf16 and fp8 have no
// numpy descr (dtype_descr throws for them).
const char* dtype_descr(DType t);  // numpy descr, little-endian: "<f4", "|u1", ...

struct NpyArray {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;   // empty = scalar
  std::vector<uint8_t> data;    // native-endian, C order
  size_t numel() const;
  template <class T> T* as() { return reinterpret_cast<T*>(data.data()); }
  template <class T> const T* as() const { return reinterpret_cast<const T*>(data.data()); }
};

// Parse from memory; `name` is used in messages (Error bad_input).
NpyArray parse_npy(const uint8_t* bytes, size_t size, const std::string& name);
NpyArray read_npy(const std::string& path);  // "-" = stdin
// Whether the file at `path` is a whole .npy file: its header parses and the
// file is exactly as long as the header and the data its shape needs
// (--resume's check of a side output; reads the header only).
bool npy_file_complete(const std::string& path);
// The file's bytes, the magic checked first (so /dev/zero is refused before
// it is read whole): for callers that also hash them.
std::vector<uint8_t> read_npy_bytes(const std::string& path);
std::vector<uint8_t> serialize_npy(const NpyArray& a);
void write_npy(const std::string& path, const NpyArray& a);  // atomic; "-" = stdout

// NumPy .npz archives (np.savez / np.savez_compressed): a ZIP of .npy files,
// stored or deflated, ZIP64 extra fields understood. Keys are the entry names
// without ".npy". Errors name the archive (and the entry) with exit code 3.
struct NpzFile {
  std::map<std::string, NpyArray> arrays;
};
// `max_entry_bytes` > 0: an entry that inflates to more is refused before it
// is inflated (a small archive of a huge entry: a ZIP bomb).
NpzFile parse_npz(const uint8_t* bytes, size_t size, const std::string& name, uint64_t max_entry_bytes = 0);
NpzFile read_npz(const std::string& path);  // "-" = stdin
// An archive as np.savez writes it: each array stored (not deflated) as
// <key>.npy, in the order given; no ZIP64, so at most 4 GiB in all
// (Error(runtime) past that). np.load and parse_npz read it.
std::vector<uint8_t> serialize_npz(const std::vector<std::pair<std::string, NpyArray>>& arrays);
void write_npz(const std::string& path, const std::vector<std::pair<std::string, NpyArray>>& arrays);  // atomic; "-" = stdout

// Converts any numeric array to float64 / float32 values (f16 decoded exactly).
std::vector<double> npy_to_f64(const NpyArray& a);
std::vector<float> npy_to_f32(const NpyArray& a);

// IEEE half <-> float.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);  // round to nearest even

}  // namespace rass
