#pragma once
namespace rass {
// Keeps freed buffers, large ones too, in the heap instead of returning them to the OS:
// image pipelines allocate and free the same sizes per item, and glibc's
// default mmap/munmap of each buffer cost page faults on every image.
void tune_allocator();
}  // namespace rass
