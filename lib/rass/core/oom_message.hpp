// LibTorch's failed allocations in words: "[enforce fail at
// alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory:
// you tried to allocate 549755813888 bytes. Error code 12 (...)" and CUDA's
// "CUDA out of memory. Tried to allocate ..." reached users as they were.
#pragma once
#include <string>

namespace rass {

// `what` (an exception's first line is kept) as "out of memory (...): a
// smaller input, batch or tile may fit" when it reports a failed
// allocation; otherwise `what` unchanged.
std::string describe_allocation_failure(const std::string& what);

// The allocator's own line of `what` ("DefaultCPUAllocator: can't allocate
// memory: you tried to allocate ... bytes. ..."), without the enforce prefix,
// when it reports a failed allocation; "" otherwise.
std::string allocation_failure_line(const std::string& what);

}  // namespace rass
