#include "rass/core/alloc.hpp"

#include <malloc.h>

namespace rass {
void tune_allocator() {
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}
}  // namespace rass
