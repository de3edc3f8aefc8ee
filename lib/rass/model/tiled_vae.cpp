#include "rass/model/tiled_vae.hpp"

#include <algorithm>
#include <condition_variable>
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
#include "rass/nn/blocks.hpp"

namespace rass::model {

namespace {

using torch::indexing::Slice;

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
  explicit Rendezvous(size_t tiles) : tiles_(tiles) {}

  // Adds sums [B, G, 2] and count; waits for every tile; returns the global
  // [B, G, 2] (mean, var). The caller holds `lock` (the compute lock) and gets
  // it back: while it waits, another tile computes.
  torch::Tensor exchange(std::unique_lock<std::mutex>& lock, const torch::Tensor& sums, double count) {
    if (failed_) throw_runtime("tiled VAE: another tile failed");
    acc_ = acc_.defined() ? acc_ + sums : sums.clone();
    count_ += count;
    const uint64_t gen = generation_;
    if (++arrived_ == tiles_) {
      const torch::Tensor mean = acc_.select(2, 0) / count_;
      const torch::Tensor var = (acc_.select(2, 1) / count_ - mean * mean).clamp_min(0);
      result_ = torch::stack({mean, var}, 2);
      acc_ = torch::Tensor();
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
  // A tile ended (normally or not): no more rendezvous from it.
  void fail() {
    failed_ = true;
    cv_.notify_all();
  }
  std::mutex compute;  // one tile computes at a time

 private:
  size_t tiles_, arrived_ = 0;
  uint64_t generation_ = 0;
  torch::Tensor acc_, result_;
  double count_ = 0;
  bool failed_ = false;
  std::condition_variable cv_;
};

// One tile's GroupNorm: statistics of its core region, normalised globally.
class TileNorm : public nn::GroupNormHook {
 public:
  TileNorm(Rendezvous& r, std::unique_lock<std::mutex>& lock, const Span& y, const Span& x)
      : r_(r), lock_(lock), y_(y), x_(x) {}
  torch::Tensor apply(const torch::nn::GroupNormImpl& gn, const torch::Tensor& in) override {
    const int64_t b = in.size(0), c = in.size(1), h = in.size(2), w = in.size(3);
    const int64_t g = gn.options.num_groups();
    // The core region at this layer's resolution (the tile input maps to h x w).
    auto scaled = [](int64_t v, int64_t from, int64_t to) { return v * to / from; };
    const int64_t in_h = y_.in1 - y_.in0, in_w = x_.in1 - x_.in0;
    const int64_t y0 = scaled(y_.core0 - y_.in0, in_h, h), y1 = scaled(y_.core1 - y_.in0, in_h, h);
    const int64_t x0 = scaled(x_.core0 - x_.in0, in_w, w), x1 = scaled(x_.core1 - x_.in0, in_w, w);
    const torch::Tensor core = in.index({Slice(), Slice(), Slice(y0, y1), Slice(x0, x1)}).to(torch::kDouble).reshape({b, g, -1});
    const torch::Tensor sums = torch::stack({core.sum(2), (core * core).sum(2)}, 2);
    const double count = double(core.size(2));
    const torch::Tensor stats = r_.exchange(lock_, sums, count).to(in.scalar_type());  // [B, G, 2]
    const torch::Tensor mean = stats.select(2, 0).unsqueeze(2), var = stats.select(2, 1).unsqueeze(2);
    torch::Tensor out = ((in.reshape({b, g, -1}) - mean) / (var + gn.options.eps()).sqrt()).reshape({b, c, h, w});
    if (gn.options.affine()) out = out * gn.weight.view({1, c, 1, 1}) + gn.bias.view({1, c, 1, 1});
    return out;
  }

 private:
  Rendezvous& r_;
  std::unique_lock<std::mutex>& lock_;
  Span y_, x_;
};

// Runs `net` over the tiles of x [1, C, H, W]; the output has `scale` output
// pixels per input pixel (1/8 encoder, 8 decoder).
torch::Tensor run_tiled(const torch::Tensor& x, int64_t tile, int64_t pad, int64_t align, double scale,
                        const std::function<torch::Tensor(const torch::Tensor&)>& net) {
  const std::vector<Span> ys = split_axis(x.size(2), tile, pad, align), xs = split_axis(x.size(3), tile, pad, align);
  std::vector<std::pair<Span, Span>> tiles;
  for (const Span& y : ys)
    for (const Span& s : xs) tiles.emplace_back(y, s);
  Rendezvous r(tiles.size());
  std::vector<torch::Tensor> outs(tiles.size());
  std::vector<std::exception_ptr> errors(tiles.size());
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
        TileNorm norm(r, lock, y, s);
        nn::GroupNormHookScope scope(&norm);
        const torch::Tensor out = net(x.index({Slice(), Slice(), Slice(y.in0, y.in1), Slice(s.in0, s.in1)}));
        auto o = [&](int64_t v) { return int64_t(double(v) * scale); };
        outs[i] = out.index({Slice(), Slice(), Slice(o(y.core0 - y.in0), o(y.core1 - y.in0)),
                             Slice(o(s.core0 - s.in0), o(s.core1 - s.in0))});
      } catch (...) {
        errors[i] = std::current_exception();
        r.fail();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  // Stitch rows of tiles.
  std::vector<torch::Tensor> rows;
  for (size_t yi = 0; yi < ys.size(); ++yi)
    rows.push_back(torch::cat(std::vector<torch::Tensor>(outs.begin() + yi * xs.size(), outs.begin() + (yi + 1) * xs.size()), 3));
  return torch::cat(rows, 2);
}

}  // namespace

torch::Tensor tiled_encoder_forward(nn::AutoencoderKLImpl& vae, const torch::Tensor& x, int64_t tile, int64_t pad,
                                    bool force) {
  auto net = [&](const torch::Tensor& t) { return vae.encoder->forward(t); };
  if (!force && !vae_tiles_apply(std::max(x.size(2), x.size(3)), tile, pad)) return net(x);
  const int64_t factor = int64_t(1) << (vae.config.block_out_channels.size() - 1);
  if (x.size(2) % factor || x.size(3) % factor || pad % factor)
    throw_usage("tiled VAE encoder: image sides and pad must be multiples of " + std::to_string(factor));
  return run_tiled(x, tile, pad, factor, 1.0 / double(factor), net);
}

torch::Tensor tiled_decoder_forward(nn::AutoencoderKLImpl& vae, const torch::Tensor& z, int64_t tile, int64_t pad,
                                    bool force) {
  auto net = [&](const torch::Tensor& t) { return vae.decoder->forward(t); };
  if (!force && !vae_tiles_apply(std::max(z.size(2), z.size(3)), tile, pad)) return net(z);
  const int64_t factor = int64_t(1) << (vae.config.block_out_channels.size() - 1);
  return run_tiled(z, tile, pad, 1, double(factor), net);
}

nn::LatentDistribution tiled_encode(nn::AutoencoderKLImpl& vae, const torch::Tensor& x, const VaeTiling& t) {
  const torch::Tensor moments = vae.quant_conv->forward(tiled_encoder_forward(vae, x, t.encoder_tile, t.encoder_pad));
  auto parts = moments.chunk(2, 1);
  nn::LatentDistribution d;  // as AutoencoderKL::encode
  d.mean = parts[0];
  d.logvar = parts[1].clamp(-30.0, 20.0);
  d.std = (0.5 * d.logvar).exp();
  return d;
}

torch::Tensor tiled_decode(nn::AutoencoderKLImpl& vae, const torch::Tensor& z, const VaeTiling& t) {
  return tiled_decoder_forward(vae, vae.post_quant_conv->forward(z), t.decoder_tile, t.decoder_pad);
}

}  // namespace rass::model
