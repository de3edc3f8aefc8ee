#include "rass/model/cuda_graphs.hpp"

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include <ATen/ATen.h>

#ifdef RASS_TORCH_CUDA
#include <ATen/core/CachingHostAllocator.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
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

// After a failed capture: stop routing allocations to the pool. ATen's
// capture_end throws before it does this when the capture was invalidated
// (an operation that cannot be recorded), and the routing filter it leaves
// behind points into the destroyed CUDAGraph: every later allocation would
// call it. Where capture_end got past that point the calls find nothing to
// end and throw, which is ignored.
void end_pool_routing(c10::DeviceIndex dev, at::cuda::MempoolId_t pool) {
  try {
    c10::cuda::CUDACachingAllocator::endAllocateToPool(dev, pool);
  } catch (...) {
  }
  try {
    at::getHostAllocator(at::kCUDA)->end_allocate_to_pool(pool);
  } catch (...) {
  }
}

// ATen's CUDAGraph with what a failure and a concurrent capture need.
struct Graph : at::cuda::CUDAGraph {
  // After a failed capture. capture_begin marks the device's CUDA
  // generator as capturing, and only a capture_end that succeeds clears
  // the mark; left set, every later random draw on the device and every
  // replay throws ("Offset increment outside graph capture").
  void abandon() {
    for (auto& [state, increment] : captured_generator_states_) state->capturing_ = false;
  }
  // replay() makes the generators ready for the graph's random draws
  // first, which throws while another thread is capturing (the same mark);
  // a graph that draws none is launched without that step.
  void launch() {
    bool draws = false;
    for (const auto& [state, increment] : captured_generator_states_) draws = draws || increment != 0;
    if (draws) {
      std::lock_guard<std::mutex> lock(capture_mu);
      replay();
      return;
    }
    TORCH_CHECK(has_graph_exec_, "CUDA graph launched before its capture ended");
    c10::OptionalDeviceGuard guard(capture_stream_.device());
    AT_CUDA_CHECK(cudaGraphLaunch(graph_exec_, at::cuda::getCurrentCUDAStream()));
  }
};

}  // namespace

struct GraphCache::Impl {
  // The graphs replayed on one stream share one memory pool: each graph's
  // intermediate tensors live in the pool between replays, and graphs
  // replayed one after another on one stream can reuse each other's (a
  // pool per graph would hold the sum of their peaks, not the largest).
  // That is safe because a replay and the copies of its outputs are queued
  // under `use` before any other graph of the pool replays; an output left
  // in the pool would be overwritten by the next graph.
  struct Pool {
    at::cuda::MempoolId_t id;
    std::mutex use;  // capture, or copy in - replay - clone out
  };
  struct Entry {
    std::vector<at::Tensor> in, out;  // the graph's own buffers
    std::unique_ptr<Graph> graph;
    std::shared_ptr<Pool> pool;
  };
  std::mutex mu;  // guards the maps
  std::map<std::string, std::shared_ptr<Entry>> entries;
  std::map<std::pair<int, int64_t>, std::shared_ptr<Pool>> pools;  // by (device, stream id)
  std::map<int, cudaStream_t> capture_streams;                      // by device
  std::set<std::string> eager;                                      // keys whose capture failed
  std::atomic<size_t> replays{0};
  std::atomic<bool> warned_full{false};

  ~Impl() {
    entries.clear();  // the graphs first: their pools are released with them
    for (auto& [dev, s] : capture_streams) {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
  }

  std::shared_ptr<Pool> pool_for(c10::cuda::CUDAStream s) {
    std::lock_guard<std::mutex> lock(mu);
    std::shared_ptr<Pool>& p = pools[{s.device_index(), s.id()}];
    if (!p) {
      p = std::make_shared<Pool>();
      p->id = at::cuda::graph_pool_handle();
    }
    return p;
  }

  // Captures run on a stream of the cache's own: captures cannot use the
  // legacy default stream, and on a worker's stream (from PyTorch's pool of
  // 32, which more workers share) another thread's kernels would be
  // recorded into the graph.
  c10::cuda::CUDAStream capture_stream(c10::DeviceIndex dev) {
    std::lock_guard<std::mutex> lock(mu);
    cudaStream_t& s = capture_streams[dev];
    if (!s) {
      c10::cuda::CUDAGuard guard(dev);
      C10_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    }
    return c10::cuda::getStreamFromExternal(s, dev);
  }

  // Records f for inputs shaped like `inputs` into `pool` (the caller holds
  // its lock): two warm-up calls, then the capture, all on the capture
  // stream, ordered after the current stream's work and before its next.
  // Throws if f cannot be recorded.
  std::shared_ptr<Entry> record(const std::vector<at::Tensor>& inputs, const Fn& f, c10::cuda::CUDAStream current,
                                const std::shared_ptr<Pool>& pool) {
    auto fresh = std::make_shared<Entry>();
    fresh->pool = pool;
    for (const at::Tensor& t : inputs) fresh->in.push_back(t.clone());
    std::lock_guard<std::mutex> capture_lock(capture_mu);
    const c10::DeviceIndex dev = current.device_index();
    const c10::cuda::CUDAStream rec = capture_stream(dev);
    at::cuda::CUDAEvent before;
    before.record(current);
    before.block(rec);
    // Whatever happens, the current stream then waits for the capture
    // stream: the input copies, made on the current stream and freed there
    // when a capture fails, are read by the warm-ups on the capture stream.
    struct Join {
      c10::cuda::CUDAStream rec, current;
      ~Join() {
        try {
          at::cuda::CUDAEvent after;
          after.record(rec);
          after.block(current);
        } catch (...) {  // a CUDA error here shows again on the next call
        }
      }
    } join{rec, current};
    c10::cuda::CUDAStreamGuard guard(rec);
    // The warm-up calls run where the capture will (cuBLAS workspaces and
    // cuDNN's autotuning belong to that stream) and leave lazily created
    // state (handles, kernels, algorithms) behind them.
    for (int warm = 0; warm < 2; ++warm) f(fresh->in);
    fresh->graph = std::make_unique<Graph>();
    try {
      fresh->graph->capture_begin(pool->id, cudaStreamCaptureModeThreadLocal);
      fresh->out = f(fresh->in);
      fresh->graph->capture_end();
    } catch (...) {
      try {  // ends the stream's capture if it is still on
        fresh->graph->capture_end();
      } catch (...) {
      }
      end_pool_routing(dev, pool->id);
      fresh->graph->abandon();
      // A graph that got as far as ending its capture gives its share of
      // the pool back when destroyed; if it was the pool's only graph the
      // pool is then released and cannot be captured into again.
      pool->id = at::cuda::graph_pool_handle();
      throw;
    }
    // The warm-ups' tensors are cached for the capture stream, which only
    // captures use: give them back to the device.
    c10::cuda::CUDACachingAllocator::emptyCache();
    return fresh;
  }

  // The graph recorded for `k` on this stream, recording it now if it is
  // not; null if it cannot be (that is noted once, and `k` runs eagerly).
  std::shared_ptr<Entry> record_once(const std::string& k, const std::string& key,
                                     const std::vector<at::Tensor>& inputs, const Fn& f,
                                     c10::cuda::CUDAStream current) {
    const std::shared_ptr<Pool> pool = pool_for(current);
    std::lock_guard<std::mutex> use(pool->use);
    {  // another thread on this stream may have recorded it meanwhile
      std::lock_guard<std::mutex> lock(mu);
      if (eager.count(k)) return nullptr;
      auto it = entries.find(k);
      if (it != entries.end()) return it->second;
    }
    try {
      std::shared_ptr<Entry> e = record(inputs, f, current, pool);
      std::lock_guard<std::mutex> lock(mu);
      entries[k] = e;
      return e;
    } catch (const std::exception& ex) {
      std::string what = ex.what();
      if (const size_t nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
      std::fprintf(stderr, "rass: --cuda-graphs: could not record %s (%s); it runs without a graph\n", key.c_str(),
                   what.c_str());
      std::lock_guard<std::mutex> lock(mu);
      eager.insert(k);
      return nullptr;
    }
  }

  // Copy in, replay, clone out, queued under the pool's lock: the next
  // graph of the pool may overwrite this one's outputs.
  std::vector<at::Tensor> replay(Entry& e, const std::vector<at::Tensor>& inputs) {
    std::lock_guard<std::mutex> use(e.pool->use);
    for (size_t i = 0; i < inputs.size(); ++i) e.in[i].copy_(inputs[i], /*non_blocking=*/true);
    e.graph->launch();
    ++replays;
    std::vector<at::Tensor> out;
    for (const at::Tensor& t : e.out) out.push_back(t.defined() ? t.clone() : t);
    return out;
  }
};

GraphCache::GraphCache(bool on) : on_(on), impl_(std::make_unique<Impl>()) {}
GraphCache::~GraphCache() = default;

std::vector<at::Tensor> GraphCache::run(const std::string& key, const std::vector<at::Tensor>& inputs, const Fn& f) const {
  if (!on_ || inputs.empty() || !inputs[0].is_cuda()) return f(inputs);
  const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(inputs[0].device().index());
  const std::string k = full_key(key, inputs, current);
  std::shared_ptr<Impl::Entry> e;
  bool eager = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->eager.count(k)) eager = true;
    else if (auto it = impl_->entries.find(k); it != impl_->entries.end()) e = it->second;
    else if (impl_->entries.size() >= kMaxGraphs) {
      eager = true;
      if (!impl_->warned_full.exchange(true))
        std::fprintf(stderr, "rass: --cuda-graphs: %zu graphs recorded; further input shapes run without one\n", kMaxGraphs);
    }
  }
  if (!eager && !e) e = impl_->record_once(k, key, inputs, f, current);
  if (!e) return f(inputs);  // outside every lock: f may take long
  return impl_->replay(*e, inputs);
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
