#include "rass/text/caption_pack.hpp"

#include "rass/core/error.hpp"
#include "rass/io/hdf5_file.hpp"

namespace rass::text {

std::vector<uint8_t> caption_pack_bytes(const CaptionMap& cm, const LabelMap& map,
                                        const std::vector<std::string>& classes, const PackInfo& info) {
  if (cm.token_ids.empty()) throw_runtime("caption-map: an HDF5 pack needs token positions (a tokenizer)");
  const uint64_t T = cm.terms.size(), L = static_cast<uint64_t>(cm.max_length), M = cm.tags.size();
  io::Hdf5Writer w;
  w.attribute("format", std::string("rass-caption-map"));
  w.attribute("format_version", int64_t{1});
  w.attribute("key", info.key);
  w.attribute("label_map", info.label_map);
  w.attribute("prompt", cm.prompt);
  w.attribute("prompt_style", info.prompt_style);
  w.attribute("similarity", info.similarity);
  w.attribute_double("threshold", info.threshold);
  w.attribute("height", int64_t{map.height});
  w.attribute("width", int64_t{map.width});
  w.attribute("max_length", int64_t{cm.max_length});

  std::vector<std::string> texts, class_names;
  std::vector<uint8_t> source, has_mask, truncated, token_mask(T * L, 0);
  std::vector<int32_t> class_index, token_count, present;
  std::vector<double> score;
  for (size_t t = 0; t < T; ++t) {
    const Term& term = cm.terms[t];
    texts.push_back(term.text);
    source.push_back(term.from_label_map);
    class_index.push_back(term.class_index);
    class_names.push_back(term.class_index >= 0 ? classes[term.class_index] : "");
    score.push_back(term.score);
    has_mask.push_back(term.pixels > 0);
    token_count.push_back(term.tokens);
    truncated.push_back(term.truncated());
    for (int p : term.positions) token_mask[t * L + p] = 1;
    if (term.from_label_map) present.push_back(term.class_index);
  }
  w.dataset_strings("terms", texts);
  w.dataset_u8("term_source", {T}, source.data());
  w.dataset_i32("class_index", {T}, class_index.data());
  w.dataset_strings("class_name", class_names);
  w.dataset_f64("score", {T}, score.data());
  w.dataset_u8("has_mask", {T}, has_mask.data());
  const std::vector<uint8_t> masks = term_masks(cm, map);
  w.dataset_u8("masks", {T, uint64_t(map.height), uint64_t(map.width)}, masks.data(), true);
  std::vector<int32_t> ids(cm.token_ids.begin(), cm.token_ids.end());
  w.dataset_i32("token_ids", {ids.size()}, ids.data());
  w.dataset_u8("token_mask", {T, L}, token_mask.data());
  w.dataset_i32("token_count", {T}, token_count.data());
  w.dataset_u8("truncated", {T}, truncated.data());
  w.dataset_strings("classes", classes);
  w.dataset_i32("classes_present", {present.size()}, present.data());

  std::vector<std::string> tags;
  std::vector<int32_t> tag_class, tag_term;
  std::vector<double> tag_score;
  std::vector<uint8_t> tag_kept;
  for (size_t i = 0; i < M; ++i) {
    tags.push_back(cm.tags[i].tag);
    tag_class.push_back(cm.tags[i].class_index);
    tag_score.push_back(cm.tags[i].score);
    tag_kept.push_back(cm.tags[i].kept);
    tag_term.push_back(cm.tag_term[i]);
  }
  w.dataset_strings("tags", tags);
  w.dataset_i32("tag_class_index", {M}, tag_class.data());
  w.dataset_f64("tag_score", {M}, tag_score.data());
  w.dataset_u8("tag_kept", {M}, tag_kept.data());
  w.dataset_i32("tag_term", {M}, tag_term.data());
  return w.finish();
}

CaptionPack read_caption_pack(const std::string& path) {
  io::Hdf5Reader r(path);
  CaptionPack p;
  p.path = path;
  auto need = [&](const std::string& name) {
    if (!r.has(name)) throw_bad_input(path, "caption pack has no dataset '" + name + "'");
  };
  // Attributes first: a file from another tool is named as such, not as a missing dataset.
  std::string format;
  try {
    format = r.attribute_string("format");
  } catch (const Error&) {
    throw_bad_input(path, "not a rass-caption-map pack (no 'format' attribute)");
  }
  if (format != "rass-caption-map") throw_bad_input(path, "format '" + format + "' is not 'rass-caption-map'");
  const int64_t version = r.attribute_int("format_version");
  if (version != 1)
    throw_bad_input(path, "caption pack format_version " + std::to_string(version) + " (this build reads version 1)");
  p.key = r.attribute_string("key");
  p.prompt = r.attribute_string("prompt");
  p.prompt_style = r.attribute_string("prompt_style");
  p.height = r.attribute_int("height");
  p.width = r.attribute_int("width");
  p.max_length = r.attribute_int("max_length");
  if (p.height < 1 || p.width < 1 || p.height > (1 << 16) || p.width > (1 << 16))
    throw_bad_input(path, "caption pack size " + std::to_string(p.width) + "x" + std::to_string(p.height) +
                              " is not a valid image size");
  if (p.max_length < 2 || p.max_length > 4096)
    throw_bad_input(path, "caption pack max_length " + std::to_string(p.max_length) + " is out of range");
  for (const char* d : {"terms", "has_mask", "masks", "token_ids", "token_mask"}) need(d);
  p.terms = r.read_strings("terms");
  const uint64_t T = p.terms.size(), H = uint64_t(p.height), W = uint64_t(p.width), L = uint64_t(p.max_length);
  auto shape = [&](const std::string& name, const std::vector<uint64_t>& want) {
    const std::vector<uint64_t> got = r.dims(name);
    if (got == want) return;
    auto text = [](const std::vector<uint64_t>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    };
    throw_bad_input(path, "caption pack dataset '" + name + "' has shape " + text(got) + ", expected " + text(want) +
                              " (terms x height x width x max_length from the header)");
  };
  shape("has_mask", {T});
  shape("masks", {T, H, W});
  shape("token_ids", {L});
  shape("token_mask", {T, L});
  p.has_mask = r.read_u8("has_mask");
  p.masks = r.read_u8("masks");
  p.token_ids = r.read_i32("token_ids");
  p.token_mask = r.read_u8("token_mask");
  for (uint8_t v : p.masks)
    if (v > 1) throw_bad_input(path, "caption pack masks hold a value other than 0 and 1");
  for (uint8_t v : p.token_mask)
    if (v > 1) throw_bad_input(path, "caption pack token_mask holds a value other than 0 and 1");
  for (int32_t id : p.token_ids)
    if (id < 0) throw_bad_input(path, "caption pack token_ids hold a negative id");
  return p;
}

}  // namespace rass::text
