// CUDA graphs for fixed shapes (--cuda-graphs, issue 14). A batch of the
// network tools is hundreds of small kernels (every norm, activation and
// attention of the UNet and the VAE); launched one by one from the host
// they leave the GPU idle between them whenever the batch is small. A CUDA
// graph records the whole sequence once for one set of input shapes and
// then launches it with one call: inputs are copied into the graph's own
// buffers, the graph is replayed, its outputs are copied out.
//
// What runs under a graph must not wait for the host or send host memory up
// (no .item(), no copy from host memory) and must be the same sequence for
// the same shapes; the callers pass only such device computations (the
// restore chunk's encoder-UNet-decoder, segment's window backbone and head)
// and keep everything with host decisions outside.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace at {
class Tensor;
}

namespace rass::model {

// Whether this build can record CUDA graphs (a LibTorch with CUDA).
bool cuda_graphs_built();

class GraphCache {
 public:
  using Fn = std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>&)>;

  // `on`: --cuda-graphs. Graphs are used only when the inputs are on a CUDA
  // device and this build has CUDA (cuda_graphs_built()); otherwise run()
  // calls f.
  explicit GraphCache(bool on = false);
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // f(inputs), through the graph recorded for (key, the inputs' shapes and
  // types, the calling thread's stream), recording it on first use (two
  // warm-up calls, then the capture, on a stream of the cache's own). `key`
  // names f and every non-tensor value it depends on. The outputs are
  // copies the caller owns. The graphs of one stream share a memory pool
  // (their intermediate tensors, kept between replays: the largest graph's,
  // not the sum). Past kMaxGraphs distinct graphs, new shapes run eagerly.
  // A failed capture is reported once on stderr and that key runs eagerly
  // from then on.
  std::vector<at::Tensor> run(const std::string& key, const std::vector<at::Tensor>& inputs, const Fn& f) const;

  bool on() const { return on_; }
  // Whether run() records work on `device` (on, a CUDA device, a CUDA
  // build): the callers then treat the work as one piece (one --timings
  // stage, nothing inside it that waits for the host).
  bool records(const c10::Device& device) const { return on_ && device.is_cuda() && cuda_graphs_built(); }
  // Graphs recorded and replays so far (the benchmark and tests report them).
  size_t captured() const;
  size_t replays() const;

  static constexpr size_t kMaxGraphs = 8;

 private:
  struct Impl;
  bool on_ = false;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rass::model
