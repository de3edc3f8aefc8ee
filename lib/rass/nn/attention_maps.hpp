// Where a captured attention map (nn::CapturedAttention, [.., queries, keys])
// sits in the UNet: its queries are the pixels of one level, each level
// halving the latent (rounding up). Shared by the attention maps rass-restore
// writes (--attn-out) and the SCR loss that constrains them.
#pragma once
#include <cstdint>
#include <utility>

namespace rass::nn {

// The (h, w) of the level with h * w == queries for a latent_h x latent_w
// latent, the largest first; {0, 0} when no level has that many pixels.
std::pair<int64_t, int64_t> attention_map_size(int64_t latent_h, int64_t latent_w, int64_t queries);

}  // namespace rass::nn
