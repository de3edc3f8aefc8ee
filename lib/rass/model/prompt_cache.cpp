#include "rass/model/prompt_cache.hpp"

#include <c10/core/impl/DeviceGuardImplInterface.h>

namespace rass::model {

namespace {

// The calling thread's stream on `device` (0 on the CPU, which has one).
int64_t stream_key(c10::Device device) {
  if (device.is_cpu()) return 0;
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device.type());
  const c10::Stream s = impl->getStream(device.has_index() ? device : c10::Device(device.type(), impl->getDevice().index()));
  // Device and stream: one cache may serve several devices' streams.
  return (int64_t(s.device_index()) << 48) ^ s.id();
}

}  // namespace

at::Tensor PromptCache::get(const std::string& prompt, c10::Device device, const std::function<at::Tensor()>& encode) const {
  const std::pair<int64_t, std::string> key{stream_key(device), prompt};
  std::promise<at::Tensor> made;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      ++hits_;
      std::shared_future<at::Tensor> f = it->second;
      lock.unlock();
      return f.get();  // waits while another thread encodes it
    }
    if (entries_.size() >= kMaxEntries) {
      lock.unlock();
      return encode();  // full: not kept
    }
    entries_.emplace(key, made.get_future().share());
  }
  try {
    at::Tensor t = encode();
    made.set_value(t);
    return t;
  } catch (...) {
    made.set_exception(std::current_exception());
    std::lock_guard<std::mutex> lock(mu_);
    entries_.erase(key);
    throw;
  }
}

size_t PromptCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

size_t PromptCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace rass::model
