// Helpers the SAM-family tests share (test_sam.cpp, test_robust_sam.cpp,
// test_hq_sam.cpp): golden tensors, fixture images, prompt cases and packed
// masks as the fixture scripts write them.
#pragma once
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/sam_model.hpp"
#include "rass/model/sam_prompts.hpp"
#include "torch_doctest.hpp"

namespace rass::test {

inline const std::string kSamFixtures = std::string(RASS_FIXTURES) + "/nn";

inline torch::Tensor sam_golden(const SafeTensorsFile& io, const std::string& k) {
  const TensorView* v = io.find(k);
  REQUIRE_MESSAGE(v != nullptr, k);
  return model::to_tensor(*v, io.path());
}

// Max abs error relative to the largest expected value (at least 1).
inline double sam_rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  REQUIRE(got.sizes() == want.sizes());
  const double scale = std::max(1.0, want.abs().max().item<double>());
  return (got.to(torch::kFloat) - want.to(torch::kFloat)).abs().max().item<double>() / scale;
}

// An 8-bit RGB fixture image of tests/fixtures/nn.
inline Image sam_fixture_rgb(const std::string& name) {
  const std::string p = kSamFixtures + "/" + name;
  return model::to_rgb8(read_image(p), p);
}

// A case's objects: one per box (labels 1, 2, ...), or one object; the points go with it.
inline std::vector<model::SamObject> sam_case_objects(const nlohmann::json& c) {
  std::vector<model::SamObject> objs;
  const size_t n = c.contains("boxes") ? c["boxes"].size() : 1;
  for (size_t i = 0; i < n; ++i) {
    model::SamObject o;
    o.label = int(i) + 1;
    if (c.contains("boxes")) {
      const auto& b = c["boxes"][i];
      o.box = std::array<double, 4>{b[0].get<double>(), b[1].get<double>(), b[2].get<double>(), b[3].get<double>()};
    }
    if (c.contains("points"))
      for (size_t k = 0; k < c["points"].size(); ++k) {
        o.points.push_back({c["points"][k][0].get<double>(), c["points"][k][1].get<double>()});
        o.point_labels.push_back(c["labels"][k].get<int>());
      }
    objs.push_back(o);
  }
  return objs;
}

// A generator case's grid and filters (points_per_side, points_per_batch,
// pred_iou_thresh, stability_thresh, nms_thresh); crops and clean-up are
// the caller's (the fixtures name them differently).
inline model::SamEverythingOptions sam_everything_filters(const nlohmann::json& c) {
  model::SamEverythingOptions o;
  o.points_per_side = c["points_per_side"];
  o.points_per_batch = c["points_per_batch"];
  o.pred_iou_thresh = c["pred_iou_thresh"];
  o.stability_score_thresh = c["stability_thresh"];
  o.box_nms_thresh = c["nms_thresh"];
  return o;
}

// One mask of np.packbits(masks.reshape(n, h * w), axis=1) (8 pixels a byte,
// the first in the most significant bit) as [h, w] bool.
inline torch::Tensor sam_unpack_bits(const torch::Tensor& packed_row, int64_t h, int64_t w) {
  const torch::Tensor weights = torch::pow(2, torch::arange(7, -1, -1, torch::kLong));  // 128, 64, ..., 1
  return torch::div(packed_row.to(torch::kLong).unsqueeze(1), weights, "floor")
             .remainder(2)
             .reshape({-1})
             .slice(0, 0, h * w)
             .view({h, w}) > 0;
}

}  // namespace rass::test
