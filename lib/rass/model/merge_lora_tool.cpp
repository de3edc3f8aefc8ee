#include "rass/model/merge_lora_tool.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/batch/output_guard.hpp"
#include "rass/batch/report.hpp"
#include "rass/core/error.hpp"
#include "rass/core/oom_message.hpp"
#include "rass/core/printable.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/version.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/component.hpp"
#include "rass/model/device.hpp"
#include "rass/model/lora_inventory.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/model/lora_surgery.hpp"
#include "rass/model/config.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/model/seg_init.hpp"
#include "rass/model/segment_model.hpp"
#include "rass/metrics/class_names.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/threads.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace rass::model {

namespace {

constexpr const char* kTool = "rass-merge-lora";

void set_threads(const MergeLoraJob& a) {
  nn::set_cpu_threads(a.threads);
}

void say(const MergeLoraJob& a, const std::string& text) {
  if (!a.quiet && !a.json) std::fprintf(stderr, "%s: %s\n", kTool, printable_message(text).c_str());
}

void print_json(const json& j) { std::printf("%s\n", json_text(j, 2).c_str()); }

// Output checks before any work: never over or into an input (exit 2).
// `files` are plain input files (LoRA files; their adapter_config.json, which
// the alpha may be read from, counts too). `bases` are component sources: a
// folder counts whole (with the model folder around a component folder); a
// lone file brings its config and, for a sharded base, the index and shards.
void guard_outputs(const MergeLoraJob& a, const std::vector<std::string>& files,
                   const std::vector<ComponentSource>& bases = {}) {
  batch::OutputGuard g;
  std::error_code ec;
  for (const auto& p : files) {
    if (p.empty()) continue;
    g.add_input(p);
    if (fs::is_regular_file(p, ec)) g.add_input(path_join(fs::path(p).parent_path().string(), "adapter_config.json"));
  }
  for (const auto& b : bases) {
    if (b.path.empty() || !fs::exists(b.path, ec)) continue;  // reported when it is loaded
    g.add_input(b.path);
    g.add_input(b.config);
    ComponentFiles f;
    try {
      f = find_component(b);
    } catch (const std::exception&) {
      continue;  // a broken base is reported, naming what is wrong, when it is loaded
    }
    // Outside the try: a refusal here (stderr on an input) is not a broken base.
    for (const auto& w : f.weights) g.add_input(w);
    g.add_input(f.config_path);
    g.add_input(f.dir);
    g.add_input(f.model_dir);
    for (const auto& w : f.weights) g.add_input(w + ".index.json");
    if (!f.weights.empty()) {
      // A sharded base: its index names the shards.
      const fs::path d = fs::path(f.weights.front()).parent_path();
      for (const auto& e : fs::directory_iterator(d.empty() ? fs::path(".") : d, ec))
        if (e.path().filename().string().find(".index.json") != std::string::npos) g.add_input(e.path().string());
    }
  }
  if (!a.output.empty()) g.check_output_file_outside_dirs(a.output, "-o");
  if (!a.output_dir.empty()) g.check_output_dir(a.output_dir, "-O");
  // The -O folder is written whole (its weights files, hard links to the
  // base's): a -o file inside it would replace one of them or be replaced.
  if (!a.output.empty() && a.output != "-" && !a.output_dir.empty() &&
      batch::OutputGuard::path_within(batch::OutputGuard::normalised_path(a.output),
                                      batch::OutputGuard::normalised_path(a.output_dir)))
    throw_usage("-o " + a.output + " is inside -O " + a.output_dir +
                ": the folder's own files could replace it or be replaced by it; write -o outside the folder");
  if (!a.output_dir.empty() && fs::exists(a.output_dir, ec))
    throw_usage("-O " + a.output_dir + " exists; the output folder must be new (remove it or choose another)");
}

std::vector<std::string> lora_paths(const MergeLoraJob& a) {
  std::vector<std::string> v;
  for (const auto& l : a.loras) v.push_back(l.path);
  return v;
}

// One rank for a whole LoRA file (its "rank"/"lora_alpha" metadata, PEFT's r
// and lora_alpha): a rank above a layer's full rank min(out, in*k*k) would
// only add zero rows (extract) or parameters that can add nothing (init-seg:
// --rank 100000 wrote 3.2 GB for a tiny model), so it is refused, naming the
// first such layer.
void check_rank_fits(const std::vector<std::pair<std::string, nn::LoraLayer*>>& layers, int64_t rank,
                     const std::string& advice) {
  for (const auto& [path, layer] : layers) {
    const torch::Tensor& wt = layer->base_weight();
    const int64_t out_dim = wt.size(0), in_dim = wt.numel() / std::max<int64_t>(1, wt.size(0));
    const int64_t most = std::min(out_dim, in_dim);
    if (rank > most)
      throw_usage("--rank " + std::to_string(rank) + " is above the full rank of layer " + path + " (" +
                  std::to_string(most) + " = min(out " + std::to_string(out_dim) + ", in*k*k " + std::to_string(in_dim) +
                  ")); choose --rank " + std::to_string(most) + " or less, " + advice);
  }
}

// Loads each LoRA file and folds it into the weights at once (PEFT's
// merge_and_unload, in float32), so files whose adapters share names (the
// default_encoder/_decoder/_others of OSEDiff and SCR) do not collide.
// A key that fits no layer, or a LoRA whose shapes do not fit, is refused
// with its name (load_lora, exit 3).
json merge_lora_files(torch::nn::Module& m, const MergeLoraJob& a) {
  json files = json::array();
  int k = 0;
  for (const LoraSpec& spec : a.loras) {
    LoraLoadReport r = load_lora_file(m, spec.path, spec.scale, k++, "model", a.quiet ? "" : kTool);
    size_t merged = 0;
    try {
      merged = nn::merge_and_unload_lora(m);  // refuses weights it would make non-finite
    } catch (const Error& e) {
      throw_bad_input(spec.path, "at scale " + json(spec.scale).dump() + ", " + e.what());
    }
    json ads = json::object();
    for (const auto& [name, n] : r.adapters) ads[name] = n;
    files.push_back({{"file", spec.path}, {"scale", spec.scale}, {"adapters", ads}, {"layers_merged", merged},
                     {"full_weights", r.full_weights}, {"alpha_assumed", r.alpha_guessed}});
    std::string text = spec.path + ": merged " + std::to_string(merged) + " layer adapter(s) at scale " + json(spec.scale).dump();
    for (const auto& [name, n] : r.adapters) text += ", " + name + " on " + std::to_string(n);
    if (!r.full_weights.empty()) text += "; " + std::to_string(r.full_weights.size()) + " full weight(s) replaced";
    say(a, text);
  }
  return files;
}

std::string weights_in(const std::string& dir, const std::string& component, const std::string& kind) {
  return path_join(path_join(dir, component), canonical_weight_name(kind));
}

int merge(const MergeLoraJob& a) {
  if (a.loras.empty()) throw_usage("merge needs at least one --lora FILE[:SCALE]");
  if (a.output.empty() && a.output_dir.empty()) throw_usage("merge needs -o FILE and/or -O DIR");
  batch::claim_stdout({{"-o -", a.output == "-"}, {"--json", a.json}});
  guard_outputs(a, lora_paths(a), {{a.model, a.component, a.config}});
  set_threads(a);
  const torch::Device device = parse_device(a.device);
  if (!a.output_dir.empty() && find_component({a.model, a.component, a.config}).model_dir.empty())
    throw_usage("-O writes a whole model folder: --model must be a diffusers folder (with -o, any base works)");
  LoadedComponent c = load_component_module({a.model, a.component, a.config});
  const std::string comp = fs::path(c.files.dir).filename().string();
  // What -O links (the folder but the merged component, written anew): a
  // dangling link or a loop there is bad input before the merge, not a
  // failed copy after it (exit 1).
  if (!a.output_dir.empty()) FolderWriter::check_tree(c.files.model_dir, {comp});
  torch::NoGradGuard ng;
  c.module->to(device);
  json rep = {{"command", "merge"}, {"base", c.files.weights}, {"component", c.files.kind}};
  rep["loras"] = merge_lora_files(*c.module, a);
  c.module->to(torch::kCPU);
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"rass", "LoRA merged by rass-merge-lora"}};
  if (!a.output_dir.empty()) {
    FolderWriter w(a.output_dir);
    w.link_tree(c.files.model_dir, "", {comp});
    w.copy_component_extras(c.files.dir, comp);
    write_component_weights(c, weights_in(w.tmp(), comp, c.files.kind), a.dtype, meta);
    w.commit();
    rep["output_dir"] = a.output_dir;
    say(a, "wrote " + a.output_dir + " (" + comp + " merged; other components linked)");
  }
  if (!a.output.empty()) {
    write_component_weights(c, a.output, a.dtype, meta);
    rep["output"] = a.output;
    say(a, "wrote " + a.output);
  }
  if (a.json) print_json(rep);
  return 0;
}

// Names from the file (adapters, keys, the file's own name) pass through
// printable_field: an escape sequence in a key reached the terminal.
void print_inventory(const LoraInventory& inv) {
  auto P = [](const std::string& s) { return printable_field(s); };
  std::printf("%s: %s%s\n", P(inv.file).c_str(), inv.layout.empty() ? "no LoRA pairs" : inv.layout.c_str(),
              inv.prefix.empty() ? "" : (", key prefix \"" + P(inv.prefix) + "\"").c_str());
  for (const auto& [name, ad] : inv.adapters) {
    std::string ranks, alphas;
    for (int64_t r : ad.ranks) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
    for (double x : ad.alphas) alphas += (alphas.empty() ? "" : ",") + json(x).dump();
    std::printf("adapter %s: %zu layers, rank %s, alpha %s (%s), %lld parameters\n", P(name).c_str(), ad.layers.size(),
                ranks.c_str(), alphas.c_str(), ad.alpha_source.c_str(), (long long)ad.parameters);
    std::map<std::string, int> regions, kinds;
    for (const auto& p : ad.layers) {
      regions[module_region(p)]++;
      kinds[module_kind(p)]++;
    }
    std::printf("  by region:");
    for (const auto& [r, n] : regions) std::printf(" %s %d", P(r).c_str(), n);
    std::printf("\n  by module:");
    for (const auto& [r, n] : kinds) std::printf(" %s %d", P(r).c_str(), n);
    std::printf("\n");
  }
  if (!inv.full_weights.empty()) {
    std::printf("full weights:");
    for (const auto& [n, e] : inv.full_weights) std::printf(" %s (%lld)", P(n).c_str(), (long long)e);
    std::printf("\n");
  }
  if (!inv.other.empty()) std::printf("other keys: %zu, e.g. %s\n", inv.other.size(), P(inv.other.front()).c_str());
}

int list(const MergeLoraJob& a) {
  auto f = SafeTensorsFile::open(a.lora_file);
  const LoraInventory inv = lora_inventory(*f);
  json rep = inventory_json(inv);
  size_t bad = 0;
  std::string first_bad;
  if (!a.model.empty()) {
    // Which layers of the model each adapter targets, and what does not fit.
    LoadedComponent c = load_component_module({a.model, a.component, a.config});
    std::map<std::string, nn::LoraLayer*> layers;
    for (auto& [p, l] : nn::lora_layers(*c.module)) layers[p] = l;
    std::set<std::string> params;
    for (const auto& p : c.module->named_parameters(true)) params.insert(p.key());
    json match = json::array();
    for (const auto& l : inv.layers) {
      std::string status = "matches";
      auto it = layers.find(l.path);
      if (it == layers.end()) status = "no such LoRA-capable layer";
      else if (c10::IntArrayRef(l.a_shape) != c10::IntArrayRef(it->second->a_shape(l.a_shape[0])) ||
               c10::IntArrayRef(l.b_shape) != c10::IntArrayRef(it->second->b_shape(l.a_shape[0])))
        status = "shapes do not fit the layer's weight " + c10::str(it->second->base_weight().sizes());
      if (status != "matches" && bad++ == 0) first_bad = l.path + ": " + status;
      match.push_back({{"layer", l.path}, {"adapter", l.adapter}, {"status", status}});
    }
    for (const auto& [n, e] : inv.full_weights)
      if (!params.count(n) && bad++ == 0) first_bad = n + ": full weight of no parameter of the model";
    rep["model"] = {{"weights", c.files.weights}, {"kind", c.files.kind}, {"layers", match}, {"not_fitting", bad}};
    if (!a.json) {
      print_inventory(inv);
      std::printf("against %s (%s): %zu of %zu layer adapter(s) fit\n", c.files.config_path.c_str(), c.files.kind.c_str(),
                  inv.layers.size() - std::min(bad, inv.layers.size()), inv.layers.size());
      for (const auto& m : match)
        if (m["status"] != "matches")
          std::printf("  %s (%s): %s\n", m["layer"].get<std::string>().c_str(), m["adapter"].get<std::string>().c_str(),
                      m["status"].get<std::string>().c_str());
    }
  } else if (!a.json) {
    print_inventory(inv);
  }
  if (a.json) print_json(rep);
  if (bad) throw_bad_input(a.lora_file, std::to_string(bad) + " target(s) do not fit the model, first " + first_bad);
  return 0;
}

// PEFT's target_modules matching: the path itself, or a path ending in ".<target>".
bool target_matches(const std::string& path, const std::string& t) {
  return path == t ||
         (path.size() > t.size() && path.compare(path.size() - t.size(), t.size(), t) == 0 && path[path.size() - t.size() - 1] == '.');
}

std::string why_not_lora(const std::string& name, bool lora_layer_weight) {
  if (lora_layer_weight) return "outside --targets";
  auto ends = [&](const std::string& s) { return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0; };
  if (ends(".bias")) return "bias";
  if (name.find("norm") != std::string::npos) return "norm";
  if (name.find("embedding") != std::string::npos) return "embedding";
  return "not a Linear/Conv2d weight";
}

int extract(const MergeLoraJob& a) {
  if (a.tuned.empty()) throw_usage("extract needs --tuned (and --base)");
  if (a.output.empty()) throw_usage("extract needs -o FILE");
  if (a.rank < 1) throw_usage("--rank must be at least 1");
  batch::claim_stdout({{"-o -", a.output == "-"}, {"--json", a.json}});
  std::error_code ec;
  std::vector<ComponentSource> bases = {{a.model, a.component, a.config}};
  if (fs::is_directory(a.tuned, ec)) bases.push_back({a.tuned, a.component, ""});
  guard_outputs(a, {a.tuned}, bases);
  set_threads(a);
  const torch::Device device = parse_device(a.device);
  LoadedComponent base = load_component_module({a.model, a.component, a.config});
  std::vector<std::string> tuned_files;
  if (fs::is_directory(a.tuned, ec)) tuned_files = find_component({a.tuned, a.component, ""}).weights;
  else if (fs::exists(a.tuned, ec)) tuned_files = {a.tuned};
  else throw_bad_input(a.tuned, "no such file or folder");
  std::vector<std::shared_ptr<SafeTensorsFile>> opened;
  std::map<std::string, std::pair<const TensorView*, std::string>> tuned;  // name -> (view, file)
  for (const auto& w : tuned_files) {
    opened.push_back(SafeTensorsFile::open(w));
    for (const TensorView& t : opened.back()->tensors()) tuned[t.name] = {&t, w};
  }
  std::map<std::string, const TensorView*> base_views;
  for (const auto& f : base.opened)
    for (const TensorView& t : f->tensors()) base_views[t.name] = &t;
  for (const auto& [name, v] : base_views) {
    auto it = tuned.find(name);
    if (it == tuned.end()) throw_bad_input(a.tuned, "has no tensor '" + name + "' (the base has it): not the same architecture");
    if (it->second.first->shape != v->shape)
      throw_bad_input(it->second.second, "tensor '" + name + "' is " + c10::str(c10::IntArrayRef(it->second.first->shape)) +
                                             ", the base's is " + c10::str(c10::IntArrayRef(v->shape)));
  }
  for (const auto& [name, v] : tuned)
    if (!base_views.count(name)) throw_bad_input(v.second, "tensor '" + name + "' is not in the base: not the same architecture");

  std::vector<std::pair<std::string, nn::LoraLayer*>> layers;
  std::set<std::string> lora_weights;  // "<path>.weight" of every LoRA-capable layer
  for (auto& [p, l] : nn::lora_layers(*base.module)) lora_weights.insert(p + ".weight");
  for (const auto& t : a.targets) {
    bool any = false;
    for (auto& [p, l] : nn::lora_layers(*base.module)) any = any || target_matches(p, t);
    if (!any) throw_bad_input(base.files.config_path, "--targets " + t + " matches no LoRA-capable layer of the " + base.files.kind);
  }
  for (auto& [p, l] : nn::lora_layers(*base.module)) {
    bool take = a.targets.empty();
    for (const auto& t : a.targets) take = take || target_matches(p, t);
    if (take) layers.emplace_back(p, l);
  }

  check_rank_fits(layers, a.rank, "or narrow --targets");

  torch::NoGradGuard ng;
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  std::set<std::string> handled;
  json per_layer = json::array();
  size_t zero = 0;
  double kept = 0, total = 0;
  for (auto& [path, layer] : layers) {
    const std::string name = path + ".weight";
    handled.insert(name);
    const TensorView* tv = tuned.at(name).first;
    const torch::Tensor delta = to_tensor(*tv, tuned.at(name).second).to(device, torch::kDouble) -
                                layer->base_weight().detach().to(device, torch::kDouble);
    if (!torch::isfinite(delta).all().item<bool>())  // the SVD would fail with a LAPACK message naming nothing
      throw_bad_input(tuned.at(name).second, "tensor '" + name + "' holds NaN or infinity (or so does the base's)");
    if (!delta.ne(0).any().item<bool>()) {
      ++zero;
      continue;
    }
    const LowRankFactors f = low_rank_factors(delta, a.rank);
    kept += f.energy_kept * f.energy_total;
    total += f.energy_total;
    per_layer.push_back({{"layer", path}, {"shape", delta.sizes().vec()}, {"rank", f.effective_rank}, {"energy_kept", f.energy_kept}});
    for (const auto& [suffix, t] : {std::make_pair(".lora_A.weight", f.A), std::make_pair(".lora_B.weight", f.B)}) {
      keep.push_back(t.to(torch::kCPU).contiguous());
      out.push_back({path + suffix, DType::f32, keep.back().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
    }
  }
  json full = json::array();
  for (const auto& [name, v] : base_views) {
    if (handled.count(name)) continue;
    const TensorView* tv = tuned.at(name).first;
    const bool same_bytes = tv->nbytes == v->nbytes && tv->dtype == v->dtype && std::equal(v->data, v->data + v->nbytes, tv->data);
    // Files of different dtypes: equal values are no difference.
    if (same_bytes || (tv->dtype != v->dtype && torch::equal(to_tensor(*tv, tuned.at(name).second).to(torch::kDouble),
                                                             to_tensor(*v, base.files.weights.front()).to(torch::kDouble))))
      continue;
    full.push_back({{"name", name}, {"reason", why_not_lora(name, lora_weights.count(name) > 0)}});
    if (a.full_weights) out.push_back({name, tv->dtype, tv->shape, tv->data, tv->nbytes});
  }
  if (per_layer.empty() && (full.empty() || !a.full_weights))
    throw_bad_input(a.tuned, full.empty() ? "equals the base: there is no difference to extract"
                                          : "differs from the base only outside LoRA layers (" + std::to_string(full.size()) +
                                                " tensor(s)); pass --full-weights to write them");
  const double energy = total > 0 ? kept / total : 1.0;
  const std::map<std::string, std::string> meta = {{"format", "pt"},
                                                    {"lora_alpha", std::to_string(a.rank)},
                                                    {"rank", std::to_string(a.rank)},
                                                    {"rass", "extracted by rass-merge-lora (truncated SVD)"}};
  write_safetensors(a.output, out, meta);
  json rep = {{"command", "extract"},      {"base", base.files.weights}, {"tuned", tuned_files},
              {"rank", a.rank},            {"alpha", a.rank},            {"layers", per_layer},
              {"layers_extracted", per_layer.size()}, {"layers_zero_skipped", zero}, {"energy_kept", energy},
              {"full", full},              {"full_written", a.full_weights}, {"output", a.output}};
  if (a.json) {
    print_json(rep);
  } else if (!a.quiet) {
    // With -o - the safetensors bytes own stdout: the table goes to stderr.
    FILE* to = a.output == "-" ? stderr : stdout;
    for (const auto& l : per_layer)
      std::fprintf(to, "%-72s rank %3lld  energy %.6f\n", l["layer"].get<std::string>().c_str(),
                  (long long)l["rank"].get<int64_t>(), l["energy_kept"].get<double>());
    std::fprintf(to, "extracted %zu layer(s) at rank %lld, energy kept %.6f; %zu unchanged layer(s) skipped\n", per_layer.size(),
                (long long)a.rank, energy, zero);
    for (const auto& f : full)
      std::fprintf(to, "differs, not LoRA-able: %s (%s)%s\n", f["name"].get<std::string>().c_str(), f["reason"].get<std::string>().c_str(),
                  a.full_weights ? ", written as a full weight" : "");
  }
  return 0;
}

// rass-restore takes rass.json's timestep as an integer in
// [0, num_train_timesteps) of the folder's scheduler (diffusers' default 1000
// when the folder has no scheduler config).
void check_timestep(const MergeLoraJob& a) {
  int64_t steps = 1000;
  const std::string sched = path_join(path_join(a.model, "scheduler"), "scheduler_config.json");
  std::error_code ec;
  if (fs::exists(sched, ec)) {
    const json j = read_json_file(sched);
    if (j.contains("num_train_timesteps")) {
      const json& n = j["num_train_timesteps"];
      if (!n.is_number_integer() || n.get<int64_t>() < 1) throw_bad_input(sched, "num_train_timesteps must be a positive integer");
      steps = n.get<int64_t>();
    }
  }
  if (a.timestep != std::floor(a.timestep) || a.timestep < 0 || a.timestep >= double(steps))
    throw_usage("--timestep " + json(a.timestep).dump() + ": expected an integer in 0.." + std::to_string(steps - 1) +
                " (num_train_timesteps " + std::to_string(steps) + " of " + (fs::exists(sched, ec) ? sched : "the diffusers default") + ")");
}

// The new folder's head and classes, resolved before any weight is loaded.
struct SegHeadChoice {
  nn::MaskFormerHeadConfig head;
  json classes;  // a built-in set's name, or the list of names of a file
  json feature_projection;
};

SegHeadChoice choose_seg_head(const MergeLoraJob& a, const std::string& unet_config) {
  SegHeadChoice c;
  // --classes: a built-in set or a file (unreadable, empty or with an empty
  // name inside: Error(bad_input) naming the file).
  size_t n = 0;
  if (const auto* builtin = metrics::builtin_class_names(a.classes)) {
    c.classes = a.classes;
    n = builtin->size();
  } else {
    const std::vector<std::string> names = metrics::load_class_names(a.classes);
    c.classes = names;
    n = names.size();
  }
  if (a.head == "released") {
    c.head = nn::MaskFormerHeadConfig{};
  } else if (a.head == "tiny") {
    c.head = tiny_head_config();
  } else {
    std::error_code ec;
    if (!fs::exists(a.head, ec) || fs::is_directory(a.head, ec))  // a file or a pipe (`--head <(...)`)
      throw_usage("--head " + a.head + ": expected released, tiny, none or a head-config JSON file");
    const json j = read_json_file(a.head);
    if (!j.is_object()) throw_bad_input(a.head, "is not a JSON object (a Mask2Former head config, the \"head\" of segment.json)");
    if (j.contains("num_classes") && (!j["num_classes"].is_number_integer() || j["num_classes"].get<int64_t>() != int64_t(n)))
      throw_bad_input(a.head, "num_classes " + j["num_classes"].dump() + " differs from the " + std::to_string(n) + " classes of --classes " +
                                  a.classes + " (leave num_classes out: --classes sets it)");
    c.head = nn::read_mask_former_head_config(nlohmann::json::parse(j.dump()), a.head);
  }
  c.head.num_classes = int(n);
  const std::string head_src = a.head == "released" || a.head == "tiny" ? "--head " + a.head : a.head;
  if (c.head.in_channels.empty()) throw_bad_input(head_src, "in_channels is empty");
  const int64_t dim = c.head.in_channels.front();
  for (int ch : c.head.in_channels)
    if (ch != dim || dim % 128)
      throw_bad_input(head_src, "in_channels must be one width for every level, a multiple of 128 (the projection's "
                                "output; its quarter is normalised by GroupNorm(32))");
  const nn::UNetConfig ucfg = read_unet_config(unet_config);
  const std::string vae_config = path_join(path_join(a.model, "vae"), "config.json");
  const nn::VaeConfig vcfg = read_vae_config(vae_config);
  c.feature_projection =
      ras_projection_json(vcfg.block_out_channels, ucfg.block_out_channels, dim, c.head.in_strides, vae_config, unet_config);
  return c;
}

int init_seg(const MergeLoraJob& a) {
  if (a.loras.empty() && !a.no_scr) throw_usage("init-seg needs the SCR LoRA: --lora FILE[:SCALE] (or --no-scr: the plain backbone)");
  if (!a.loras.empty() && a.no_scr) throw_usage("init-seg: --no-scr and --lora exclude each other");
  if (a.output_dir.empty()) throw_usage("init-seg needs -O DIR");
  if (a.rank < 1) throw_usage("--rank must be at least 1");
  if (!(a.alpha > 0)) throw_usage("--alpha must be a positive number");
  std::vector<std::string> inputs = lora_paths(a);
  const bool with_head = a.head != "none";
  if (with_head && !metrics::builtin_class_names(a.classes)) inputs.push_back(a.classes);
  if (with_head && a.head != "released" && a.head != "tiny") inputs.push_back(a.head);
  guard_outputs(a, inputs, {{a.model, "unet", ""}, {a.model, "vae", ""}});
  set_threads(a);
  const torch::Device device = parse_device(a.device);
  std::error_code ec;
  if (!fs::is_directory(a.model, ec)) throw_usage("init-seg takes a diffusers model folder as --model (unet/, vae/, ...)");
  const ComponentFiles uf = find_component({a.model, "unet", ""});
  if (uf.model_dir.empty() || uf.kind != "unet") throw_bad_input(a.model, "is not a diffusers model folder with a UNet in unet/");
  if (a.has_timestep) check_timestep(a);
  // Head, classes and the taps' shapes first: a wrong --classes file or a
  // UNet RAS cannot tap stops before gigabytes are read.
  const SegHeadChoice seg = with_head ? choose_seg_head(a, uf.config_path) : SegHeadChoice{};
  LoadedComponent c = load_component_module({a.model, "unet", ""});
  FolderWriter::check_tree(c.files.model_dir);  // linked whole into -O (see merge)
  torch::NoGradGuard ng;
  c.module->to(device);
  json rep = {{"command", "init-seg"}};
  rep["scr"] = merge_lora_files(*c.module, a);
  // The Seg LoRA is drawn on the CPU, so a seed gives the same file whatever --device.
  c.module->to(torch::kCPU);
  // The fresh Seg LoRA: RASS's unet_lora (OSEDiff's targets without
  // conv_out), gaussian A, zero B, drawn in a fixed order from the seed.
  const LoraTargetGroups g = osediff_targets(*c.module, false);
  std::map<std::string, nn::LoraLayer*> by_path;
  for (auto& [p, l] : nn::lora_layers(*c.module)) by_path[p] = l;
  torch::manual_seed(a.seed);
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> groups = {
      {"default_encoder_s2", &g.encoder}, {"default_decoder_s2", &g.decoder}, {"default_others_s2", &g.others}};
  std::vector<std::pair<std::string, nn::LoraLayer*>> seg_layers;
  for (const auto& [name, paths] : groups)
    for (const auto& p : *paths) seg_layers.emplace_back(p, by_path.at(p));
  check_rank_fits(seg_layers, a.rank, "as the Seg LoRA covers this layer");
  json adapters = json::object(), targets = json::array();
  std::vector<std::string> names;
  for (const auto& [name, paths] : groups) {
    for (const auto& p : *paths) {
      by_path.at(p)->add_adapter(name, a.rank, a.alpha, true);
      targets.push_back(p);
    }
    adapters[name] = *paths;
    names.push_back(name);
  }
  FolderWriter w(a.output_dir);
  w.link_tree(c.files.model_dir, "",
              {"unet", "unet_plain", "rass.json", "seg_lora.safetensors", "segment.json", "seg_head.safetensors"});
  w.copy_component_extras(c.files.dir, "unet");
  // unet_plain/: the base UNet without SCR (--backbone plain), linked.
  w.link_tree(c.files.dir, "unet_plain");
  write_component_weights(c, weights_in(w.tmp(), "unet", "unet"), a.dtype,
                          {{"format", "pt"}, {"rass", "SCR LoRA merged by rass-merge-lora init-seg"}});
  json counts = {{"encoder", g.encoder.size()}, {"decoder", g.decoder.size()}, {"others", g.others.size()}};
  save_named_adapters(*c.module, names, path_join(w.tmp(), "seg_lora.safetensors"),
                      {{"format", "pt"},
                       {"lora_alpha", json(a.alpha).dump()},
                       {"rank", std::to_string(a.rank)},
                       {"init_lora_weights", "gaussian"},
                       {"seed", std::to_string(a.seed)},
                       {"adapters", "default_encoder_s2,default_decoder_s2,default_others_s2"},
                       {"trainable_full", "conv_in"}});
  json sources = {{"base", a.model}, {"scr_lora", json::array()}};
  for (const auto& l : a.loras) sources["scr_lora"].push_back({{"file", l.path}, {"scale", l.scale}});
  json meta = {{"method", "scr"}, {"stage", "ras-init"}, {"scr", !a.no_scr}};
  if (a.has_timestep) meta["timestep"] = int64_t(a.timestep);  // checked integral above
  if (!a.formula.empty()) meta["formula"] = a.formula;
  if (!a.prompt_style.empty()) meta["prompt_style"] = a.prompt_style;
  meta["seg_lora"] = {{"file", "seg_lora.safetensors"}, {"rank", a.rank},     {"alpha", a.alpha},
                      {"init", "gaussian"},             {"seed", a.seed},     {"counts", counts},
                      {"adapters", adapters},           {"targets", targets}};
  meta["trainable"] = {"conv_in"};
  meta["sources"] = sources;
  meta["tool"] = std::string(kTool) + " init-seg";
  meta["version"] = rass::version();
  write_file_atomic(path_join(w.tmp(), "rass.json"), json_file_text(meta, "rass.json", 2) + "\n");
  // segment.json and the projection + head as the released training starts
  // them, from seed + 1 (the Seg LoRA drew from seed).
  if (with_head) {
    const int seg_timestep = a.has_timestep ? int(a.timestep) : 1;  // RASS runs the UNet at t = 1
    const std::string seg_style = a.prompt_style.empty() ? "rass" : a.prompt_style;
    write_file_atomic(path_join(w.tmp(), "segment.json"),
                      json_file_text(segment_json(seg.feature_projection, seg.head, seg.classes, seg_timestep, seg_style,
                                                  std::string(kTool) + " init-seg --seed " + std::to_string(a.seed) +
                                                      " (initialised as RASS's training starts)"),
                                     "segment.json", 2) +
                          "\n");
    const SegmentFolderConfig scfg = read_segment_config(w.tmp());
    write_seg_head(path_join(w.tmp(), "seg_head.safetensors"), scfg, a.seed + 1, torch::kFloat,
                   {{"format", "pt"}, {"rass", "rass-merge-lora init-seg: initialised as the released training starts"},
                    {"seed", std::to_string(a.seed + 1)}});
  }
  w.commit();
  rep["output_dir"] = a.output_dir;
  rep["seg_lora"] = {{"rank", a.rank}, {"alpha", a.alpha}, {"seed", a.seed}, {"counts", counts}};
  if (with_head)
    rep["head"] = {{"head", a.head}, {"classes", a.classes}, {"num_classes", seg.head.num_classes},
                 {"num_queries", seg.head.num_queries}, {"hidden_dim", seg.head.hidden_dim},
                 {"projection_dim", seg.feature_projection["projection_dim"]}};
  say(a, "wrote " + a.output_dir + (a.no_scr ? ": the plain backbone in unet/ (--no-scr)" : ": SCR merged into unet/") +
             ", Seg LoRA rank " + std::to_string(a.rank) + " on " +
             std::to_string(g.size()) + " layers (encoder " + std::to_string(g.encoder.size()) + ", decoder " +
             std::to_string(g.decoder.size()) + ", others " + std::to_string(g.others.size()) + "), conv_in trainable; " +
             (with_head ? (a.head == "released" || a.head == "tiny" ? a.head : std::string("given")) + " head for " +
                              std::to_string(seg.head.num_classes) + " classes (" + a.classes + ")"
                        : std::string("no head (--head none)")) +
             ", unet_plain/ linked");
  if (a.json) print_json(rep);
  return 0;
}

int expand_channels(const MergeLoraJob& a) {
  if (a.factor < 1) throw_usage("expand-channels needs a factor N >= 1");
  if (a.output_dir.empty()) throw_usage("expand-channels needs -O DIR");
  guard_outputs(a, {}, {{a.model, a.component, a.config}});
  const ComponentFiles f = find_component({a.model, a.component, a.config});
  if (f.kind != "unet") throw_bad_input(f.config_path, "expand-channels works on a UNet (UNet2DConditionModel config)");
  if (!f.model_dir.empty())  // linked into -O but for the expanded component (see merge)
    FolderWriter::check_tree(f.model_dir, {fs::path(f.dir).filename().string()});
  json cfg = f.config;
  auto channels = [&](const char* key) -> int64_t {
    if (!cfg.contains(key) || !cfg[key].is_number_integer() || cfg[key].get<int64_t>() < 1)
      throw_bad_input(f.config_path, std::string("no positive integer ") + key);
    return cfg[key].get<int64_t>();
  };
  const int64_t in = channels("in_channels"), out_ch = channels("out_channels");
  // A sanity bound before any allocation: GleSAM's 64 gives 256 channels; the
  // bound leaves room for far wider UNets but not for an absurd N that would
  // only end in an allocator failure.
  constexpr int64_t kMaxChannels = 65536;
  if (a.factor > kMaxChannels / std::max(in, out_ch))
    throw_usage("expand-channels " + std::to_string(a.factor) + ": would give " + std::to_string(std::max(in, out_ch)) + " x " +
                std::to_string(a.factor) + " channels, above the limit of " + std::to_string(kMaxChannels));
  std::vector<std::shared_ptr<SafeTensorsFile>> opened;
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  std::set<std::string> done;
  for (const auto& w : f.weights) {
    opened.push_back(SafeTensorsFile::open(w));
    for (const TensorView& t : opened.back()->tensors()) {
      const bool is_in = t.name == "conv_in.weight", is_out = t.name == "conv_out.weight" || t.name == "conv_out.bias";
      if (!is_in && !is_out) {
        out.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
        continue;
      }
      const torch::Tensor x = to_tensor(t, w);
      if (is_in && (x.dim() != 4 || x.size(1) != in))
        throw_bad_input(w, "conv_in.weight is " + c10::str(x.sizes()) + ", expected [C, " + std::to_string(in) +
                               ", k, k] (in_channels of " + f.config_path + ")");
      if (is_out && x.size(0) != out_ch)
        throw_bad_input(w, t.name + " is " + c10::str(x.sizes()) + ", expected " + std::to_string(out_ch) +
                               " outputs (out_channels of " + f.config_path + ")");
      keep.push_back((is_in ? repeat_input_channels(x, a.factor) : repeat_output_channels(x, a.factor)).contiguous());
      out.push_back({t.name, t.dtype, keep.back().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
      done.insert(t.name);
    }
  }
  for (const char* need : {"conv_in.weight", "conv_out.weight", "conv_out.bias"})
    if (!done.count(need)) throw_bad_input(f.weights.front(), std::string("no tensor '") + need + "'");
  cfg["in_channels"] = in * a.factor;
  cfg["out_channels"] = out_ch * a.factor;
  FolderWriter w(a.output_dir);
  std::string comp_rel;
  if (!f.model_dir.empty()) {
    comp_rel = fs::path(f.dir).filename().string();
    w.link_tree(f.model_dir, "", {comp_rel});
  }
  if (!f.dir.empty()) w.copy_component_extras(f.dir, comp_rel);
  write_file_atomic(path_join(path_join(w.tmp(), comp_rel), "config.json"), json_file_text(cfg, "config.json", 2) + "\n");
  write_safetensors(path_join(path_join(w.tmp(), comp_rel), canonical_weight_name("unet")), out,
                    {{"format", "pt"}, {"rass", "GleSAM channel replication x" + std::to_string(a.factor) + " by rass-merge-lora"}});
  w.commit();
  json rep = {{"command", "expand-channels"}, {"factor", a.factor}, {"in_channels", in * a.factor},
              {"out_channels", out_ch * a.factor}, {"output_dir", a.output_dir}};
  say(a, "wrote " + a.output_dir + ": in_channels " + std::to_string(in) + " -> " + std::to_string(in * a.factor) +
             ", out_channels " + std::to_string(out_ch) + " -> " + std::to_string(out_ch * a.factor));
  if (a.json) print_json(rep);
  return 0;
}

}  // namespace

int run_merge_lora_tool(const MergeLoraJob& job) {
  try {
    switch (job.command) {
      case MergeLoraJob::Command::merge: return merge(job);
      case MergeLoraJob::Command::list: return list(job);
      case MergeLoraJob::Command::extract: return extract(job);
      case MergeLoraJob::Command::init_seg: return init_seg(job);
      case MergeLoraJob::Command::expand_channels: return expand_channels(job);
    }
    throw_usage("unknown command");
  } catch (const c10::Error& e) {
    throw_runtime(describe_allocation_failure(e.what_without_backtrace()));
  }
}

}  // namespace rass::model
