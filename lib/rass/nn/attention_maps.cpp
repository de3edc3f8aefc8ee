#include "rass/nn/attention_maps.hpp"

namespace rass::nn {

std::pair<int64_t, int64_t> attention_map_size(int64_t latent_h, int64_t latent_w, int64_t queries) {
  for (int64_t h = latent_h, w = latent_w;; h = (h + 1) / 2, w = (w + 1) / 2) {
    if (h * w == queries) return {h, w};
    if (h <= 1 && w <= 1) return {0, 0};
  }
}

}  // namespace rass::nn
