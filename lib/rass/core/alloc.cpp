#include "rass/core/alloc.hpp"

#include <malloc.h>

#include <cstdlib>

namespace rass {
void tune_allocator(bool one_arena) {
#ifdef M_MMAP_MAX
  // No buffer of its own mapping: glibc caps M_MMAP_THRESHOLD at 32 MiB, and
  // a network tool's activations (a batch of 8 images of 512x512 at 128
  // channels: 1 GiB) were each mapped, zeroed page by page on first touch and
  // unmapped again. Measured (rass-restore, tiny4, 512 px, --batch 8, 2-core
  // EPYC): 6.6 million page faults, 17 s of 18 in the kernel.
  mallopt(M_MMAP_MAX, 0);
  // Nor is the heap's free top given back: the next item needs it again.
  // The process keeps its peak until it exits (a batch tool's lifetime).
  mallopt(M_TRIM_THRESHOLD, -1);
#endif
#ifdef M_ARENA_MAX
  // Why: alloc.hpp. A user's own setting (MALLOC_ARENA_MAX, or any glibc
  // tunable) is left as it is.
  if (one_arena && !std::getenv("MALLOC_ARENA_MAX") && !std::getenv("GLIBC_TUNABLES")) mallopt(M_ARENA_MAX, 1);
#else
  (void)one_arena;
#endif
}
}  // namespace rass
