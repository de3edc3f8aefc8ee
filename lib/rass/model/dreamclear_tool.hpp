// rass-dreamclear as a library call: DreamClear (seed 003) restoration of one
// image (file or `-`) or a batch (files, directories, manifests -> -O DIR)
// through the shared batch layer. The CLI (cli/dreamclear_cli.cpp) only
// parses flags into a DreamClearJob. Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::model {

struct DreamClearJob {
  std::string model;     // dreamclear.json folder
  std::string caption;   // T5 features: one .npz for every image, or a folder of <key>.npz
  bool null_caption = false;  // the model's null caption instead (unconditional)
  int steps = 50;
  double cfg_scale = 4.5;
  int upscale = 4, min_size = 1024;
  int tile = 128, tile_overlap = 32;  // latent pixels; tile 0: untiled
  // --vae-tile ENC,DEC: the VAE over tiles (tiled_vae.hpp) where the working
  // image passes ENC + 64 px (encoder) or its latent DEC + 22 (decoder);
  // -1, -1: the whole image, as the reference.
  int vae_encoder_tile = -1, vae_decoder_tile = -1;
  std::string vae_offload = "auto";  // auto | on | off
  std::string color_fix = "wavelet";  // wavelet | none
  int lre_start = -1;                 // test.py's --lre --start_point; -1: off
  uint64_t seed = 0;
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  std::vector<std::string> inputs;
  std::string manifest;
  std::string output, output_dir;  // -o FILE | -, -O DIR
  bool json = false, quiet = false, resume = false;
  int jobs = 1;
  Shard shard;
};

int run_dreamclear_tool(const DreamClearJob& job);

}  // namespace rass::model
