#include "rass/model/segment.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/degrade/pil_resize.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/device.hpp"
#include "rass/model/restore.hpp"
#include "rass/model/restore_size.hpp"

namespace F = torch::nn::functional;
using torch::indexing::Slice;

namespace rass::model {

std::pair<int, int> shortest_edge_size(int w, int h, int short_edge, int max_size) {
  // detectron2 ResizeShortestEdge.get_output_shape, in Python floats (double).
  const double scale = double(short_edge) / std::min(h, w);
  double nh, nw;
  if (h < w) {
    nh = short_edge;
    nw = scale * w;
  } else {
    nh = scale * h;
    nw = short_edge;
  }
  if (std::max(nh, nw) > max_size) {
    const double s = double(max_size) / std::max(nh, nw);
    nh *= s;
    nw *= s;
  }
  return {int(nw + 0.5), int(nh + 0.5)};
}

SegmentGeometry segment_geometry(int width, int height, const SegmentFolderConfig& c, const SegmentParams& p,
                                 const std::string& name) {
  SegmentGeometry g;
  if (p.resize) std::tie(g.proc_w, g.proc_h) = shortest_edge_size(width, height, c.min_size_test, c.max_size_test);
  else g.proc_w = width, g.proc_h = height;
  // An extreme aspect ratio (60000x3): the long side capped at max_size_test
  // leaves the short side under half a pixel, which rounds to 0.
  if (g.proc_w < 1 || g.proc_h < 1)
    throw_bad_input(name, "image " + std::to_string(width) + "x" + std::to_string(height) + ": the shortest-edge resize (" +
                              std::to_string(c.min_size_test) + ", long side at most " + std::to_string(c.max_size_test) +
                              ") leaves it " + std::to_string(g.proc_w) + "x" + std::to_string(g.proc_h) +
                              " pixels; crop it or use --no-resize");
  const int d = c.size_divisibility;
  g.pad_w = (g.proc_w + d - 1) / d * d;
  g.pad_h = (g.proc_h + d - 1) / d * d;
  // A padded side under the coarsest feature stride would give empty feature
  // maps (the released code fails there: a 3x2000 image, a small image with
  // --no-resize); padding it up to that stride (with -1, cropped off
  // afterwards like the rest of the padding) segments it instead. Sizes the
  // released code handles are not changed.
  const int coarse = c.coarsest_stride();
  g.pad_w = std::max(g.pad_w, (coarse + d - 1) / d * d);
  g.pad_h = std::max(g.pad_h, (coarse + d - 1) / d * d);
  if (p.whole) {
    g.crop_w = g.pad_w;
    g.crop_h = g.pad_h;
    g.tiles.push_back({0, 0});
    return g;
  }
  // As released, the window is the padded short side (512 after the resize).
  // At native resolution (--no-resize) it is at most min_size_test (512):
  // the UNet's self-attention grows with the square of the window's area
  // (a 1024 window already takes GBs), so the window is what bounds memory.
  int side = std::min(g.pad_w, g.pad_h);
  if (!p.resize) side = std::min(side, c.min_size_test);
  if (p.window > 0) side = p.window;
  // Several windows need a side that is a multiple of the coarsest feature
  // stride, so that every crop's feature maps tile the whole maps exactly
  // (offsets floor-divided by the stride). The released inference always has
  // one at 512; where its short side is not (native resolution, extreme
  // aspect ratios) the released code fails on mismatched shapes, so the
  // default side is rounded down to a multiple of the stride there.
  if (std::max(g.pad_w, g.pad_h) > side && side % coarse) {
    if (p.window > 0) throw_usage("--window " + std::to_string(p.window) + ": a multiple of " + std::to_string(coarse) +
                                  " (the coarsest feature stride) when the image needs several windows");
    side = std::max(coarse, side / coarse * coarse);
  }
  g.crop_h = std::min(side, g.pad_h);
  g.crop_w = std::min(side, g.pad_w);
  // FeatureProjection.slide_forward: stride = crop, last tile moved back to the edge.
  const int hg = std::max(g.pad_h - g.crop_h + g.crop_h - 1, 0) / g.crop_h + 1;
  const int wg = std::max(g.pad_w - g.crop_w + g.crop_w - 1, 0) / g.crop_w + 1;
  for (int i = 0; i < hg; ++i)
    for (int j = 0; j < wg; ++j) {
      const int y2 = std::min(i * g.crop_h + g.crop_h, g.pad_h), x2 = std::min(j * g.crop_w + g.crop_w, g.pad_w);
      g.tiles.push_back({std::max(y2 - g.crop_h, 0), std::max(x2 - g.crop_w, 0)});
    }
  return g;
}

torch::Tensor bilinear_rows(const std::function<torch::Tensor(int64_t, int64_t)>& rows, int64_t hs, int64_t ws,
                            int64_t ht, int64_t wt, int64_t y0, int64_t y1) {
  // ATen's upsample_bilinear2d (CPU, align_corners false, no scale given):
  // scale = in / out in float; src = scale * (dst + 0.5) - 0.5, clamped at 0;
  // h0 = floor(src), h1 = h0 + (h0 < in - 1); l1 = src - h0, l0 = 1 - l1;
  // out = l0 * (the row h0 resized along w) + l1 * (row h1 resized along w).
  const float scale = float(hs) / float(ht);
  auto src_of = [&](int64_t y) {
    float s = scale * (float(y) + 0.5f) - 0.5f;
    return s < 0 ? 0.f : s;
  };
  const int64_t a = int64_t(src_of(y0));
  const int64_t last = int64_t(src_of(y1 - 1));
  const int64_t b = std::min(last + 1, hs - 1) + 1;
  torch::Tensor src = rows(a, b).to(torch::kFloat).unsqueeze(0);  // [1, C, b - a, ws]
  // Along w only: a height-preserving interpolate has scale 1, so its rows are copied exactly.
  if (ws != wt)
    src = F::interpolate(src, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{src.size(2), wt})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
  src = src.squeeze(0);  // [C, b - a, wt]
  if (hs == ht) return src.index({Slice(), Slice(y0 - a, y1 - a)}).contiguous();
  std::vector<int64_t> i0, i1;
  std::vector<float> l0, l1;
  for (int64_t y = y0; y < y1; ++y) {
    const float s = src_of(y);
    const int64_t h0 = int64_t(s);
    const int64_t h1 = h0 + (h0 < hs - 1 ? 1 : 0);
    const float lam = s - float(h0);
    i0.push_back(h0 - a);
    i1.push_back(h1 - a);
    l1.push_back(lam);
    l0.push_back(1.f - lam);
  }
  const int64_t n = y1 - y0;
  // Sent up without a wait (host_to_device): this runs once or twice per band.
  auto up = [&](const torch::Tensor& t) { return host_to_device(t, src.device(), t.scalar_type()); };
  const torch::Tensor r0 = src.index_select(1, up(torch::tensor(i0, torch::kLong)));
  const torch::Tensor r1 = src.index_select(1, up(torch::tensor(i1, torch::kLong)));
  const torch::Tensor w0 = up(torch::tensor(l0, torch::kFloat)).view({1, n, 1});
  const torch::Tensor w1 = up(torch::tensor(l1, torch::kFloat)).view({1, n, 1});
  return w0 * r0 + w1 * r1;
}

namespace {

// One image between its crops and its head.
struct Pending {
  SegmentResult r;
  SegmentGeometry g;
  torch::Tensor x;                          // [1, 3, Hp, Wp] in [-1, 1], padded with -1
  std::vector<torch::Tensor> acc, counts;  // per feature level: summed features, windows per cell
};

// One window of one image for the backbone.
struct CropJob {
  size_t image = 0;
  int y1 = 0, x1 = 0;
  torch::Tensor crop, noise, latent;  // [1, ...] each; noise or latent may be undefined
};

// Steps 1-3's preparation: geometry, checks, the padded input and one job per
// window (the sample's noise drawn here, in window order, as one image alone).
Pending prepare(const SegmentModel& m, const SegmentInput& in, size_t index, std::vector<CropJob>& jobs) {
  const Image& rgb = *in.rgb;
  const SegmentParams& p = in.params;
  const std::string& name = in.name;
  Pending pd;
  SegmentResult& r = pd.r;
  r.in_width = rgb.width;
  r.in_height = rgb.height;
  const SegmentGeometry g = segment_geometry(rgb.width, rgb.height, m.config, p, name);
  pd.g = g;
  r.proc_width = g.proc_w;
  r.proc_height = g.proc_h;
  r.pad_width = g.pad_w;
  r.pad_height = g.pad_h;
  r.window_h = g.crop_h;
  r.window_w = g.crop_w;
  r.tiles = int(g.tiles.size());
  if (g.crop_w % m.vae_factor || g.crop_h % m.vae_factor)
    throw_usage("--window " + std::to_string(p.window) + ": crops must be multiples of " + std::to_string(m.vae_factor) +
                " (the VAE's factor)");

  const Image proc = (g.proc_w == rgb.width && g.proc_h == rgb.height) ? rgb : pil_resize(rgb, g.proc_w, g.proc_h, PilFilter::bilinear);
  // x/255*2-1 after a zero pad (detectron2's ImageList pads the 0..255 tensor with 0).
  torch::Tensor x = image_to_tensor(proc) * 2 - 1;
  pd.x = F::pad(x, F::PadFuncOptions({0, g.pad_w - g.proc_w, 0, g.pad_h - g.proc_h}).value(-1.0));

  const int64_t lh = g.pad_h / m.vae_factor, lw = g.pad_w / m.vae_factor;
  const int64_t zc = m.vae->config.latent_channels;
  if (p.latent.defined() && (p.latent.dim() != 3 || p.latent.size(0) != zc || p.latent.size(1) != lh || p.latent.size(2) != lw)) {
    std::string shape;
    for (int64_t s : p.latent.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(s);
    throw_bad_input(p.latent_name, "latent of shape [" + shape + "]; " + name + " is processed at " + std::to_string(g.pad_w) + "x" +
                                       std::to_string(g.pad_h) + " (padded), which needs [" + std::to_string(zc) + ", " +
                                       std::to_string(lh) + ", " + std::to_string(lw) + "]" +
                                       (p.resize ? " (with --no-resize the image is not resized first)" : ""));
  }
  if (p.latent.defined() && !torch::isfinite(p.latent).all().item<bool>())
    throw_bad_input(p.latent_name, "the latent holds NaN or infinite values");

  torch::Generator gen;
  if (!p.vae_mode) gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(p.seed, p.key, "vae-sample"));
  const int64_t f = m.vae_factor;
  for (const auto& [y1, x1] : g.tiles) {
    CropJob job;
    job.image = index;
    job.y1 = y1;
    job.x1 = x1;
    job.crop = pd.x.index({Slice(), Slice(), Slice(y1, y1 + g.crop_h), Slice(x1, x1 + g.crop_w)});
    if (p.latent.defined())
      job.latent = p.latent.index({Slice(), Slice(y1 / f, (y1 + g.crop_h) / f), Slice(x1 / f, (x1 + g.crop_w) / f)}).unsqueeze(0);
    else if (!p.vae_mode)
      job.noise = at::randn({1, zc, g.crop_h / f, g.crop_w / f}, gen, torch::TensorOptions().dtype(torch::kFloat));
    jobs.push_back(std::move(job));
  }
  return pd;
}

// Adds one window's features (batch row `row` of feats) to its image's maps.
// The window counts are kept on the host (they follow from the shapes
// alone), so checking coverage makes no one wait for the device.
void accumulate(Pending& pd, const std::vector<nn::ProjectionLevel>& levels, const CropJob& job,
                const std::vector<torch::Tensor>& feats, int64_t row) {
  const SegmentGeometry& g = pd.g;
  for (size_t k = 0; k < levels.size(); ++k) {
    const int64_t s = levels[k].stride;
    const torch::Tensor fk = feats[k].narrow(0, row, 1);
    if (pd.acc.size() <= k) {
      pd.acc.push_back(torch::zeros({1, fk.size(1), g.pad_h / s, g.pad_w / s}, fk.options()));
      pd.counts.push_back(torch::zeros({1, 1, g.pad_h / s, g.pad_w / s}, torch::kFloat));
    }
    // Offsets floor-divided by the stride, as released. Where a crop's
    // feature map would run past the whole map (crops that are not
    // multiples of the stride; the released code fails there), it is cut.
    const int64_t ky = job.y1 / s, kx = job.x1 / s;
    const int64_t nh = std::min(fk.size(2), pd.acc[k].size(2) - ky), nw = std::min(fk.size(3), pd.acc[k].size(3) - kx);
    pd.acc[k].index({Slice(), Slice(), Slice(ky, ky + nh), Slice(kx, kx + nw)})
        .add_(fk.index({Slice(), Slice(), Slice(0, nh), Slice(0, nw)}));
    pd.counts[k].index({Slice(), Slice(), Slice(ky, ky + nh), Slice(kx, kx + nw)}).add_(1);
  }
}

// Step 4, first half: the summed window features become averages (every
// cell of every level must have been covered; checked on the host).
void average(const SegmentModel& m, Pending& pd, const std::string& name) {
  const auto& levels = m.heads->projection->levels;
  for (size_t k = 0; k < pd.acc.size(); ++k)
    if ((pd.counts[k] == 0).any().item<bool>())
      throw_runtime(name + ": the sliding window left part of " + levels[k].name + " uncovered");
  if (pd.g.tiles.size() > 1)
    for (size_t k = 0; k < pd.acc.size(); ++k) pd.acc[k].div_(host_to_device(pd.counts[k], pd.acc[k].device(), pd.acc[k].scalar_type()));
  pd.counts.clear();
}

// Step 4, second half: one image's head outputs (logits [1, Q, K+1], masks
// [Q, h4, w4]) to its label map, probabilities and scores, in bands of rows.
// The maps stay on the model's device: the label map (and the
// probabilities) are left there for `finish` to bring over with the other
// images' in one wait; kept scores (up to [150, H, W]) come over band by band.
struct Posted {
  SegmentResult r;       // sizes; labels and probs on the device, scores on the host
  torch::Tensor finite;  // [] bool on the device: the head's outputs were finite
};

Posted post(Pending& pd, const SegmentInput& in, const torch::Tensor& logits_in, const torch::Tensor& masks_in) {
  const Image& rgb = *in.rgb;
  const SegmentParams& p = in.params;
  const SegmentGeometry& g = pd.g;
  Posted out;
  SegmentResult& r = out.r;
  r = std::move(pd.r);
  pd.acc.clear();
  const torch::Tensor logits = logits_in.to(torch::kFloat);  // [1, Q, K+1]
  const torch::Tensor masks = masks_in.to(torch::kFloat);    // [Q, h4, w4]
  out.finite = torch::isfinite(logits).all() & torch::isfinite(masks).all();
  const int64_t K = logits.size(2) - 1, Q = masks.size(0);

  // Scores rows [a, b) of the padded-size map, cropped to the resized width.
  auto padded_scores = [&](int64_t a, int64_t b) {
    const torch::Tensor up = bilinear_rows([&](int64_t i, int64_t j) { return masks.index({Slice(), Slice(i, j)}); },
                                           masks.size(1), masks.size(2), g.pad_h, g.pad_w, a, b);
    const torch::Tensor s = nn::semantic_inference(logits, up.unsqueeze(0))[0];
    return s.index({Slice(), Slice(), Slice(0, g.proc_w)});
  };
  const bool same = g.proc_w == rgb.width && g.proc_h == rgb.height;
  const int64_t H = rgb.height, W = rgb.width;
  const auto on_device = torch::TensorOptions().device(masks.device());
  r.labels = torch::empty({H, W}, on_device.dtype(torch::kInt));
  if (p.keep_probs) r.probs = torch::empty({H, W}, on_device.dtype(torch::kFloat));
  if (p.keep_scores) r.scores = torch::empty({K, H, W}, torch::kFloat);
  const int64_t widest = std::max<int64_t>({Q, K, 1}) * std::max<int64_t>(g.pad_w, W);
  const int64_t band = std::max<int64_t>(8, p.band_elements / widest);
  for (int64_t y0 = 0; y0 < H; y0 += band) {
    const int64_t y1 = std::min(H, y0 + band);
    // sem_seg_postprocess: crop to the resized size, bilinear to the original.
    const torch::Tensor s = same ? padded_scores(y0, y1)
                                 : bilinear_rows(padded_scores, g.proc_h, g.proc_w, H, W, y0, y1);
    const auto mx = s.max(0);
    r.labels.index_put_({Slice(y0, y1)}, std::get<1>(mx).to(torch::kInt));
    if (p.keep_probs) r.probs.index_put_({Slice(y0, y1)}, std::get<0>(mx) / s.sum(0));
    if (p.keep_scores) r.scores.index_put_({Slice(), Slice(y0, y1)}, s.to(torch::kCPU));
  }
  return out;
}

// The posted images' label maps (and probabilities) to the host in one wait;
// an image whose head outputs were not finite fails.
void finish(const SegmentModel& m, std::vector<Posted>& posted, const std::vector<size_t>& images,
            const std::vector<SegmentInput>& inputs, std::vector<SegmentResult>& results,
            std::vector<std::exception_ptr>& errors) {
  std::vector<torch::Tensor> device;
  for (const Posted& q : posted) {
    device.push_back(q.finite);
    device.push_back(q.r.labels);
    device.push_back(q.r.probs);
  }
  const std::vector<torch::Tensor> host = device_to_host(device);
  for (size_t n = 0; n < posted.size(); ++n) {
    const size_t i = images[n];
    if (!host[3 * n].item<bool>()) {
      errors[i] = std::make_exception_ptr(
          Error(ExitCode::runtime, inputs[i].name + ": the model gave non-finite predictions (NaN or infinity) in " +
                                       std::string(c10::toString(m.dtype)) +
                                       (m.dtype == torch::kFloat ? ": check the model's weights" : ": rerun with --dtype fp32")));
      continue;
    }
    results[i] = std::move(posted[n].r);
    results[i].labels = host[3 * n + 1];
    results[i].probs = host[3 * n + 2];
  }
}

}  // namespace

std::vector<SegmentResult> segment_many(const SegmentModel& m, const std::vector<SegmentInput>& inputs, int batch,
                                        std::vector<std::exception_ptr>& errors) {
  c10::InferenceMode guard;
  if (batch < 1) throw_usage("--batch must be at least 1, got " + std::to_string(batch));
  errors.assign(inputs.size(), nullptr);
  std::vector<SegmentResult> results(inputs.size());
  std::vector<Pending> pending(inputs.size());
  std::vector<CropJob> jobs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      std::vector<CropJob> mine;
      pending[i] = m.times->time("prepare (windows)", [&] { return prepare(m, inputs[i], i, mine); });
      for (CropJob& j : mine) jobs.push_back(std::move(j));
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  // Windows of one size (and the same kind of latent input) run together, up
  // to `batch` at a time, in the order they were listed.
  std::map<std::tuple<int64_t, int64_t, bool, bool>, std::vector<size_t>> groups;
  for (size_t j = 0; j < jobs.size(); ++j)
    groups[{jobs[j].crop.size(2), jobs[j].crop.size(3), jobs[j].noise.defined(), jobs[j].latent.defined()}].push_back(j);
  // A batch that fails (out of memory, one image's windows) runs again window
  // by window, so the error goes to the image that caused it.
  const auto& levels = m.heads->projection->levels;
  for (const auto& [key, members] : groups)
    for (const std::vector<size_t>& chunk : chunks(members, size_t(batch))) {
      std::vector<size_t> live;  // windows of images that have not failed
      std::vector<torch::Tensor> crops, contexts, noises, latents;
      for (size_t j : chunk) {
        const CropJob& job = jobs[j];
        if (errors[job.image]) continue;
        live.push_back(j);
        crops.push_back(job.crop);
        contexts.push_back(inputs[job.image].context);
        if (job.noise.defined()) noises.push_back(job.noise);
        if (job.latent.defined()) latents.push_back(job.latent);
      }
      if (live.empty()) continue;
      run_or_retry(
          live,
          [&] {
            const std::vector<torch::Tensor> feats = m.crop_features(
                torch::cat(crops), torch::cat(contexts), noises.empty() ? torch::Tensor() : torch::cat(noises),
                latents.empty() ? torch::Tensor() : torch::cat(latents));
            m.times->time("window blending", [&] {
              for (size_t r = 0; r < live.size(); ++r)
                accumulate(pending[jobs[live[r]].image], levels, jobs[live[r]], feats, int64_t(r));
            });
          },
          [&](size_t j) {
            const CropJob& job = jobs[j];
            if (errors[job.image]) return;
            const std::vector<torch::Tensor> feats =
                m.crop_features(job.crop, inputs[job.image].context, job.noise, job.latent);
            m.times->time("window blending", [&] { accumulate(pending[job.image], levels, job, feats, 0); });
          },
          [&](size_t j, std::exception_ptr e) { errors[jobs[j].image] = e; });
    }
  jobs.clear();
  // The head: images whose feature maps have one size run together, up to
  // `batch` at a time; then post-processing per image. A failed head batch
  // runs again image by image.
  std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_size;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (errors[i]) continue;
    try {
      m.times->time("window blending", [&] { average(m, pending[i], inputs[i].name); });
      by_size[{pending[i].acc[0].size(2), pending[i].acc[0].size(3)}].push_back(i);
    } catch (...) {
      errors[i] = std::current_exception();
      pending[i] = Pending();
    }
  }
  // Each image's post-processing is queued as its head outputs come; the
  // chunk's label maps then come to the host together (finish).
  for (const auto& [size, members] : by_size)
    for (const std::vector<size_t>& chunk : chunks(members, size_t(batch))) {
      std::vector<Posted> posted;
      std::vector<size_t> done;  // the images of `posted`
      auto post_one = [&](size_t i, const torch::Tensor& logits, const torch::Tensor& masks) {
        try {
          posted.push_back(m.times->time("post (labels, scores)", [&] { return post(pending[i], inputs[i], logits, masks); }));
          done.push_back(i);
        } catch (...) {
          errors[i] = std::current_exception();
        }
        pending[i] = Pending();
      };
      run_or_retry(
          chunk,
          [&] {
            std::vector<torch::Tensor> features;
            for (size_t k = 0; k < pending[chunk[0]].acc.size(); ++k) {
              std::vector<torch::Tensor> level;
              for (size_t i : chunk) level.push_back(pending[i].acc[k]);
              features.push_back(chunk.size() == 1 ? level[0] : torch::cat(level));
            }
            const nn::MaskFormerOutput out = m.head(features);
            for (size_t n = 0; n < chunk.size(); ++n)
              post_one(chunk[n], out.pred_logits.narrow(0, int64_t(n), 1), out.pred_masks[int64_t(n)]);
          },
          [&](size_t i) {
            const nn::MaskFormerOutput one = m.head(pending[i].acc);
            post_one(i, one.pred_logits, one.pred_masks[0]);
          },
          [&](size_t i, std::exception_ptr e) {
            errors[i] = e;
            pending[i] = Pending();
          });
      try {
        m.times->time("download", [&] { finish(m, posted, done, inputs, results, errors); });
      } catch (...) {
        for (size_t i : done) errors[i] = std::current_exception();
      }
    }
  return results;
}

SegmentResult segment(const SegmentModel& m, const Image& rgb, const torch::Tensor& context, const SegmentParams& p,
                      const std::string& name, int batch) {
  std::vector<std::exception_ptr> errors;
  std::vector<SegmentResult> r = segment_many(m, {SegmentInput{&rgb, context, p, name}}, batch, errors);
  if (errors[0]) std::rethrow_exception(errors[0]);
  return std::move(r[0]);
}

}  // namespace rass::model
