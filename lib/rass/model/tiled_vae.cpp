#include "rass/model/tiled_vae.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/model/peak_memory.hpp"
#include "rass/nn/blocks.hpp"

namespace rass::model {

namespace {

using torch::indexing::Slice;

std::atomic<int64_t> g_band_bytes{int64_t(64) << 20};
std::atomic<int64_t> g_room_override{-1};  // set_tile_offload_room

// The room --vae-offload auto weighs a waiting tile against.
int64_t tile_room(const c10::Device& device) {
  const int64_t pretend = g_room_override.load();
  return pretend >= 0 ? pretend : device_room_bytes(device);
}

struct Span {
  int64_t core0, core1;  // the tile's own part of the axis
  int64_t in0, in1;      // with context: [core0 - pad, core1 + pad] within the axis
};

// Cores of about equal size, each a multiple of `align` except the last.
std::vector<Span> split_axis(int64_t len, int64_t tile, int64_t pad, int64_t align) {
  const int64_t n = std::max<int64_t>(1, (len + tile - 1) / tile);
  int64_t core = (len + n - 1) / n;
  core = (core + align - 1) / align * align;
  std::vector<Span> out;
  for (int64_t a = 0; a < len; a += core) {
    const int64_t b = std::min(len, a + core);
    out.push_back({a, b, std::max<int64_t>(0, a - pad), std::min(len, b + pad)});
  }
  return out;
}

// The shared part: per GroupNorm call (in order), the sums of all tiles.
class Rendezvous {
 public:
  explicit Rendezvous(size_t tiles) : tiles_(tiles), sums_(tiles) {}

  // Adds tile `tile`'s sums [B, G, 2] and count; waits for every tile; returns
  // the global [B, G, 2] (mean, var). The caller holds `lock` (the compute
  // lock) and gets it back: while it waits, another tile computes. The sums
  // are added in tile order, whatever order the tiles arrive in (the threads
  // race for the lock): the same bits from run to run.
  torch::Tensor exchange(std::unique_lock<std::mutex>& lock, size_t tile, const torch::Tensor& sums, double count) {
    if (failed_) throw_runtime("tiled VAE: another tile failed");
    sums_[tile] = sums;
    count_ += count;
    const uint64_t gen = generation_;
    if (++arrived_ == tiles_) {
      torch::Tensor acc = sums_[0];
      for (size_t i = 1; i < tiles_; ++i) acc = acc + sums_[i];
      const torch::Tensor mean = acc.select(2, 0) / count_;
      const torch::Tensor var = (acc.select(2, 1) / count_ - mean * mean).clamp_min(0);
      result_ = torch::stack({mean, var}, 2);
      for (torch::Tensor& s : sums_) s = torch::Tensor();
      count_ = 0;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen || failed_; });
      if (failed_) throw_runtime("tiled VAE: another tile failed");
    }
    return result_;
  }
  // Whether the caller (holding the compute lock) is the last to arrive at
  // this rendezvous: it does not wait.
  bool completes_round() const { return arrived_ + 1 == tiles_; }
  // How many tiles are still to arrive at this rendezvous after the caller.
  size_t to_come() const { return tiles_ - arrived_ - 1; }
  // A tile ended (normally or not): no more rendezvous from it.
  void fail() {
    failed_ = true;
    cv_.notify_all();
  }
  std::mutex compute;  // one tile computes at a time

 private:
  size_t tiles_, arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<torch::Tensor> sums_;  // per tile, this round
  torch::Tensor result_;
  double count_ = 0;
  bool failed_ = false;
  std::condition_variable cv_;
};

// Rows of `rows` at a time such that a band of one of them is at most the
// band size (at least one row).
int64_t band_rows(int64_t rows, int64_t row_bytes) {
  return std::clamp<int64_t>(tile_norm_band_bytes() / std::max<int64_t>(1, row_bytes), 1, std::max<int64_t>(1, rows));
}

// A waiting tile's tensors in host memory. Each tile holds its activations
// at a GroupNorm (the norm's input and a resnet's input kept for the skip)
// while it waits for the other tiles' statistics, so without this every
// tile's, the whole image's, are on the device at once. out() moves each
// storage those tensors cover whole (a view of something larger, such as
// the tile's slice of the input, stays) to host memory and frees the device
// copy; in() brings them back into the same storages, so every tensor and
// view of them is as before. The tile's thread is blocked in between, and
// nothing else holds its activations. On CUDA the copies are queued on the
// tile's stream, so freeing the device memory, reusing it for the next
// tile and copying back are ordered without a wait.
//
// The host buffers are the tile's for the whole pass: a round's copy out
// reuses the buffer the previous round's copy back read, ordered after it on
// the same stream. Fresh buffers each round piled up instead: the host
// queues rounds ahead of the device, LibTorch's pinned-memory cache cannot
// hand a buffer out again before its copy has run, and every new pinned
// buffer is page-locked (slowly) and kept for the process's life. On CUDA
// the buffers are pinned memory; on the CPU memory of their own outside
// LibTorch's allocator: no saving, but --timings' tensor count then shows
// what a device holds.
class Offload {
 public:
  // `always`: every time the tile waits; else when the device lacks room
  // for this tile's tensors beside the tiles still to come (--vae-offload auto).
  explicit Offload(bool always) : always_(always) {}

  // Moves `tensors` out (when it should); whether anything moved.
  bool out(const std::vector<const torch::Tensor*>& tensors, size_t to_come) {
    std::vector<c10::Storage> whole;
    int64_t held = 0;
    for (const torch::Tensor* t : tensors) {
      if (!t->defined()) continue;
      const c10::Storage& st = t->storage();
      const size_t n = st.nbytes();
      if (n == 0 || t->storage_offset() != 0 || size_t(t->numel()) * t->element_size() != n) continue;
      bool seen = false;
      for (const c10::Storage& w : whole) seen = seen || w.unsafeGetStorageImpl() == st.unsafeGetStorageImpl();
      if (seen) continue;
      whole.push_back(st);
      held += int64_t(n);
    }
    if (whole.empty()) return false;
    if (!always_ && tile_keeps_on_device(tile_room(whole[0].device()), held, to_come)) return false;
    for (const c10::Storage& st : whole) {
      const size_t n = st.nbytes();
      const c10::Device device = st.device();
      torch::Tensor host = spare(n, device);
      if (!host.defined()) continue;  // none to be had: this storage stays on the device
      host.narrow(0, 0, int64_t(n))
          .copy_(torch::from_blob(st.data_ptr().get(), {int64_t(n)}, torch::TensorOptions().dtype(torch::kByte).device(device)),
                 /*non_blocking=*/true);
      const c10::DataPtr freed = st.set_data_ptr(c10::DataPtr(nullptr, device));
      moved_.push_back({st, host, int64_t(n)});
    }
    return !moved_.empty();
  }
  void in() {
    for (Moved& m : moved_) {
      const c10::Device device = m.storage.device();
      torch::Tensor back = torch::empty({m.bytes}, m.host.options().pinned_memory(false).device(device));
      back.copy_(m.host.narrow(0, 0, m.bytes), /*non_blocking=*/true);
      m.storage.set_data_ptr(back.storage().set_data_ptr(c10::DataPtr(nullptr, device)));
      spares_.push_back(std::move(m.host));
    }
    moved_.clear();
  }

 private:
  // A host buffer of at least n bytes: the smallest spare that fits, else a
  // new one (undefined where pinned memory cannot be had: the host's
  // page-locking limit).
  torch::Tensor spare(size_t n, const c10::Device& device) {
    auto best = spares_.end();
    for (auto it = spares_.begin(); it != spares_.end(); ++it)
      if (size_t(it->numel()) >= n && (best == spares_.end() || it->numel() < best->numel())) best = it;
    if (best != spares_.end()) {
      torch::Tensor t = std::move(*best);
      spares_.erase(best);
      return t;
    }
    const auto bytes = torch::TensorOptions().dtype(torch::kByte);
    if (device.is_cpu()) {
      void* p = std::malloc(n);
      if (!p) throw_runtime("tiled VAE: out of host memory for a waiting tile (" + std::to_string(n) + " bytes)");
      return torch::from_blob(p, {int64_t(n)}, [](void* q) { std::free(q); }, bytes);
    }
    try {
      return torch::empty({int64_t(n)}, bytes.pinned_memory(true));
    } catch (const std::exception&) {
      return {};
    }
  }

  struct Moved {
    c10::Storage storage;
    torch::Tensor host;  // at least `bytes` long
    int64_t bytes;
  };
  bool always_;
  std::vector<Moved> moved_;
  std::vector<torch::Tensor> spares_;  // host buffers whose copy back is queued
};

// One tile's GroupNorm: statistics of its core region, normalised globally.
// Its temporaries are a band of rows at a time: the core in float64 and its
// square at once were 8x the bf16 tile, 4 GiB at the decoder's last level of
// a 2048 px image, on top of every waiting tile's activations.
class TileNorm : public nn::GroupNormHook {
 public:
  TileNorm(Rendezvous& r, std::unique_lock<std::mutex>& lock, size_t tile, const Span& y, const Span& x, Offload* offload)
      : r_(r), lock_(lock), tile_(tile), y_(y), x_(x), offload_(offload) {}
  torch::Tensor apply(const torch::nn::GroupNormImpl& gn, const torch::Tensor& in) override {
    const int64_t b = in.size(0), c = in.size(1), h = in.size(2), w = in.size(3);
    const int64_t g = gn.options.num_groups();
    // The core region at this layer's resolution (the tile input maps to h x w).
    auto scaled = [](int64_t v, int64_t from, int64_t to) { return v * to / from; };
    const int64_t in_h = y_.in1 - y_.in0, in_w = x_.in1 - x_.in0;
    const int64_t y0 = scaled(y_.core0 - y_.in0, in_h, h), y1 = scaled(y_.core1 - y_.in0, in_h, h);
    const int64_t x0 = scaled(x_.core0 - x_.in0, in_w, w), x1 = scaled(x_.core1 - x_.in0, in_w, w);
    const torch::Tensor core = in.index({Slice(), Slice(), Slice(y0, y1), Slice(x0, x1)});
    // Sums and sums of squares per (batch, group), in float64.
    torch::Tensor sums = torch::zeros({b, g, 2}, in.options().dtype(torch::kDouble));
    const auto contiguous_double = torch::TensorOptions().dtype(torch::kDouble).memory_format(torch::MemoryFormat::Contiguous);
    const int64_t stat_rows = band_rows(y1 - y0, b * c * (x1 - x0) * int64_t(sizeof(double)));
    for (int64_t r = y0; r < y1; r += stat_rows) {
      const torch::Tensor part =
          core.slice(2, r - y0, std::min(y1, r + stat_rows) - y0).to(contiguous_double).reshape({b, g, -1});
      sums += torch::stack({part.sum(2), part.square().sum(2)}, 2);
    }
    const double count = double(c / g * (y1 - y0) * (x1 - x0));
    // A tile that will wait leaves its activations in host memory meanwhile.
    bool away = false;
    if (offload_ && !r_.completes_round()) {
      std::vector<const torch::Tensor*> held = nn::kept_tensors();
      held.push_back(&in);
      away = offload_->out(held, r_.to_come());
    }
    const torch::Tensor stats = r_.exchange(lock_, tile_, sums, count);  // [B, G, 2] float64
    if (away) offload_->in();
    // y = x * scale + shift per (batch, channel), as LibTorch's own group
    // norm computes it: the affine folded in, float32, one rounding to x's dtype.
    const torch::Tensor rstd = (stats.select(2, 1) + gn.options.eps()).rsqrt();  // [B, G]
    torch::Tensor scale = rstd.repeat_interleave(c / g, 1), shift = -(stats.select(2, 0) * rstd).repeat_interleave(c / g, 1);
    if (gn.options.affine()) {
      scale = scale * gn.weight.to(torch::kDouble).view({1, c});
      shift = shift * gn.weight.to(torch::kDouble).view({1, c}) + gn.bias.to(torch::kDouble).view({1, c});
    }
    scale = scale.to(torch::kFloat).view({b, c, 1, 1});
    shift = shift.to(torch::kFloat).view({b, c, 1, 1});
    torch::Tensor out = torch::empty_like(in);  // x's dtype and layout
    const int64_t out_rows = band_rows(h, b * c * w * int64_t(sizeof(float)));
    for (int64_t r = 0; r < h; r += out_rows) {
      const int64_t e = std::min(h, r + out_rows);
      out.slice(2, r, e).copy_(torch::addcmul(shift, in.slice(2, r, e).to(torch::kFloat), scale));
    }
    return out;
  }

 private:
  Rendezvous& r_;
  std::unique_lock<std::mutex>& lock_;
  size_t tile_;
  Span y_, x_;
  Offload* offload_;
};

// Runs `net` over the tiles of x [1, C, H, W]; the output has `scale` output
// pixels per input pixel (1/8 encoder, 8 decoder).
torch::Tensor run_tiled(const torch::Tensor& x, int64_t tile, int64_t pad, int64_t align, double scale, TileOffload offload,
                        const std::function<torch::Tensor(const torch::Tensor&)>& net) {
  // auto: on a device (CUDA), or where a test pretends a device's room; each
  // waiting tile then asks whether it should go (Offload::out).
  const bool away = offload == TileOffload::on ||
                    (offload == TileOffload::automatic && (!x.is_cpu() || g_room_override.load() >= 0));
  const std::vector<Span> ys = split_axis(x.size(2), tile, pad, align), xs = split_axis(x.size(3), tile, pad, align);
  std::vector<std::pair<Span, Span>> tiles;
  for (const Span& y : ys)
    for (const Span& s : xs) tiles.emplace_back(y, s);
  Rendezvous r(tiles.size());
  std::vector<torch::Tensor> outs(tiles.size());
  // The first failure is the cause; the tiles waiting for it then fail with
  // "another tile failed" (rethrowing in tile order reported that instead
  // of an out-of-memory).
  std::exception_ptr first_error;
  std::mutex error_lock;
  const bool grad = torch::GradMode::is_enabled();
  const bool inference = c10::InferenceMode::is_enabled();
  // The tile threads queue their work on the caller's stream (a -j worker's
  // own CUDA stream): a new thread would otherwise use the default stream,
  // unordered with the caller's work on x and on the tiles' outputs.
  const std::optional<c10::Stream> stream =
      x.is_cpu() ? std::nullopt
                 : std::optional<c10::Stream>(c10::impl::getDeviceGuardImpl(x.device().type())->getStream(x.device()));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < tiles.size(); ++i)
    threads.emplace_back([&, i] {
      std::unique_lock<std::mutex> lock(r.compute);
      try {
        c10::InferenceMode im(inference);
        torch::AutoGradMode gm(grad);
        std::optional<c10::StreamGuard> on_callers_stream;
        if (stream) on_callers_stream.emplace(*stream);
        const auto& [y, s] = tiles[i];
        Offload held(offload == TileOffload::on);
        TileNorm norm(r, lock, i, y, s, away ? &held : nullptr);
        nn::GroupNormHookScope scope(&norm);
        const torch::Tensor out = net(x.index({Slice(), Slice(), Slice(y.in0, y.in1), Slice(s.in0, s.in1)}));
        auto o = [&](int64_t v) { return int64_t(double(v) * scale); };
        outs[i] = out.index({Slice(), Slice(), Slice(o(y.core0 - y.in0), o(y.core1 - y.in0)),
                             Slice(o(s.core0 - s.in0), o(s.core1 - s.in0))});
      } catch (...) {
        {
          const std::lock_guard<std::mutex> g(error_lock);
          if (!first_error) first_error = std::current_exception();
        }
        r.fail();
      }
    });
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  // Stitch rows of tiles.
  std::vector<torch::Tensor> rows;
  for (size_t yi = 0; yi < ys.size(); ++yi)
    rows.push_back(torch::cat(std::vector<torch::Tensor>(outs.begin() + yi * xs.size(), outs.begin() + (yi + 1) * xs.size()), 3));
  return torch::cat(rows, 2);
}

}  // namespace

bool tile_keeps_on_device(int64_t room, int64_t held, size_t to_come) {
  const int64_t margin = std::max(int64_t(1) << 30, 4 * held);
  return room >= 0 && room >= int64_t(to_come + 1) * held + margin;
}

void set_tile_offload_room(int64_t bytes) { g_room_override.store(bytes < 0 ? -1 : bytes); }

int64_t tile_norm_band_bytes() { return g_band_bytes.load(); }
void set_tile_norm_band_bytes(int64_t bytes) { g_band_bytes.store(std::max<int64_t>(1, bytes)); }

torch::Tensor tiled_encoder_forward(nn::AutoencoderKLImpl& vae, const torch::Tensor& x, int64_t tile, int64_t pad,
                                    bool force, TileOffload offload) {
  auto net = [&](const torch::Tensor& t) { return vae.encoder->forward(t); };
  if (!force && !vae_tiles_apply(std::max(x.size(2), x.size(3)), tile, pad)) return net(x);
  const int64_t factor = int64_t(1) << (vae.config.block_out_channels.size() - 1);
  if (x.size(2) % factor || x.size(3) % factor || pad % factor)
    throw_usage("tiled VAE encoder: image sides and pad must be multiples of " + std::to_string(factor));
  return run_tiled(x, tile, pad, factor, 1.0 / double(factor), offload, net);
}

torch::Tensor tiled_decoder_forward(nn::AutoencoderKLImpl& vae, const torch::Tensor& z, int64_t tile, int64_t pad,
                                    bool force, TileOffload offload) {
  auto net = [&](const torch::Tensor& t) { return vae.decoder->forward(t); };
  if (!force && !vae_tiles_apply(std::max(z.size(2), z.size(3)), tile, pad)) return net(z);
  const int64_t factor = int64_t(1) << (vae.config.block_out_channels.size() - 1);
  return run_tiled(z, tile, pad, 1, double(factor), offload, net);
}

void check_vae_tile_sizes(int64_t encoder_tile, int64_t decoder_tile) {
  if (encoder_tile < 64 || encoder_tile % 8 || decoder_tile < 8)
    throw_usage("--vae-tile ENC,DEC: the encoder tile must be a multiple of 8 of at least 64 px, the decoder tile at "
                "least 8 latent px");
}

TileOffload parse_tile_offload(const std::string& text) {
  if (text == "auto") return TileOffload::automatic;
  if (text == "on") return TileOffload::on;
  if (text == "off") return TileOffload::off;
  throw_usage("--vae-offload '" + text + "': expected auto, on or off");
}

nn::LatentDistribution tiled_encode(nn::AutoencoderKLImpl& vae, const torch::Tensor& x, const VaeTiling& t) {
  const torch::Tensor moments = vae.quant_conv->forward(tiled_encoder_forward(vae, x, t.encoder_tile, t.encoder_pad, false, t.offload));
  auto parts = moments.chunk(2, 1);
  nn::LatentDistribution d;  // as AutoencoderKL::encode
  d.mean = parts[0];
  d.logvar = parts[1].clamp(-30.0, 20.0);
  d.std = (0.5 * d.logvar).exp();
  return d;
}

torch::Tensor tiled_decode(nn::AutoencoderKLImpl& vae, const torch::Tensor& z, const VaeTiling& t) {
  return tiled_decoder_forward(vae, vae.post_quant_conv->forward(z), t.decoder_tile, t.decoder_pad, false, t.offload);
}

}  // namespace rass::model
