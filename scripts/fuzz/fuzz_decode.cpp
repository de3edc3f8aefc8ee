// libFuzzer harness for the parsers that take untrusted bytes: decode_image
// (PNG, JPEG, PNM), parse_npy and parse_npz. A rass::Error is an accepted
// outcome; a crash, sanitizer report, leak or any other exception is a finding.
//
// Build with clang -fsanitize=fuzzer,address and run from the repository root:
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Ilib \
//     scripts/fuzz/fuzz_decode.cpp lib/rass/io/{image_io,png,jpeg,pnm,npy}.cpp \
//     lib/rass/core/file.cpp -lpng -ljpeg -lz -o /tmp/fuzz_decode
//   mkdir -p /tmp/fuzz-corpus && cp tests/fixtures/*.{png,jpg,npy,npz} /tmp/fuzz-corpus/
//   /tmp/fuzz_decode /tmp/fuzz-corpus -max_total_time=180 -rss_limit_mb=2560
#include <cstddef>
#include <cstdint>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rass::decode_image(data, size, "fuzz");
  } catch (const rass::Error&) {
  }
  try {
    rass::parse_npy(data, size, "fuzz");
  } catch (const rass::Error&) {
  }
  try {
    rass::parse_npz(data, size, "fuzz");
  } catch (const rass::Error&) {
  }
  return 0;
}
