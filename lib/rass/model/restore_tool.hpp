// rass-restore as a library call: one image (file or `-`) or a batch
// (files, directories, manifests -> -O DIR) through the shared batch layer.
// The CLI (cli/restore_cli.cpp) only parses flags into a RestoreJob.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"
#include "rass/model/model_tool.hpp"

namespace rass::model {

struct RestoreJob {
  std::string model;                 // diffusers folder
  std::vector<LoraSpec> loras;
  bool no_merge = false;
  // The form; unset = from the model's rass.json, else the method's preset.
  std::optional<std::string> method;        // osediff | scr
  std::optional<int> timestep;
  std::optional<std::string> formula;       // ddpm | residual
  std::optional<std::string> prompt_style;  // osediff | rass
  std::string prompt, prompt_file, tags;    // tags: FILE or "-"
  std::string color_fix = "adain";          // adain | wavelet | none
  int upscale = 1;
  std::string size_policy = "osediff";      // osediff | pad
  int process_size = 512;
  bool process_size_given = false;  // else rass.json's process_size, when it has one
  // --tile / --no-tile; unset: on (OSEDiff's test script tiles whatever is
  // above its thresholds, so small images run as untiled), off with --attn-out.
  std::optional<bool> tile;
  int tile_size = 96, tile_overlap = 32;    // latent pixels
  int vae_encoder_tile = 1024, vae_decoder_tile = 224;  // with --tile: VAE tiles (image px, latent px)
  std::string vae_offload = "auto";         // --vae-offload auto | on | off (tiled_vae.hpp's TileOffload)
  bool vae_mode = false;
  uint64_t seed = 0;
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;                          // intra-op threads per item; 0 = cores / jobs
  bool channels_last = false, cudnn_benchmark = false, cuda_graphs = false;  // speed switches (device.hpp, cuda_graphs.hpp)
  bool timings = false;  // --timings: seconds per stage on stderr at the end (stage_times.hpp)
  std::vector<std::string> inputs;          // files, directories, "-"
  std::string manifest;                     // JSON lines ("lq", "image" or "path") or one path per line
  std::string output;                       // -o FILE | - (one image)
  std::string output_dir;                   // -O DIR (batch)
  std::string latent_out, attn_out;         // FILE.npy (one image) or DIR (batch)
  bool json = false, quiet = false, resume = false;
  int jobs = 1;                             // items in flight sharing one model
  int batch = 1;                            // images per network call (restore_many)
  Shard shard;
};

// Returns the exit code (0; 3 when some batch items were bad; 1 on a runtime
// failure); errors of a single image or of the setup throw rass::Error.
int run_restore_tool(const RestoreJob& job);

}  // namespace rass::model
