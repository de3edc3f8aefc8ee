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
// against 2.5 million and 7.5 s; VAE encoder 14.5 -> 9.1 s, decoder 33.6 ->
// 28.2 s; peak resident set 9.9 -> 9.7 GiB. Two lanes (-j 2, tiny4, 512 px,
// --batch 4, 16 images): 7.3-8.5 s -> 6.3-7.3 s, but the one heap's
// high-water mark is higher (peak resident set 3.4 -> 4.0-4.2 GB; 2048 px
// tiled, SD size: 19.3 -> 21.9 GiB). A network tool's threads allocate seldom (an operator's output),
// so one heap's lock should cost them little (measured on 2 cores only; a
// many-core GPU host's reading and writing threads share it too).
// MALLOC_ARENA_MAX or GLIBC_TUNABLES in the environment: left to the user.
void tune_allocator(bool one_arena = false);
}  // namespace rass
