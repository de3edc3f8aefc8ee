// RAS inference as released (Ka1Guan/RASS: detectron2's test mapper,
// MaskFormer_rass.forward, FeatureProjection.slide_forward; REFERENCE.md
// section 4 "Inference"):
//   1. resize the shortest edge to min_size_test (512), the longest at most
//      max_size_test (2048), PIL bilinear on the 8-bit image (detectron2's
//      ResizeShortestEdge); --no-resize skips it;
//   2. pad bottom/right with 0 to a multiple of size_divisibility (8) -> -1
//      after x/255*2-1;
//   3. sliding window: square crops of the padded image's short side (at
//      most min_size_test with --no-resize, or --window N), stride = window, the last tile edge-aligned; the
//      backbone + projection run per crop and the features are averaged
//      where crops overlap (offsets in feature space floor-divided by the
//      stride) -- the features, not the logits, as the released code does;
//      --whole: one pass over the padded image;
//   4. the head once on the whole feature maps; masks bilinear (align_corners
//      false) from 1/4 to the padded size, semantic inference (softmax without
//      no-object x sigmoid masks, summed over queries), crop to the resized
//      size, bilinear to the original size, argmax.
// Steps 4's upsampling and everything after it run over bands of rows, with
// the same arithmetic as one whole-image interpolate, so memory does not grow
// with the full-resolution [queries or classes, H, W] maps.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/core/image.hpp"
#include "rass/model/segment_model.hpp"

namespace rass::model {

struct SegmentParams {
  bool whole = false;
  bool resize = true;
  int window = 0;          // 0: the padded image's short side (as released; <= min_size_test without resize)
  bool vae_mode = false;   // the latent mean instead of a sample
  uint64_t seed = 0;
  std::string key;         // with seed, keys the sample's generator
  torch::Tensor latent;    // [4, Hp/8, Wp/8]: replaces the VAE latent (the encoder still gives its taps)
  std::string latent_name; // for messages
  bool keep_scores = false;  // return the [C, H, W] scores
  bool keep_probs = false;   // return the top-1 probability map
  int64_t band_elements = int64_t(1) << 26;  // max floats per band of the full-size maps
};

struct SegmentResult {
  torch::Tensor labels;  // [H, W] int32, class index 0..C-1 (CPU)
  torch::Tensor probs;   // [H, W] float: the top class's score / the sum of all classes' scores
  torch::Tensor scores;  // [C, H, W] float: the semantic-inference scores the released model returns
  int in_width = 0, in_height = 0, proc_width = 0, proc_height = 0, pad_width = 0, pad_height = 0;
  int window_h = 0, window_w = 0, tiles = 0;
};

// The padded size and resize of an input (steps 1-2), and the crop offsets of step 3.
struct SegmentGeometry {
  int proc_w = 0, proc_h = 0, pad_w = 0, pad_h = 0, crop_w = 0, crop_h = 0;
  std::vector<std::pair<int, int>> tiles;  // (y1, x1)
};
// `name` names the image in errors (an image the resize leaves 0 pixels wide
// or high is bad input, exit 3).
SegmentGeometry segment_geometry(int width, int height, const SegmentFolderConfig& c, const SegmentParams& p,
                                 const std::string& name = "image");
// detectron2 ResizeShortestEdge.get_output_shape.
std::pair<int, int> shortest_edge_size(int w, int h, int short_edge, int max_size);

// `batch`: windows of the image per backbone call (segment_many).
SegmentResult segment(const SegmentModel& m, const Image& rgb, const torch::Tensor& context, const SegmentParams& p,
                      const std::string& name, int batch = 1);

// One image of a batched call.
struct SegmentInput {
  const Image* rgb = nullptr;
  torch::Tensor context;  // [1, tokens, dim]: its prompt's embedding
  SegmentParams params;
  std::string name;       // names it in errors
};

// Segments several images, running the backbone (VAE encoder, UNet,
// projection) on up to `batch` windows of one size at a time: windows of
// different images, and the windows of one large image, go together; then
// the head on up to `batch` images whose feature maps have one size; the
// post-processing per image (on the model's device: only the label map, and
// the probabilities or scores when kept, come to the host). Each result is what segment() gives
// for that image alone (the same noise draws; batched kernels may round
// differently). An image that fails gets its exception in errors[i] and an
// empty result; the others go on. segment() is this with one image.
std::vector<SegmentResult> segment_many(const SegmentModel& m, const std::vector<SegmentInput>& inputs, int batch,
                                        std::vector<std::exception_ptr>& errors);

// Rows [y0, y1) of F.interpolate(src, (ht, wt), bilinear, align_corners=False)
// of a [C, hs, ws] map whose rows come from rows(a, b) -> [C, b - a, ws].
torch::Tensor bilinear_rows(const std::function<torch::Tensor(int64_t, int64_t)>& rows, int64_t hs, int64_t ws,
                            int64_t ht, int64_t wt, int64_t y0, int64_t y1);

}  // namespace rass::model
