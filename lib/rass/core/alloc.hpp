#pragma once
namespace rass {
// Keeps freed buffers, large ones too, in the heap instead of returning them to the OS:
// image pipelines allocate and free the same sizes per item, and glibc's
// default mmap/munmap of each buffer cost page faults on every image.
// With `one_arena` (the network tools) every thread allocates from the main
// heap too: glibc gives threads heaps of their own (64 MiB pieces of mapped
// memory, unmapped again whenever one empties), and the tiled VAE's tile
// threads, which make and free activations at every GroupNorm, refaulted
// them page by page. Measured (rass-restore, SD 2.1-base size, bf16, 1024 px
// tiled, 2-core EPYC): 15.7 million page faults and 29 s in the kernel
// against 2.8 million and 10 s; VAE encoder 14.5 -> 9.0 s, decoder 33.6 ->
// 25.8 s. A network tool's threads allocate seldom (an operator's output),
// so one heap's lock costs them nothing measurable.
void tune_allocator(bool one_arena = false);
}  // namespace rass
