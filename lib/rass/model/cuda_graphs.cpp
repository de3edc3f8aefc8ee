#include "rass/model/cuda_graphs.hpp"

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include <ATen/ATen.h>

#ifdef RASS_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace rass::model {

#ifdef RASS_TORCH_CUDA

namespace {

// One recording at a time in the process: a capture records the kernels
// its thread queues on its stream (thread-local capture mode), and two at
// once would each see the other's allocator activity begin and end.
std::mutex capture_mu;

std::string full_key(const std::string& key, const std::vector<at::Tensor>& inputs, c10::cuda::CUDAStream s) {
  std::string k = key + "|stream " + std::to_string(s.id());
  for (const at::Tensor& t : inputs) {
    k += "|" + std::string(c10::toString(t.scalar_type())) + "[";
    for (int64_t d : t.sizes()) k += std::to_string(d) + ",";
    k += "]";
    if (t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous()) k += "nhwc";
  }
  return k;
}

}  // namespace

struct GraphCache::Impl {
  struct Entry {
    std::vector<at::Tensor> in, out;  // the graph's own buffers
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    // Copy in, replay, clone out as one step: two workers can share a pool
    // stream (the pool has 32), and so an entry.
    std::mutex use;
  };
  std::mutex mu;  // guards the maps
  std::map<std::string, std::shared_ptr<Entry>> entries;
  std::set<std::string> eager;  // keys whose capture failed
  std::atomic<size_t> replays{0};
  std::atomic<bool> warned_full{false};
};

GraphCache::GraphCache(bool on) : on_(on), impl_(std::make_unique<Impl>()) {}
GraphCache::~GraphCache() = default;

std::vector<at::Tensor> GraphCache::run(const std::string& key, const std::vector<at::Tensor>& inputs, const Fn& f) const {
  if (!on_ || inputs.empty() || !inputs[0].is_cuda()) return f(inputs);
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(inputs[0].device().index());
  const std::string k = full_key(key, inputs, current);
  std::shared_ptr<Impl::Entry> e;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->eager.count(k)) return f(inputs);
    auto it = impl_->entries.find(k);
    if (it != impl_->entries.end()) e = it->second;
    else if (impl_->entries.size() >= kMaxGraphs) {
      if (!impl_->warned_full.exchange(true))
        std::fprintf(stderr, "rass: --cuda-graphs: %zu graphs recorded; further input shapes run without one\n", kMaxGraphs);
      return f(inputs);
    }
  }
  if (!e) {
    auto fresh = std::make_shared<Impl::Entry>();
    for (const at::Tensor& t : inputs) fresh->in.push_back(t.clone());
    try {
      std::lock_guard<std::mutex> capture_lock(capture_mu);
      // Captures cannot use the legacy default stream: record on a stream
      // of the pool then, ordered after the current stream's work. The
      // warm-up calls run where the capture will (cuBLAS workspaces and
      // cuDNN's autotuning belong to that stream) and leave lazily created
      // state (handles, kernels, algorithms) behind them.
      const bool side = current == c10::cuda::getDefaultCUDAStream(current.device_index());
      const c10::cuda::CUDAStream rec = side ? c10::cuda::getStreamFromPool(false, current.device_index()) : current;
      at::cuda::CUDAEvent before;
      before.record(current);
      before.block(rec);
      {
        c10::cuda::CUDAStreamGuard guard(rec);
        for (int warm = 0; warm < 2; ++warm) f(fresh->in);
        fresh->graph = std::make_unique<at::cuda::CUDAGraph>();
        fresh->graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
        try {
          fresh->out = f(fresh->in);
        } catch (...) {
          try {
            fresh->graph->capture_end();
          } catch (...) {
          }
          throw;
        }
        fresh->graph->capture_end();
      }
      at::cuda::CUDAEvent after;
      after.record(rec);
      after.block(current);
    } catch (const std::exception& ex) {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->eager.insert(k);
      std::string what = ex.what();
      if (const size_t nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
      std::fprintf(stderr, "rass: --cuda-graphs: could not record %s (%s); it runs without a graph\n", key.c_str(),
                   what.c_str());
      return f(inputs);
    }
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->entries[k] = fresh;
    e = fresh;
  }
  std::lock_guard<std::mutex> use(e->use);
  for (size_t i = 0; i < inputs.size(); ++i) e->in[i].copy_(inputs[i], /*non_blocking=*/true);
  e->graph->replay();
  ++impl_->replays;
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : e->out) out.push_back(t.defined() ? t.clone() : t);
  return out;
}

size_t GraphCache::captured() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->entries.size();
}
size_t GraphCache::replays() const { return impl_->replays; }

bool cuda_graphs_built() { return true; }

#else  // a LibTorch without CUDA: nothing to record, f runs as it is

struct GraphCache::Impl {};
GraphCache::GraphCache(bool on) : on_(on), impl_(std::make_unique<Impl>()) {}
GraphCache::~GraphCache() = default;
std::vector<at::Tensor> GraphCache::run(const std::string&, const std::vector<at::Tensor>& inputs, const Fn& f) const {
  return f(inputs);
}
size_t GraphCache::captured() const { return 0; }
size_t GraphCache::replays() const { return 0; }
bool cuda_graphs_built() { return false; }

#endif

}  // namespace rass::model
