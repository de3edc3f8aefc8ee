// SHA-256 (FIPS 180-4), implemented from the standard: for pinning the exact
// bytes of outputs in tests (golden records, known-answer vectors).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rass {

// Incremental hashing: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // Lower-case hex digest (64 characters) of everything passed to update().
  // Finishes the hash: call it once.
  std::string hex();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_ = 0;  // bytes
};

// Lower-case hex SHA-256 of `size` bytes at `data`.
std::string sha256_hex(const void* data, size_t size);

}  // namespace rass
