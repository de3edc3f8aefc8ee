// Prompt embeddings kept for the run: a batch job often gives many images
// the same prompt (no --tags, one --prompt), and the text encoder at batch 1
// is dozens of small kernels per image (launch-bound on a GPU: milliseconds
// each). A prompt's embedding is computed once, alone (batch 1), so it is
// the same tensor whichever item asked first (rass-restore encodes a chunk
// with mixed prompts batched, as before: those results depend on the chunk,
// within rounding).
//
// Kept per stream of the calling thread: an entry made on one CUDA stream
// is read only by work queued on that stream (no cross-stream waits, and
// the caching allocator never reuses it under another stream's reads).
// At most kMaxEntries prompts are kept (the first ones seen); past that a
// prompt is encoded each time it is asked for. Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace rass::model {

class PromptCache {
 public:
  static constexpr size_t kMaxEntries = 64;

  // The embedding of `prompt` made by `encode` (called outside the lock on a
  // miss; threads asking for a prompt being encoded wait for it, and get
  // its exception if it fails, which is then not kept).
  // `device`: where `encode` queues its work (its current stream keys the entry).
  at::Tensor get(const std::string& prompt, c10::Device device, const std::function<at::Tensor()>& encode) const;

  size_t hits() const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  mutable std::map<std::pair<int64_t, std::string>, std::shared_future<at::Tensor>> entries_;  // (stream, prompt)
  mutable size_t hits_ = 0;
};

}  // namespace rass::model
