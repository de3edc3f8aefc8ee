#include "rass/train/train_config.hpp"

#include <cmath>
#include <functional>
#include <limits>

#include "rass/batch/inputs.hpp"
#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/train/stage_list.hpp"

namespace rass::train {

using json = nlohmann::ordered_json;

json loop_defaults() {
  const LoopConfig d;
  json j;
  j["steps"] = d.steps;
  j["batch"] = d.batch;
  j["micro_batch"] = d.micro_batch;
  j["optimizer"] = d.optimizer;
  j["lr"] = d.lr;
  j["weight_decay"] = d.weight_decay;
  j["beta1"] = d.beta1;
  j["beta2"] = d.beta2;
  j["eps"] = d.eps;
  j["schedule"] = d.schedule;
  j["poly_power"] = d.poly_power;
  j["lr_min"] = d.lr_min;
  j["warmup_steps"] = d.warmup_steps;
  j["warmup_factor"] = d.warmup_factor;
  j["clip_grad_norm"] = d.clip_grad_norm;
  j["ema_rate"] = d.ema_rate;
  j["amp"] = d.amp;
  j["gradient_checkpointing"] = false;  // StageEnv::gradient_checkpointing
  j["amp_dtype"] = d.amp_dtype;
  j["loss_scale"] = d.loss_scale;
  j["loss_scale_growth_interval"] = d.loss_scale_growth_interval;
  j["seed"] = d.seed;
  j["device"] = "cpu";
  j["dtype"] = "fp32";
  j["threads"] = 0;
  j["out_dir"] = "train-out";
  j["export_dir"] = d.export_dir;
  j["checkpoint_every"] = d.checkpoint_every;
  j["keep_checkpoints"] = d.keep_checkpoints;
  j["log_every"] = d.log_every;
  j["resume"] = d.resume;
  j["resume_from"] = d.resume_from;
  j["stop_after"] = d.stop_after;
  j["bucket_mb"] = d.bucket_mb;
  j["timeout_s"] = 600;  // rendezvous and collective timeout of multi-process runs
  j["progress"] = d.progress;
  j["quiet"] = d.quiet;
  return j;
}

namespace {

const char* type_name(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

[[noreturn]] void fail(const std::string& origin, bool file, const std::string& what) {
  if (file) throw_bad_input(origin, what);
  throw_usage(origin + ": " + what);
}

// `src` checked against the type of `dst` (the default) and copied into it.
void assign(json& dst, const json& src, const std::string& key, const std::string& origin, bool file) {
  auto wrong = [&](const char* want) {
    fail(origin, file, "'" + key + "' must be " + want + ", got " + type_name(src) + " (" + json_excerpt(src) + ")");
  };
  if (dst.is_object()) {
    if (!src.is_object()) wrong("an object");
    for (auto it = src.begin(); it != src.end(); ++it) {
      const std::string k = key.empty() ? it.key() : key + "." + it.key();
      if (!dst.contains(it.key())) {
        std::string known;
        for (auto d = dst.begin(); d != dst.end(); ++d) known += (known.empty() ? "" : ", ") + d.key();
        fail(origin, file, "unknown key '" + k + "' (" + (key.empty() ? "sections" : key + " has") + ": " + known + ")");
      }
      assign(dst[it.key()], it.value(), k, origin, file);
    }
    return;
  }
  if (dst.is_boolean()) {
    if (!src.is_boolean()) wrong("a boolean (true or false)");
  } else if (dst.is_number_unsigned() || dst.is_number_integer()) {
    if (!src.is_number_integer() && !src.is_number_unsigned()) wrong("an integer");
    // is_number_integer() also holds for unsigned values: 2^63.. read as int64_t would look negative.
    if (dst.is_number_unsigned() && !src.is_number_unsigned() && src.get<int64_t>() < 0)
      fail(origin, file, "'" + key + "' must not be negative, got " + src.dump());
  } else if (dst.is_number_float()) {
    if (!src.is_number()) wrong("a number");
    // Settings are used in float32 (weights, rates, loss weights): a larger
    // value failed in the work, naming no setting.
    if (std::fabs(src.get<double>()) > double(std::numeric_limits<float>::max()))
      fail(origin, file, "'" + key + "' = " + src.dump() + " is past the float32 range (about 3.4e38)");
    dst = src.get<double>();  // an integer given for a float setting stays a float
    return;
  } else if (dst.is_string()) {
    if (!src.is_string()) wrong("a string");
  } else if (dst.is_array()) {
    if (!src.is_array()) wrong("an array");
    if (!dst.empty())
      for (const auto& e : src) {
        json probe = dst.front();
        assign(probe, e, key + "[]", origin, file);
      }
  }
  dst = src;  // null defaults take any value
}

}  // namespace

json default_config(const StageInfo& stage) {
  json loop = loop_defaults();
  assign(loop, stage.loop_defaults ? stage.loop_defaults() : json::object(), "loop", stage.name + " loop defaults", false);
  json c;
  c["stage"] = stage.name;
  c["loop"] = loop;
  c[stage.name] = stage.defaults ? stage.defaults() : json::object();
  return c;
}

void set_config_value(json& config, const std::string& key, const std::string& value, const std::string& origin) {
  // Walk the dotted path; every component must exist.
  json* node = &config;
  size_t pos = 0;
  std::string walked;
  while (true) {
    const size_t dot = key.find('.', pos);
    const std::string part = key.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    walked += (walked.empty() ? "" : ".") + part;
    if (!node->is_object() || part.empty() || !node->contains(part)) {
      std::string hint;
      for (auto it = config.begin(); it != config.end(); ++it)
        if (it.value().is_object() && it.value().contains(key)) hint = " (did you mean " + it.key() + "." + key + "?)";
      throw_usage(origin + ": unknown key '" + walked + "'" + hint);
    }
    node = &(*node)[part];
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (key == "stage") throw_usage(origin + ": 'stage' is the subcommand, not a setting");
  json v;
  // An integer's leading zeros are dropped, as on every command line
  // (`--set loop.threads=01`; JSON refuses them).
  std::string text = value;
  if ((node->is_number_integer() || node->is_number_unsigned()) && text.size() > 1) {
    const size_t sign = text[0] == '-' ? 1 : 0;
    if (text.size() > sign + 1 && text[sign] == '0' && text.find_first_not_of("0123456789", sign) == std::string::npos) {
      const size_t first = text.find_first_not_of('0', sign);
      text = text.substr(0, sign) + (first == std::string::npos ? std::string("0") : text.substr(first));
    }
  }
  try {
    v = parse_json_unique_keys<json>(text);
  } catch (const std::exception&) {
    // Plain text for a string setting (--set scr.sd=models/sd21 needs no quotes).
    if (!node->is_string() && !node->is_null())
      throw_usage(origin + ": '" + value + "' is not a JSON value for '" + key + "'");
    v = value;
  }
  if (node->is_string() && !v.is_string() && !v.is_null()) v = value;  // --set x.name=123 for a string setting
  assign(*node, v, key, origin, false);
}

json merge_config(const StageInfo& stage, const ConfigSources& src) {
  json c = default_config(stage);
  if (!src.file.empty()) {
    // A configuration is a few KB; the cap stops --config /dev/zero or an endless pipe.
    json f = read_json_file(src.file, size_t(16) << 20, Keys::unique);
    if (!f.is_object()) throw_bad_input(src.file, "a configuration file holds one JSON object");
    if (f.contains("stage")) {
      if (!f["stage"].is_string() || f["stage"].get<std::string>() != stage.name)
        throw_bad_input(src.file, "configuration of stage " + f["stage"].dump() + ", not of '" + stage.name + "'");
      f.erase("stage");
    }
    assign(c, f, "", src.file, true);
  }
  for (const std::string& s : src.sets) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw_usage("--set " + s + ": expected KEY=VALUE (e.g. loop.lr=1e-4)");
    set_config_value(c, s.substr(0, eq), s.substr(eq + 1), "--set " + s);
  }
  assign(c, src.flags, "", "flags", false);
  // A setting that is not valid UTF-8 (a folder's name in another encoding)
  // cannot go into a checkpoint's or an export's JSON: named now, not as a
  // JSON library error after the models are loaded.
  std::function<void(const json&, const std::string&)> walk = [&](const json& j, const std::string& key) {
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) walk(it.value(), key.empty() ? it.key() : key + "." + it.key());
    } else if (j.is_array()) {
      for (const auto& e : j) walk(e, key);
    } else if (j.is_string() && !batch::valid_utf8(j.get<std::string>())) {
      throw_usage(key + ": the value is not valid UTF-8, so the run's configuration (checkpoints, exports) cannot "
                        "hold it: rename the file or folder");
    }
  };
  walk(c, "");
  return c;
}

LoopConfig loop_config_from(const json& config) {
  const json& j = config.at("loop");
  LoopConfig c;
  c.steps = j.at("steps").get<int64_t>();
  c.batch = j.at("batch").get<int64_t>();
  c.micro_batch = j.at("micro_batch").get<int64_t>();
  c.optimizer = j.at("optimizer").get<std::string>();
  c.lr = j.at("lr").get<double>();
  c.weight_decay = j.at("weight_decay").get<double>();
  c.beta1 = j.at("beta1").get<double>();
  c.beta2 = j.at("beta2").get<double>();
  c.eps = j.at("eps").get<double>();
  c.schedule = j.at("schedule").get<std::string>();
  c.poly_power = j.at("poly_power").get<double>();
  c.lr_min = j.at("lr_min").get<double>();
  c.warmup_steps = j.at("warmup_steps").get<int64_t>();
  c.warmup_factor = j.at("warmup_factor").get<double>();
  c.clip_grad_norm = j.at("clip_grad_norm").get<double>();
  c.ema_rate = j.at("ema_rate").get<double>();
  c.amp = j.at("amp").get<bool>();
  c.amp_dtype = j.at("amp_dtype").get<std::string>();
  c.loss_scale = j.at("loss_scale").get<double>();
  c.loss_scale_growth_interval = j.at("loss_scale_growth_interval").get<int64_t>();
  c.seed = j.at("seed").get<uint64_t>();
  c.out_dir = j.at("out_dir").get<std::string>();
  c.export_dir = j.at("export_dir").get<std::string>();
  c.checkpoint_every = j.at("checkpoint_every").get<int64_t>();
  c.keep_checkpoints = j.at("keep_checkpoints").get<int>();
  c.log_every = j.at("log_every").get<int64_t>();
  c.resume = j.at("resume").get<bool>();
  c.resume_from = j.at("resume_from").get<std::string>();
  c.stop_after = j.at("stop_after").get<int64_t>();
  c.bucket_mb = j.at("bucket_mb").get<int64_t>();
  c.progress = j.at("progress").get<bool>();
  c.quiet = j.at("quiet").get<bool>();
  c.config = config;
  if (config.contains("stage") && config["stage"].is_string())
    if (const StageInfo* info = find_stage(config["stage"].get<std::string>())) c.config_defaults = default_config(*info);
  return c;
}

}  // namespace rass::train
