#include "rass/cli/scenes_cli.hpp"

#include "rass/core/error.hpp"

namespace rass::cli {

ScenesCli::ScenesCli()
    : ToolCli("scenes", "Generate synthetic scenes (street, landscape, room) with exact per-pixel ADE20K labels, "
                        "tags and captions, reproducibly by seed.") {
  CLI::App& a = *app_;
  a.add_option("-n,--count", count_, "number of scenes to generate (keys scene_000000, ...)")
      ->type_name("N")
      ->check(non_negative_integer(1000000000LL));
  a.add_option("-o,--output", output_, "output directory (images/, labels/, tags/, captions/, manifest.jsonl, tags.tsv)")
      ->type_name("DIR");
  a.add_option("-s,--seed", seed_, "global seed, 0..2^64-1; with the scene key it determines every draw")
      ->type_name("UINT")
      ->default_str("0");
  a.add_option("--start", start_, "number of the first scene (keys continue from it)")
      ->type_name("K")
      ->default_str("0")
      ->check(non_negative_integer(1000000000000LL));
  a.add_option("--size", size_, "width and height in pixels, 64-512")->default_str("256")->check(integer_range(64, 512));
  a.add_option("--width", width_, "width in pixels, 64-512 (overrides --size)")->check(integer_range(64, 512));
  a.add_option("--height", height_, "height in pixels, 64-512 (overrides --size)")->check(integer_range(64, 512));
  with_choices(a.add_option("-k,--kind", kind_, "scene family: mixed (one drawn per scene), street, landscape, room"),
               {"mixed", "street", "landscape", "room"})
      ->default_str("mixed");
  a.add_option("--png-level", png_level_, "deflate level of the PNG outputs, 0-9")->default_str("6")->check(integer_range(0, 9));
  a.add_flag("--resume", resume_, "skip scenes whose outputs are already complete");
  a.add_flag("--list-classes", list_classes_, "print the classes (ADE20K name, label value; --json: JSON lines) and exit");
  add_jobs_option();
  add_shard_option();
}

scenes::ScenesJob ScenesCli::job() const {
  scenes::ScenesJob job;
  job.list_classes = list_classes_;
  job.seed = parse_seed(seed_);
  job.count = count_;
  job.start = start_;
  job.scene.width = width_ > 0 ? width_ : size_;
  job.scene.height = height_ > 0 ? height_ : size_;
  job.scene.kind = scenes::parse_kind(kind_);
  job.output = output_;
  job.png_level = png_level_;
  job.resume = resume_;
  job.jobs = common.jobs;
  job.shard = common.shard.empty() ? shard_from_env() : parse_shard(common.shard);
  job.quiet = common.quiet;
  job.json = common.json;
  if (!list_classes_ && app_->count("-n") == 0) throw_usage("no count: pass -n N");
  return job;
}

}  // namespace rass::cli
