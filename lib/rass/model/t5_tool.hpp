// rass-t5 as a library call: T5 features of captions, as PixArt's
// T5Embedder and DreamClear's tools/extract_t5_features.py make them, for
// rass-dreamclear --caption (or any PixArt-style model). One caption (a
// file, `-`, or --text) -> -o FILE.npz, or a batch (caption files,
// directories, manifests) -> -O DIR/<key>.npz, through the shared batch
// layer. A caption file is read as extract_t5_features.py reads it: its
// first line, stripped. The CLI (cli/t5_cli.cpp) only parses flags into a
// T5Job. Torch-free.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::model {

struct T5Job {
  std::string model;      // transformers T5 encoder folder (config.json, model.safetensors or shards)
  std::string tokenizer;  // spiece.model; "": in the folder or ../tokenizer/
  std::string clean = "pixart";  // pixart | lower | none
  int max_length = 120;
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  std::optional<std::string> text;  // --text: the caption itself
  std::vector<std::string> inputs;
  std::string manifest;
  std::string output, output_dir;  // -o FILE.npz | -, -O DIR
  bool json = false, quiet = false, resume = false;
  int jobs = 1;
  Shard shard;
};

int run_t5_tool(const T5Job& job);

// The caption of a caption file's bytes as extract_t5_features.py reads it:
// UTF-8 (Error(bad_input) naming `name` otherwise), the first line (ended by
// "\n", "\r\n" or "\r", as Python's text mode reads lines), str.strip().
std::string caption_from_file_bytes(const std::vector<uint8_t>& bytes, const std::string& name);

}  // namespace rass::model
