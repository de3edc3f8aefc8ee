#include "rass/model/cpu_tensor_bytes.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

namespace rass::model {

namespace {

// Wraps the allocator that was the CPU's. Each allocation's own DataPtr is
// kept in a table under its address, and the DataPtr handed out has that
// address as its context too, so raw_allocate/raw_deallocate (which need
// data == context) work as they did.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return counted(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return counted(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  CpuTensorBytes bytes() const {
    std::lock_guard<std::mutex> g(m_);
    return {now_, peak_};
  }
  int64_t take_peak() {  // the peak, and its reset, at one instant
    std::lock_guard<std::mutex> g(m_);
    const int64_t p = peak_;
    peak_ = now_;
    return p;
  }

  static CountingAllocator* instance;

 private:
  c10::DataPtr counted(size_t n) const {
    c10::DataPtr inner = inner_->allocate(n);
    void* p = inner.get();
    if (!p) return inner;  // zero bytes: nothing to count, and no address to key on
    const c10::Device device = inner.device();
    {
      std::lock_guard<std::mutex> g(m_);
      now_ += int64_t(n);
      peak_ = std::max(peak_, now_);
      live_.emplace(p, Entry{n, std::move(inner)});
    }
    return {p, p, &release, device};
  }
  static void release(void* p) {
    CountingAllocator& a = *instance;
    c10::DataPtr inner;  // freed after the lock is let go
    {
      std::lock_guard<std::mutex> g(a.m_);
      const auto it = a.live_.find(p);
      if (it == a.live_.end()) {
        // Allocated before the counter was installed, freed through
        // raw_deallocate, which looks the allocator up again (oneDNN does).
        if (const c10::DeleterFnPtr d = a.inner_->raw_deleter()) d(p);
        return;
      }
      a.now_ -= int64_t(it->second.bytes);
      inner = std::move(it->second.ptr);
      a.live_.erase(it);
    }
  }

  struct Entry {
    size_t bytes;
    c10::DataPtr ptr;
  };
  c10::Allocator* inner_;
  mutable std::mutex m_;
  mutable std::unordered_map<void*, Entry> live_;
  mutable int64_t now_ = 0, peak_ = 0;
};

CountingAllocator* CountingAllocator::instance = nullptr;
std::once_flag installed;

}  // namespace

void count_cpu_tensor_bytes() {
  std::call_once(installed, [] {
    // Never freed: tensors may outlive every other static.
    CountingAllocator::instance = new CountingAllocator(c10::GetCPUAllocator());
    // Priority: above the default's (0), so later registrations at the
    // default priority do not replace it.
    c10::SetCPUAllocator(CountingAllocator::instance, /*priority=*/1);
  });
}

bool cpu_tensor_bytes_counted() { return CountingAllocator::instance != nullptr; }

CpuTensorBytes cpu_tensor_bytes() {
  return CountingAllocator::instance ? CountingAllocator::instance->bytes() : CpuTensorBytes{};
}

void reset_cpu_tensor_peak() {
  take_cpu_tensor_peak();
}

int64_t take_cpu_tensor_peak() { return CountingAllocator::instance ? CountingAllocator::instance->take_peak() : -1; }

}  // namespace rass::model
