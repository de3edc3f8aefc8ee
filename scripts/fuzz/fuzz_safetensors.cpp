// libFuzzer harness for the safetensors header parser: a rass::Error is an
// accepted outcome; a crash, sanitizer report or other exception is a finding.
// When parsing succeeds every tensor's bytes are read, so an out-of-bounds
// view would show up under AddressSanitizer.
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Ilib \
//     scripts/fuzz/fuzz_safetensors.cpp lib/rass/io/safetensors.cpp lib/rass/core/file.cpp -o /tmp/fuzz_st
//   mkdir -p /tmp/st-corpus && /tmp/fuzz_st /tmp/st-corpus -max_total_time=600
#include <cstddef>
#include <cstdint>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    rass::SafeTensorsHeader h = rass::parse_safetensors(data, size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& t : h.tensors)
      for (size_t i = 0; i < t.nbytes; ++i) sink ^= t.data[i];
    (void)sink;
  } catch (const rass::Error&) {
  }
  return 0;
}
