#include "rass/model/sample_tool.hpp"

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/sample.hpp"
#include "rass/nn/threads.hpp"

namespace rass::model {

int run_sample_command(const ModelJob& a) {
  // Flags that do not go together are usage errors before anything is loaded.
  if (a.output.empty() == a.out_dir.empty()) throw_usage("sample: give exactly one of -o FILE and -O DIR");
  if (a.n < 1) throw_usage("-n " + std::to_string(a.n) + ": expected at least 1 image");
  if (!a.output.empty() && a.n > 1 && a.grid == 0)
    throw_usage("-o writes one file: with -n " + std::to_string(a.n) + " add --grid COLS, or use -O DIR");
  if (a.json && a.output == "-") throw_usage("--json and -o - both write stdout");
  guard_model_outputs(a);
  nn::set_cpu_threads(a.threads);
  const SampleModel m = load_sample_model(a.path, a.device, a.dtype);
  SampleParams p;
  p.prompt = a.prompt;
  p.negative_prompt = a.negative_prompt;
  p.steps = a.steps;
  p.guidance = a.guidance;
  p.eta = a.eta;
  p.seed = a.seed;
  p.width = a.width ? a.width : m.default_size;
  p.height = a.height ? a.height : m.default_size;
  if (p.width == 0 || p.height == 0)
    throw_usage(a.path + "/unet/config.json has no sample_size: give --size or --width and --height");
  // --max-pixels holds here as for every image a tool reads: --size 30000
  // took gigabytes before LibTorch's allocation failed with a stack trace.
  const uint64_t limit = max_pixels(), cols = uint64_t(a.grid ? a.grid : 1), rows = (uint64_t(a.n) + cols - 1) / cols;
  const uint64_t px = uint64_t(p.width) * uint64_t(p.height), grid_px = a.grid ? px * cols * rows : px;
  if (limit > 0 && grid_px > limit)
    throw_usage(std::string(a.grid ? "the grid of " : "an image of ") + std::to_string(a.grid ? p.width * int64_t(cols) : p.width) + "x" +
                std::to_string(a.grid ? p.height * int64_t(rows) : p.height) + " = " + std::to_string(grid_px) +
                " pixels is over the pixel limit " + std::to_string(limit) + ": lower --size (or --width/--height" +
                (a.grid ? ", -n" : "") + "), or raise --max-pixels / RASS_MAX_PIXELS");
  const std::vector<int64_t> timesteps = nn::ddim_timesteps(m.scheduler, p.steps);  // checks --steps early
  if (!a.out_dir.empty()) make_directories(a.out_dir);

  std::vector<Image> images;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < a.n; ++i) {
    SampleResult r = sample_image(m, p, i);
    if (!a.out_dir.empty()) {
      char name[32];
      std::snprintf(name, sizeof name, "sample-%04d.png", i);
      const std::string path = path_join(a.out_dir, name);
      write_image(path, r.image, ImageFormat::png);
      files.push_back(path);
    }
    if (!a.quiet)
      std::fprintf(stderr, "rass-model: sample %d/%d done (%lldx%lld, %lld steps)\n", i + 1, a.n, (long long)p.width,
                   (long long)p.height, (long long)p.steps);
    images.push_back(std::move(r.image));
  }
  if (!a.output.empty()) {
    write_image(a.output, a.grid ? tile_grid(images, a.grid) : images[0], ImageFormat::png);
    files.push_back(a.output);
  } else if (a.grid) {
    const std::string path = path_join(a.out_dir, "grid.png");
    write_image(path, tile_grid(images, a.grid), ImageFormat::png);
    files.push_back(path);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.json) {
    const nlohmann::ordered_json j = {{"tool", "rass-model sample"}, {"model", a.path},        {"prompt", a.prompt},
                                      {"negative_prompt", a.negative_prompt}, {"seed", a.seed}, {"n", a.n},
                                      {"width", p.width},      {"height", p.height},            {"steps", p.steps},
                                      {"guidance", p.guidance}, {"eta", p.eta},                 {"timesteps", timesteps},
                                      {"files", files},        {"seconds", secs}};
    std::printf("%s\n", json_text(j, 2).c_str());
  }
  return 0;
}

}  // namespace rass::model
