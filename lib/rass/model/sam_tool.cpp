#include "rass/model/sam_tool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/batch/inputs.hpp"
#include "rass/batch/one_input.hpp"
#include "rass/batch/ordered_lines.hpp"
#include "rass/batch/output_lock.hpp"
#include "rass/batch/provenance.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "rass/batch/summary.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/sam_crops.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/png_text.hpp"
#include "rass/model/batching.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/run_files.hpp"
#include "rass/model/sam_model.hpp"
#include "rass/model/sam_prompts.hpp"
#include "rass/model/torch_error.hpp"
#include "rass/nn/threads.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr char kSamProg[] = "rass-sam";

// What every item shares: the objects of --point/--box, or how a label map
// makes them.
struct SamPlan {
  bool everything = false;
  SamEverythingOptions eo;
  std::vector<SamObject> flag_objects;
  bool from_labels = false;
  SamLabelPrompts how;
  int fill = 0;
  std::string prompt_text;  // the flags' prompts, for the settings
};

std::vector<int> sam_parse_skip(const std::string& s) {
  std::vector<int> v;
  if (s == "none") return v;
  size_t a = 0;
  while (true) {
    const size_t b = s.find(',', a);
    const std::string part = s.substr(a, b == std::string::npos ? std::string::npos : b - a);
    char* end = nullptr;
    errno = 0;
    const long x = part.empty() ? -1 : std::strtol(part.c_str(), &end, 10);
    if (part.empty() || errno || end != part.c_str() + part.size() || x < 0 || x > 65535)
      throw_usage("--skip '" + s + "': expected label values 0..65535 separated by commas, or none");
    v.push_back(int(x));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  // One order for the settings: --skip 1,255 and 255,1 are one run.
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// SAM's prompt tokens attend to each other: their count is bounded.
constexpr size_t kMaxSamPoints = 256;

SamPlan make_sam_plan(const SamJob& job) {
  SamPlan pl;
  if (job.everything) {
    if (!job.prompts_from.empty() || !job.points.empty() || !job.boxes.empty())
      throw_usage("--everything prompts with a grid of points; it does not go with --point, --box or --prompts-from");
    if (job.multimask) throw_usage("--everything keeps every mask of the three each point gives; --multimask is implied");
    if (job.fill && *job.fill != 0) throw_usage("--everything writes mask ids 1..N and 0 where no mask is; --fill is 0");
    auto unit = [](double v, const char* flag) {
      if (!(v >= 0 && v <= 1)) throw_usage(std::string(flag) + " " + batch::format_number(v) + ": expected 0..1");
    };
    if (job.pred_iou_thresh) unit(*job.pred_iou_thresh, "--pred-iou-thresh");
    unit(job.stability_thresh, "--stability-thresh");
    unit(job.nms_thresh, "--nms-thresh");
    unit(job.crop_nms_thresh, "--crop-nms-thresh");
    if (!(job.crop_overlap >= 0 && job.crop_overlap < 1))
      throw_usage("--crop-overlap " + batch::format_number(job.crop_overlap) + ": expected a fraction in [0, 1)");
    if (job.min_region_area < 0) throw_usage("--min-region-area: expected a pixel count >= 0");
    // Every layer needs a point, and every mask an id of the 16-bit map.
    int64_t candidates = 0;
    for (int layer = 0; layer <= job.crop_layers; ++layer) {
      const int n = sam_layer_points_per_side(job.points_per_side, layer, job.crop_points_downscale);
      if (n < 1)
        throw_usage("--points-per-side " + std::to_string(job.points_per_side) + " / --crop-points-downscale " +
                    std::to_string(job.crop_points_downscale) + "^" + std::to_string(layer) +
                    " leaves crop layer " + std::to_string(layer) + " no point: lower --crop-layers or the downscale");
      candidates += (int64_t(1) << (2 * layer)) * int64_t(n) * n * 3;
    }
    if (candidates > 65535)
      throw_usage("--points-per-side " + std::to_string(job.points_per_side) + " with --crop-layers " +
                  std::to_string(job.crop_layers) + " can keep " + std::to_string(candidates) +
                  " masks, and the instance map's ids stop at 65535: raise --crop-points-downscale or lower "
                  "--points-per-side or --crop-layers");
    pl.everything = true;
    pl.eo.points_per_side = job.points_per_side;
    pl.eo.points_per_batch = job.points_per_batch;
    pl.eo.pred_iou_thresh = job.pred_iou_thresh.value_or(0.88);  // SAM 2's default is set once the model is known
    pl.eo.stability_score_thresh = job.stability_thresh;
    pl.eo.box_nms_thresh = job.nms_thresh;
    pl.eo.crop_n_layers = job.crop_layers;
    pl.eo.crop_nms_thresh = job.crop_nms_thresh;
    pl.eo.crop_overlap_ratio = job.crop_overlap;
    pl.eo.crop_n_points_downscale_factor = job.crop_points_downscale;
    pl.eo.min_mask_region_area = job.min_region_area;
    pl.eo.use_m2m = job.m2m;
    pl.fill = 0;
    return pl;
  }
  pl.from_labels = !job.prompts_from.empty();
  if (pl.from_labels && (!job.points.empty() || !job.boxes.empty()))
    throw_usage("--prompts-from makes the prompts from a label map; it does not go with --point or --box");
  if (!pl.from_labels && job.points.empty() && job.boxes.empty())
    throw_usage("no prompt: give --point X,Y[,L] and/or --box X0,Y0,X1,Y1 (one object), or --prompts-from LABELS");
  if (job.boxes.size() > 1)
    throw_usage("one --box per object: the flags describe one object (several objects: --prompts-from)");
  if (job.points.size() > kMaxSamPoints)
    throw_usage(std::to_string(job.points.size()) + " --point flags: at most " + std::to_string(kMaxSamPoints) +
                " points describe one object");
  if (pl.from_labels) {
    pl.how.kind = parse_sam_prompt_kind(job.prompt_type);
    pl.how.points = job.points_per_object;
    pl.how.skip = sam_parse_skip(job.skip);
    pl.how.seed = job.seed;
    // The fill must not be a label an object can have: by default the
    // largest skipped value (255, the ignore index; 0 with --skip 0).
    if (!job.fill && pl.how.skip.empty())
      throw_usage("--skip none makes every value an object: give --fill with a value no pixel of the label maps has");
    pl.fill = job.fill.value_or(pl.how.skip.empty() ? 0 : pl.how.skip.back());
    if (job.fill && std::find(pl.how.skip.begin(), pl.how.skip.end(), pl.fill) == pl.how.skip.end() && !pl.how.skip.empty())
      throw_usage("--fill " + std::to_string(pl.fill) + " is a label --prompts-from may make an object of; give a value "
                  "of --skip (" + job.skip + ")");
  } else {
    SamObject o;
    o.label = 255;  // a 0/255 mask
    for (const std::string& p : job.points) {
      const auto [xy, l] = parse_sam_point(p);
      o.points.push_back(xy);
      o.point_labels.push_back(l);
      pl.prompt_text += "point " + p + "\n";
    }
    if (!job.boxes.empty()) {
      o.box = parse_sam_box(job.boxes[0]);
      pl.prompt_text += "box " + job.boxes[0] + "\n";
    }
    pl.flag_objects.push_back(o);
    pl.fill = job.fill.value_or(0);
    if (pl.fill == o.label) throw_usage("--fill 255 is the object's own label: the mask would be all 255");
  }
  if (pl.fill < 0 || pl.fill > 65535) throw_usage("--fill " + std::to_string(pl.fill) + ": expected 0..65535");
  return pl;
}

// One item's objects: the flags', or its label map's (which must have the image's size).
// `labels`: the decoded label map, kept to score each object against (--json's iou, dice).
std::vector<SamObject> sam_item_objects(const SamPlan& pl, const std::string& key, const Image& rgb,
                                        const std::vector<uint8_t>& label_bytes, const std::string& label_name,
                                        Image& labels) {
  std::vector<SamObject> objs;
  if (pl.everything) return objs;
  if (pl.from_labels) {
    labels = decode_label_image(label_bytes.data(), label_bytes.size(), label_name);
    const Image& lab = labels;
    if (lab.width != rgb.width || lab.height != rgb.height)
      throw_bad_input(label_name, "is " + std::to_string(lab.width) + "x" + std::to_string(lab.height) +
                                      "; its image is " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height));
    objs = sam_objects_from_labels(lab, pl.how, key, label_name);
    // With --skip none every value is an object: one that is also the fill
    // would make its mask and the uncovered pixels one label.
    for (const SamObject& o : objs)
      if (o.label == pl.fill)
        throw_bad_input(label_name, "holds the value " + std::to_string(o.label) +
                                        ", an object here and the --fill value: give --fill a value no pixel has");
  } else {
    objs = pl.flag_objects;
    check_sam_objects(objs, rgb.width, rgb.height, "--point/--box");
  }
  return objs;
}

// The plan against the model, before any image: what the model refuses (a
// batch would otherwise fail each item alike), and the defaults that are the
// model's generator's (SAM2AutomaticMaskGenerator's pred_iou_thresh is 0.8,
// SamAutomaticMaskGenerator's 0.88).
void fit_sam_plan(const SamModel& m, const SamJob& job, SamPlan& pl) {
  if (!pl.everything) return;
  m.check_everything();
  if (m.is_sam2() && !job.pred_iou_thresh) pl.eo.pred_iou_thresh = 0.8;
  if (job.m2m && !m.is_sam2())
    throw_usage("--m2m is SAM 2's generator's refinement (use_m2m); " + m.config.path +
                " is a SAM v1 folder, whose generator has none");
}

json sam_objects_json(const std::vector<SamObject>& objs, const SamPrediction* p) {
  json a = json::array();
  for (size_t i = 0; i < objs.size(); ++i) {
    json o = {{"label", objs[i].label}};
    if (objs[i].box) o["box"] = *objs[i].box;
    if (!objs[i].points.empty()) {
      o["points"] = objs[i].points;
      o["point_labels"] = objs[i].point_labels;
    }
    if (p) {
      o["iou_pred"] = p->iou.at(i);
      o["mask_token"] = p->chosen.at(i);
      o["area"] = p->area.at(i);
      if (!p->object_score.empty()) o["object_score"] = p->object_score.at(i);  // SAM 2
      if (!p->gt_iou.empty()) o["iou"] = p->gt_iou.at(i), o["dice"] = p->gt_dice.at(i), o["pa"] = p->gt_pa.at(i);
    }
    a.push_back(o);
  }
  return a;
}

json sam_masks_json(const std::vector<SamMask>& masks) {
  json a = json::array();
  for (size_t i = 0; i < masks.size(); ++i)
    a.push_back({{"id", i + 1},
                 {"box", masks[i].box},
                 {"area", masks[i].area},
                 {"iou_pred", masks[i].iou_pred},
                 {"stability", masks[i].stability},
                 {"point", masks[i].point},
                 {"crop", masks[i].crop}});
  return a;
}

json sam_record(const SamJob& job, const SamModel& m, const SamPlan& pl, const std::string& key, const std::string& input,
                const std::string& output, const std::vector<SamObject>& objs, const SamPrediction& p, int w, int h) {
  return {{"tool", kSamProg},
          {"key", key},
          {"input", input},
          {"output", output},
          {"model", job.model},
          {"architecture", m.config.architecture},
          {"variant", m.config.variant},
          {"enhanced", m.enhancing},
          {"feat_weight", m.enhancing ? json(m.config.feat_weight) : json(nullptr)},
          {"robust", m.robust},
          {"hq", m.hq},
          {"hq_token_only", m.hq ? json(job.hq_token_only) : json(nullptr)},
          {"input_size", {w, h}},
          {"multimask", job.multimask},
          {"fill", pl.fill},
          {pl.everything ? "masks" : "objects", pl.everything ? sam_masks_json(p.everything) : sam_objects_json(objs, &p)},
          {"dtype", job.dtype}};
}

// What --resume compares and the mask PNG records: every setting that
// decides the mask.
json sam_settings(const SamJob& job, const SamPlan& pl, bool enhancing, bool robust, bool hq,
                  const std::string& model_files,
                  const std::string& key, const std::string& input_hash, const std::string& labels_hash) {
  json s = {{"key", key},
            {"input", input_hash},
            {"model_files", model_files},
            {"enhanced", enhancing},
            {"multimask", job.multimask},
            {"fill", pl.fill},
            {"dtype", job.dtype}};
  // Recorded only when on: masks made before RobustSAM and HQ-SAM existed still resume.
  if (robust) s["robust"] = true;
  if (hq) s["hq"] = job.hq_token_only ? "hq_token_only" : "sam+hq";
  if (pl.everything) {
    s["everything"] = {{"points_per_side", pl.eo.points_per_side},
                       {"pred_iou_thresh", pl.eo.pred_iou_thresh},
                       {"stability_thresh", pl.eo.stability_score_thresh},
                       {"nms_thresh", pl.eo.box_nms_thresh}};
    // Recorded when used, so masks made before crop layers existed still resume.
    if (pl.eo.crop_n_layers > 0) {
      s["everything"]["crop_layers"] = pl.eo.crop_n_layers;
      s["everything"]["crop_nms_thresh"] = pl.eo.crop_nms_thresh;
      s["everything"]["crop_overlap"] = pl.eo.crop_overlap_ratio;
      s["everything"]["crop_points_downscale"] = pl.eo.crop_n_points_downscale_factor;
    }
    if (pl.eo.min_mask_region_area > 0) s["everything"]["min_region_area"] = pl.eo.min_mask_region_area;
    if (pl.eo.use_m2m) s["everything"]["m2m"] = true;
  } else if (pl.from_labels) {
    s["prompts_from"] = labels_hash;
    s["prompt_type"] = job.prompt_type;
    s["points"] = pl.how.kind == SamPromptKind::box ? json(batch::kNotApplicable) : json(pl.how.points);
    s["seed"] = pl.how.kind == SamPromptKind::box ? json(batch::kNotApplicable) : json(job.seed);
    s["skip"] = pl.how.skip;
  } else {
    s["prompts"] = pl.prompt_text;
  }
  return s;
}

void sam_write_mask(const std::string& path, const Image& labels, const std::string& provenance) {
  write_file_atomic(path, png_add_text(encode_image(labels, ImageFormat::png), {{"rass", provenance}}));
}

SamModelOptions sam_model_options(const SamJob& job) {
  SamModelOptions o;
  o.dir = job.model;
  o.enhance = job.enhance;
  o.robust = job.robust;
  o.hq = job.hq;
  o.hq_token_only = job.hq_token_only;
  o.device = job.device;
  o.dtype = job.dtype;
  return o;
}

void set_sam_threads(const SamJob& job, int jobs) {
  nn::set_item_threads(job.threads, jobs);
}

// GleSAM's scores over a run: the mean of every object's IoU, Dice and pixel
// accuracy against its label's pixels (one object per image there: the mean
// over images).
struct SamScores {
  std::mutex mu;
  double iou = 0, dice = 0, pa = 0;
  size_t objects = 0;
  void add(const SamPrediction& p) {
    const std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < p.gt_iou.size(); ++i) iou += p.gt_iou[i], dice += p.gt_dice[i], pa += p.gt_pa[i], ++objects;
  }
  void report(bool quiet) const {
    if (quiet || objects == 0) return;
    std::fprintf(stderr, "%s: %zu object(s) against their label maps: mean IoU %.4f, mean Dice %.4f, mean PA %.4f\n",
                 kSamProg, objects, iou / double(objects), dice / double(objects), pa / double(objects));
  }
};

// The embedding and masks of one image.
SamPrediction run_sam(const SamModel& m, const Image& rgb, const std::vector<SamObject>& objs, const SamPlan& pl,
                      bool multimask, int fill, const Image* gt) {
  c10::InferenceMode guard;
  if (pl.everything) {
    SamPrediction p;
    p.everything = m.everything(rgb, pl.eo);
    p.labels = m.instance_map(p.everything, rgb.width, rgb.height);
    for (SamMask& k : p.everything) k.mask = k.edited = torch::Tensor();  // painted: the pixels are not kept
    return p;
  }
  if (objs.empty()) {  // nothing to segment: the map is all `fill`
    SamPrediction p;
    p.labels = Image(rgb.width, rgb.height, 1, fill > 255 ? 16 : 8);
    const size_t n = p.labels.samples();
    if (p.labels.depth == 8)
      std::fill(p.labels.u8(), p.labels.u8() + n, uint8_t(fill));
    else
      std::fill(p.labels.u16(), p.labels.u16() + n, uint16_t(fill));
    return p;
  }
  const SamInput in = m.prepare(rgb);
  SamDecoderFeatures features;  // RobustSAM's or HQ-SAM's, when on; SAM 2's always
  const torch::Tensor z = m.embed(in, &features);
  return m.predict(z, objs, in, multimask, fill, false, 16, gt, features);
}

int run_sam_single(const SamJob& job) {
  const std::string in = job.inputs[0];
  const std::string name = in == "-" ? "<stdin>" : in;
  if (job.output.empty()) throw_usage("no output: pass -o FILE or -o - (one image), or -O DIR (batch)");
  batch::refuse_batch_flags_for_one(job.resume, job.shard, "one image (-o FILE)");
  if (job.output != "-" && format_from_extension(job.output) != ImageFormat::unknown &&
      format_from_extension(job.output) != ImageFormat::png)
    throw_usage("-o " + job.output + ": rass-sam writes PNG masks (with their settings in a text chunk); name it .png");
  batch::claim_stdout({{"-o -", job.output == "-"}, {"--json", job.json}});
  SamPlan pl = make_sam_plan(job);
  RunFiles files(job.model, {}, {job.prompts_from, job.manifest});
  files.add_input(in);
  if (job.prompts_from == "-") files.add_input("-");  // the file stdin is must not be -o
  files.check_output_file(job.output, "-o");
  const batch::OneOutputHold held({job.output});
  const std::string key = in == "-" ? "stdin" : path_stem(in);
  const std::vector<uint8_t> in_bytes = read_image_bytes(in);
  const Image rgb = to_rgb8(decode_image(in_bytes, name), name);  // bad images fail before the model is loaded
  std::vector<uint8_t> label_bytes;
  if (pl.from_labels) {
    if (fs::is_directory(job.prompts_from))
      throw_usage("--prompts-from " + job.prompts_from + " is a directory; with one image it names a label map file");
    label_bytes = read_image_bytes(job.prompts_from);
  }
  const std::string label_name = job.prompts_from == "-" ? "<stdin>" : job.prompts_from;
  Image gt;
  const std::vector<SamObject> objs = sam_item_objects(pl, key, rgb, label_bytes, label_name, gt);  // before the model
  const SamModel m(sam_model_options(job));
  fit_sam_plan(m, job, pl);
  set_sam_threads(job, 1);
  const SamPrediction p =
      for_input(name, [&] { return run_sam(m, rgb, objs, pl, job.multimask, pl.fill, pl.from_labels ? &gt : nullptr); });
  const std::string settings = batch::provenance_text(
      kSamProg, sam_settings(job, pl, m.enhancing, m.robust, m.hq, batch::files_fingerprint({job.model}), key, batch::bytes_hash(in_bytes),
                             pl.from_labels ? batch::bytes_hash(label_bytes) : ""));
  sam_write_mask(job.output, p.labels, settings);
  if (job.json)
    batch::write_report("-", json_text(sam_record(job, m, pl, key, in, job.output, objs, p, rgb.width, rgb.height)) + "\n");
  SamScores scores;
  scores.add(p);
  scores.report(job.quiet);
  return 0;
}

int run_sam_batch(const SamJob& job) {
  if (job.output_dir.empty()) throw_usage("batch mode (several inputs, a directory or --manifest) needs -O DIR");
  if (!job.output.empty()) throw_usage("-o names the one output of a single image; in batch mode use -O DIR");
  SamPlan pl = make_sam_plan(job);
  if (pl.from_labels && !fs::is_directory(job.prompts_from))
    throw_usage("--prompts-from " + job.prompts_from + ": in batch mode it names a directory of <key>.png label maps");
  batch::InputSpec spec;
  spec.roles = {{"image", {"image", "lq", "path"}, true, ""}};
  spec.inputs = job.inputs;
  spec.manifest = job.manifest;
  spec.skip_dirs = {job.output_dir};
  if (pl.from_labels) spec.skip_dirs.push_back(job.prompts_from);
  spec.allow_stdin = false;
  spec.name_room = 4;  // <key>.png
  std::vector<batch::Item> all = batch::collect_items(spec);
  auto [mine, mine_input] = batch::shard_items(all, job.shard);
  RunFiles files(job.model, {}, {job.manifest});
  for (const std::string& in : job.inputs) files.add_input(in);
  for (const batch::Item& it : all)
    if (!it.paths.empty() && !it.paths[0].empty()) files.add_input(it.paths[0]);
  if (pl.from_labels) files.add_input(job.prompts_from);
  auto out_of = [&](const std::string& k) { return path_join(job.output_dir, k) + ".png"; };
  auto labels_of = [&](const std::string& k) { return path_join(job.prompts_from, k) + ".png"; };
  // Each item's label map is an input too: an output must not land on one
  // (-O above both folders, a key "labels/a").
  std::error_code ec;
  if (pl.from_labels)
    for (const batch::Item& it : all)
      if (it.error.empty() && fs::exists(labels_of(it.key), ec)) files.add_input(labels_of(it.key));
  files.check_output_dir(job.output_dir, "-O", false);
  for (batch::Item& it : mine)
    if (it.error.empty()) files.check_item_outputs(it, {{out_of(it.key), "-O"}});
  const auto locks = batch::lock_output_dirs({job.output_dir}, job.shard, kSamProg);
  const SamModel m(sam_model_options(job));
  fit_sam_plan(m, job, pl);
  const std::string model_fp = batch::files_fingerprint({job.model});
  batch::ResumeTally resumed;
  const int workers = group_workers(std::max(1, job.jobs), mine.size(), 1);
  set_sam_threads(job, workers);
  batch::OrderedLines lines(job.json ? "-" : "");
  batch::Reporter reporter(kSamProg);
  SamScores scores;
  struct Input {
    const Image* rgb = nullptr;
    const std::vector<SamObject>* objects = nullptr;
    const Image* gt = nullptr;
  };
  struct Ready {
    bool skipped = false;
    Image rgb, gt;
    std::vector<SamObject> objects;
    std::string provenance;
    Input input;
  };
  auto prepare_item = [&](size_t i, Ready& rd) {
    const batch::Item& it = mine[i];
    const std::vector<uint8_t> bytes = read_image_bytes(it.paths[0]);
    std::vector<uint8_t> label_bytes;
    if (pl.from_labels) {
      const std::string labels = labels_of(it.key);
      require_found_file(labels, "a label map of --prompts-from DIR");  // a FIFO blocked the batch
      label_bytes = read_image_bytes(labels);
    }
    const json settings = sam_settings(job, pl, m.enhancing, m.robust, m.hq, model_fp, it.key, batch::bytes_hash(bytes),
                                       pl.from_labels ? batch::bytes_hash(label_bytes) : "");
    if (job.resume && batch::resume_skips(out_of(it.key), {}, settings, it.key, i, resumed, lines)) {
      rd.skipped = true;
      return;
    }
    rd.provenance = batch::provenance_text(kSamProg, settings);
    rd.rgb = to_rgb8(decode_image(bytes, it.paths[0]), it.paths[0]);
    rd.objects = sam_item_objects(pl, it.key, rd.rgb, label_bytes, labels_of(it.key), rd.gt);
    rd.input = Input{&rd.rgb, &rd.objects, pl.from_labels ? &rd.gt : nullptr};
  };
  auto write_item = [&](size_t i, const Ready& rd, SamPrediction& p) {
    const batch::Item& it = mine[i];
    sam_write_mask(out_of(it.key), p.labels, rd.provenance);
    scores.add(p);
    if (lines.enabled())
      lines.put(i, json_text(sam_record(job, m, pl, it.key, it.paths[0], out_of(it.key), rd.objects, p, rd.rgb.width,
                                        rd.rgb.height)) +
                       "\n");
  };
  const batch::Tally tally = run_model_items<Ready, Input, SamPrediction>(
      mine, 1, workers, job.quiet, reporter, m.device, overlaps_device(m.device, false), prepare_item,
      [&](const std::vector<Input>& inputs, std::vector<std::exception_ptr>& failed) {
        std::vector<SamPrediction> out(inputs.size());
        failed.assign(inputs.size(), nullptr);
        for (size_t k = 0; k < inputs.size(); ++k) {
          try {
            out[k] = run_sam(m, *inputs[k].rgb, *inputs[k].objects, pl, job.multimask, pl.fill, inputs[k].gt);
          } catch (...) {
            failed[k] = std::current_exception();
          }
        }
        return out;
      },
      write_item,
      [&](size_t i, const std::string& msg) {
        if (lines.enabled()) lines.put(i, json_text(json({{"key", mine[i].key}, {"error", msg}})) + "\n");
      });
  lines.finish();
  if (!job.quiet) resumed.report(kSamProg, "mask(s)");
  scores.report(job.quiet);  // the masks made by this run (not those --resume kept)
  const size_t skipped = resumed.kept_count();
  batch::print_batch_summary(kSamProg, "segmented", tally, skipped, job.shard, mine.size(), all.size(), job.quiet);
  return tally.exit_code();
}

}  // namespace

int run_sam_tool(const SamJob& job) {
  if (job.inputs.empty() && job.manifest.empty()) throw_usage("no input: give an image, a directory, '-' or --manifest");
  if (job.model.empty()) throw_usage("no model: pass -m DIR (a SAM model folder; scripts/convert_sam.py makes one)");
  batch::claim_stdin(job.inputs, {{"--prompts-from -", job.prompts_from == "-"}, {"--manifest -", job.manifest == "-"}});
  std::error_code ec;
  const bool single = job.output_dir.empty() && job.manifest.empty() && job.inputs.size() == 1 &&
                      (job.inputs[0] == "-" || !fs::is_directory(job.inputs[0], ec));
  try {
    return single ? run_sam_single(job) : run_sam_batch(job);
  } catch (const c10::Error& e) {
    throw_runtime(describe_allocation_failure(e.what_without_backtrace()));
  }
}

}  // namespace rass::model
