// Tiled VAE encode/decode for large images, with GroupNorm statistics
// gathered over all tiles (exact global statistics over the tiles' core
// regions, where OSEDiff's vaehook.py uses a pixel-weighted mean of per-tile
// means and variances).
//
// The image (or latent) is split into core tiles (a multiple of 8 pixels for
// the encoder, so every level's grid matches the whole image's); each tile is
// run with `pad` extra pixels of context on every side where the image has
// them. Every tile runs on its own thread, one thread computing at a time:
// at each GroupNorm a tile adds the sums of its core region to the layer's
// global sums and waits until all tiles have; all then normalise with the
// global mean and variance. So peak memory is one layer's activations of the
// whole image plus one tile's temporaries (the mid-block self-attention, the
// dominant term untiled — [(H/8)(W/8)]^2 floats — is per tile); with the
// waiting tiles' activations in host memory (TileOffload), one tile's.
// Self-attention and convolutions see only their tile plus pad: near tile
// borders the result differs slightly from the untiled one.
#pragma once
#include <string>

#include <torch/types.h>

#include "rass/nn/vae.hpp"

namespace rass::model {

// Where tiles waiting for the others' GroupNorm statistics keep their
// activations (--vae-offload): in host memory (on, as OSEDiff's vaehook
// outside its fast mode), on the device (off), or, on a CUDA device, in host
// memory when the device lacks room (auto: tile_keeps_on_device; off on the
// CPU, where it would save nothing). Host memory makes the device hold one
// tile's activations, not the whole image's, for two copies of each waiting
// tile per GroupNorm over the bus: at 2048 px tens of GB, seconds against a
// decoder's fraction of a second, so auto makes them only where they are
// needed. The outputs are the same bits either way.
enum class TileOffload { automatic, on, off };

// auto's choice for a tile about to wait holding `held` bytes, with
// `to_come` tiles still to reach the same GroupNorm: it stays on the device
// when the device's room (device_room_bytes, peak_memory.hpp) holds it once
// for each of them and once more (each tile to come holds about as much,
// and the one computing about as much again), plus 4x held or 1 GiB,
// whichever is more:
// between two GroupNorms a tile grows (a decoder upsampler quadruples its
// area) while the kept tiles stay, and the convolutions want workspaces.
// Room -1 (unknown): it goes. Decided per tile and GroupNorm, so other
// lanes' use counts, and a run goes to host memory only from where it must.
bool tile_keeps_on_device(int64_t room, int64_t held, size_t to_come);

// Tests: --vae-offload auto takes `bytes` as the device's room, on any
// device (the CPU too); -1 (the default) asks the device.
void set_tile_offload_room(int64_t bytes);

struct VaeTiling {
  int64_t encoder_tile = 1024, encoder_pad = 32;  // image pixels
  int64_t decoder_tile = 224, decoder_pad = 11;   // latent pixels
  TileOffload offload = TileOffload::automatic;
};

// The tiles' GroupNorm works on a band of rows at a time, each band's
// temporaries (float64 for the statistics, float32 for the output) at most
// this many bytes (default 64 MiB); tests set it small to cover many bands.
int64_t tile_norm_band_bytes();
void set_tile_norm_band_bytes(int64_t bytes);

// OSEDiff's vaehook condition for tiles along the longer side: max side >
// tile + 2 * pad (image pixels for the encoder, latent pixels for the decoder).
inline bool vae_tiles_apply(int64_t max_side, int64_t tile, int64_t pad) { return max_side > tile + 2 * pad; }

// The encoder output (before quant_conv) of x [1, 3, H, W]; tiled only when
// max(H, W) > tile + 2 * pad (else the plain forward), or always with `force`.
torch::Tensor tiled_encoder_forward(nn::AutoencoderKLImpl& vae, const torch::Tensor& x, int64_t tile, int64_t pad,
                                    bool force = false, TileOffload offload = TileOffload::automatic);
// The decoder output of z [1, 4, h, w] (after post_quant_conv); tiled only
// when max(h, w) > tile + 2 * pad, or always with `force`.
torch::Tensor tiled_decoder_forward(nn::AutoencoderKLImpl& vae, const torch::Tensor& z, int64_t tile, int64_t pad,
                                    bool force = false, TileOffload offload = TileOffload::automatic);

// --vae-tile ENC,DEC's bounds (Error(usage)): the encoder tile a multiple of
// 8 of at least 64 image pixels, the decoder tile at least 8 latent pixels.
void check_vae_tile_sizes(int64_t encoder_tile, int64_t decoder_tile);
// --vae-offload auto | on | off (Error(usage) otherwise).
TileOffload parse_tile_offload(const std::string& text);

// vae.encode / vae.decode with the tiled forwards.
nn::LatentDistribution tiled_encode(nn::AutoencoderKLImpl& vae, const torch::Tensor& x, const VaeTiling& t);
torch::Tensor tiled_decode(nn::AutoencoderKLImpl& vae, const torch::Tensor& z, const VaeTiling& t);

}  // namespace rass::model
