// safetensors files (huggingface/safetensors format): an 8-byte little-endian
// header length N, N bytes of JSON ({"name": {"dtype", "shape",
// "data_offsets": [begin, end]}, "__metadata__": {str: str}}), then the data.
// Reading memory-maps the file and checks every offset and length against the
// file size before any tensor is touched; tensors must tile the data area
// exactly, as the reference library requires. Torch-free: the network layer
// wraps TensorView data in tensors.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rass/io/dtype.hpp"

namespace rass {

// Element types: rass::DType (io/dtype.hpp), shared with .npy; dtype_name()
// gives the safetensors spelling.

struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // little-endian, C order, inside the mapping
  size_t nbytes = 0;
  size_t offset = 0;  // in the data area
  int64_t numel() const;
};

struct SafeTensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<TensorView> tensors;  // sorted by data offset; data pointers into the buffer
  size_t data_start = 0;            // 8 + N
};

// Validates the header and the layout of a whole file image held in memory.
// Throws Error(bad_input) "<name>: ..." naming the tensor at fault.
SafeTensorsHeader parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name);

class SafeTensorsFile {
 public:
  // Memory-maps `path` (read-only) and parses it. Throws Error(bad_input).
  static std::shared_ptr<SafeTensorsFile> open(const std::string& path);
  ~SafeTensorsFile();
  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::vector<TensorView>& tensors() const { return header_.tensors; }
  const TensorView* find(const std::string& name) const;

 private:
  SafeTensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  SafeTensorsHeader header_;
  std::map<std::string, size_t> index_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // numel * dtype size bytes, little-endian
  size_t nbytes = 0;
};
// Writes atomically. Tensors are laid out by descending dtype size, then name
// (so every tensor is aligned to its element size), and the header is padded
// with spaces to a multiple of 8, as the reference writer does.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace rass
