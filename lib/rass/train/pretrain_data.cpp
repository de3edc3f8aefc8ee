#include "rass/train/pretrain_data.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "rass/batch/inputs.hpp"
#include "rass/batch/report.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/train/scr_data.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::train {

namespace {

// The first line of a text file, trimmed (rass-scenes writes one line).
std::string read_text_line(const std::string& path) {
  // Through the text reader: /dev/zero filled the memory (one endless
  // line), a binary file became the prompt, a FIFO blocked the run.
  require_found_file(path, "the item's text");
  const std::vector<uint8_t> bytes = read_text_file_bytes(path, size_t(1) << 20);
  if (!batch::valid_utf8(std::string(bytes.begin(), bytes.end())))
    throw_bad_input(path, "is not UTF-8 text (the item's text)");
  const std::string all(bytes.begin(), bytes.end());
  std::string line = all.substr(0, all.find('\n'));
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  size_t b = 0;
  while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
  return line.substr(b);
}

}  // namespace

std::string sample_draw_key(int64_t step, int64_t global_index) {
  return "step " + std::to_string(step) + " sample " + std::to_string(global_index);
}

PretrainData::PretrainData(const PretrainDataConfig& cfg) : cfg_(cfg) {
  const std::string k = cfg.stage.empty() ? "" : cfg.stage + ".";
  if (cfg.crop < 8 || cfg.crop > 8192) throw_usage("crop_size " + std::to_string(cfg.crop) + ": expected 8..8192");
  std::error_code ec;
  if (!cfg.manifest.empty()) {
    if (!cfg.images.empty()) throw_usage("give either " + k + "images or " + k + "manifest, not both");
    std::ifstream f(cfg.manifest);
    if (!f) throw_bad_input(cfg.manifest, "cannot be read");
    const fs::path base = fs::path(cfg.manifest).parent_path();
    std::string line;
    int64_t n = 0;
    while (std::getline(f, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = cfg.manifest + ":" + std::to_string(n);
      json row;
      try {
        row = parse_json_unique_keys<json>(line);
      } catch (const std::exception& e) {
        throw Error(ExitCode::bad_input, where + ": not JSON: " + e.what());
      }
      if (!row.is_object() || !row.contains("image") || !row["image"].is_string())
        throw Error(ExitCode::bad_input, where + ": no \"image\" path");
      PretrainItem it;
      it.image = (base / row["image"].get<std::string>()).string();
      it.key = row.contains("key") && row["key"].is_string() ? row["key"].get<std::string>()
                                                             : fs::path(it.image).stem().string();
      if (cfg.text == TextSource::caption) {
        if (!row.contains("caption") || !row["caption"].is_string())
          throw Error(ExitCode::bad_input, where + ": no \"caption\" text (text = caption)");
        it.text = row["caption"].get<std::string>();
      } else if (cfg.text == TextSource::tags) {
        if (!row.contains("tags") || !row["tags"].is_string())
          throw Error(ExitCode::bad_input, where + ": no \"tags\" file (text = tags)");
        it.text = read_text_line((base / row["tags"].get<std::string>()).string());
      }
      items_.push_back(std::move(it));
    }
  } else {
    if (cfg.images.empty()) throw_usage("no training data: set " + k + "images (a folder) or " + k + "manifest");
    if (!fs::is_directory(cfg.images, ec)) throw_bad_input(cfg.images, "images is not a folder");
    std::string text_dir = cfg.text_dir;
    if (cfg.text != TextSource::none && text_dir.empty()) {
      fs::path img = fs::path(cfg.images).lexically_normal();
      if (img.filename().empty()) img = img.parent_path();
      text_dir = (img.parent_path() / (cfg.text == TextSource::caption ? "captions" : "tags")).string();
    }
    if (cfg.text != TextSource::none && !fs::is_directory(text_dir, ec))
      throw_bad_input(text_dir, "is not a folder (the texts of the images: set text_dir)");
    batch::InputSpec spec;
    spec.allow_stdin = false;
    spec.roles = {{"image", {"image"}, true, ""}};
    spec.inputs = {cfg.images};
    for (const batch::Item& b : batch::collect_items(spec)) {
      if (!b.error.empty()) throw Error(ExitCode::bad_input, "training data: " + b.error);
      PretrainItem it;
      it.key = b.key;
      it.image = b.paths[0];
      if (cfg.text != TextSource::none) {
        const std::string p = (fs::path(text_dir) / (b.key + ".txt")).string();
        if (!fs::is_regular_file(p, ec)) throw_bad_input(p, "missing: the text of " + it.image);
        it.text = read_text_line(p);
      }
      items_.push_back(std::move(it));
    }
  }
  if (items_.empty()) throw_bad_input(cfg.manifest.empty() ? cfg.images : cfg.manifest, "no training items");
}

PretrainSample PretrainData::sample(size_t index, int64_t step, int64_t global_index) const {
  const PretrainItem& item = items_.at(index);
  PretrainSample s;
  s.key = item.key;
  s.text = item.text;
  s.draw = sample_draw_key(step, global_index);
  const Image img = model::to_rgb8(read_image(item.image), item.image);
  const int64_t C = cfg_.crop;
  if (img.width < C || img.height < C)
    throw_bad_input(item.image, "is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                                    ", smaller than crop_size " + std::to_string(C) + " (images are not padded)");
  Rng crop_rng(cfg_.seed, s.draw, "crop"), flip_rng(cfg_.seed, s.draw, "flip");
  const int64_t x0 = int64_t(crop_rng.below(uint64_t(img.width - C + 1)));
  const int64_t y0 = int64_t(crop_rng.below(uint64_t(img.height - C + 1)));
  const bool flip = cfg_.flip && flip_rng.uniform() < 0.5;
  using torch::indexing::Slice;
  torch::Tensor t = rgb_to_signed(img).index({Slice(), Slice(y0, y0 + C), Slice(x0, x0 + C)});
  if (flip) t = t.flip({2});
  s.image = t.contiguous();
  return s;
}

void StageSettings::check_keys() const {
  if (!j.is_object()) throw_usage("the " + stage + " stage settings must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!defaults.contains(it.key())) throw_usage("unknown " + stage + " setting '" + it.key() + "'");
}

const json& StageSettings::at(const std::string& k) const {
  if (!defaults.contains(k)) throw_runtime(stage + ": unknown setting " + k);
  return j.contains(k) ? j[k] : defaults[k];
}

std::string StageSettings::str(const std::string& k) const {
  if (!at(k).is_string()) throw_usage(stage + " setting " + k + " must be a string");
  return at(k).get<std::string>();
}

double StageSettings::num(const std::string& k) const {
  if (!at(k).is_number()) throw_usage(stage + " setting " + k + " must be a number");
  const double v = at(k).get<double>();
  if (!std::isfinite(v)) throw_usage(stage + " setting " + k + " must be finite");
  return v;
}

int64_t StageSettings::integer(const std::string& k) const {
  if (!at(k).is_number_integer()) throw_usage(stage + " setting " + k + " must be an integer");
  return at(k).get<int64_t>();
}

double StageSettings::num(const std::string& k, double lo, double hi) const {
  const double v = num(k);
  if (!(v >= lo && v <= hi))
    throw_usage(stage + " setting " + k + " must be in " + batch::format_number(lo) + ".." + batch::format_number(hi));
  return v;
}

int64_t StageSettings::integer(const std::string& k, int64_t lo, int64_t hi) const {
  const int64_t v = integer(k);
  if (v < lo || v > hi)
    throw_usage(stage + " setting " + k + " must be an integer " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

bool StageSettings::flag(const std::string& k) const {
  if (!at(k).is_boolean()) throw_usage(stage + " setting " + k + " must be true or false");
  return at(k).get<bool>();
}

}  // namespace rass::train
