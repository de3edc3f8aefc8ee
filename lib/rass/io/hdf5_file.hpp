// Small HDF5 files through the libhdf5 C API (Debian's serial libhdf5): the
// writer builds the whole file in memory (the core driver, no backing store)
// and hands back its bytes, so callers write them with write_file_atomic and a
// failure never leaves a file behind; the reader opens a file for the datasets
// and root attributes it names. Only what rass' packs use: root attributes
// (string, integer, float), and datasets of uint8, int32, float64 and
// variable-length UTF-8 strings, optionally deflate-compressed.
//
// The serial libhdf5 is not thread-safe: every call into it takes one
// process-wide lock, so batch workers may use these classes concurrently.
// Every libhdf5 call is checked; failures throw rass::Error (writer: runtime;
// reader: bad_input naming the file and the object).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rass::io {

class Hdf5Writer {
 public:
  Hdf5Writer();
  ~Hdf5Writer();
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  void attribute(const std::string& name, const std::string& value);
  void attribute(const std::string& name, int64_t value);
  void attribute_double(const std::string& name, double value);

  // `dims` may contain zeros (an empty dataset). With `compress`, chunks of one
  // leading-dimension slice, deflate level 1 (when the library has the filter).
  void dataset_u8(const std::string& name, const std::vector<uint64_t>& dims, const uint8_t* data, bool compress = false);
  void dataset_i32(const std::string& name, const std::vector<uint64_t>& dims, const int32_t* data);
  void dataset_f64(const std::string& name, const std::vector<uint64_t>& dims, const double* data);
  void dataset_strings(const std::string& name, const std::vector<std::string>& values);

  // Closes the file and returns its bytes; the writer cannot be used afterwards.
  std::vector<uint8_t> finish();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class Hdf5Reader {
 public:
  explicit Hdf5Reader(const std::string& path);  // Error(bad_input) when it is not an HDF5 file
  ~Hdf5Reader();
  Hdf5Reader(const Hdf5Reader&) = delete;
  Hdf5Reader& operator=(const Hdf5Reader&) = delete;

  bool has(const std::string& name) const;  // a dataset or group of that name at the root
  std::vector<uint64_t> dims(const std::string& dataset) const;
  std::vector<uint8_t> read_u8(const std::string& dataset) const;
  std::vector<int32_t> read_i32(const std::string& dataset) const;
  std::vector<double> read_f64(const std::string& dataset) const;
  std::vector<std::string> read_strings(const std::string& dataset) const;
  std::string attribute_string(const std::string& name) const;
  int64_t attribute_int(const std::string& name) const;
  double attribute_double(const std::string& name) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rass::io
