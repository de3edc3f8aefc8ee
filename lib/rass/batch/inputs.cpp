#include "rass/batch/inputs.hpp"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <set>
#include <unordered_map>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/found_file.hpp"
#include "rass/io/image_files.hpp"
#include "rass/io/manifest.hpp"

namespace fs = std::filesystem;

namespace rass::batch {

std::string Item::name() const {
  for (const std::string& p : paths)
    if (!p.empty()) return p == "-" ? "<stdin>" : p;
  return key;
}

std::string key_of_relative(const std::string& rel, const std::string& suffix) {
  if (!suffix.empty() && rel.size() >= suffix.size() && rel.compare(rel.size() - suffix.size(), suffix.size(), suffix) == 0)
    return rel.substr(0, rel.size() - suffix.size());
  fs::path p(rel);
  return p.replace_extension().string();
}

namespace {

bool is_dir(const std::string& p) {
  std::error_code ec;
  return p != "-" && fs::is_directory(p, ec);
}

std::string file_name(const std::string& p) { return fs::path(p).filename().string(); }

// One file of a listed folder; `error` for a FIFO, socket or device under
// an input's name (reading it would block or never end; it was left out
// without a word).
struct Listed {
  std::string key, path, error;
};

// A role's files under `dir`, in path order.
std::vector<Listed> list_tree(const InputSpec& spec, const std::string& dir, const Role& role) {
  std::function<bool(const std::string&)> keep;
  if (!role.suffix.empty()) {
    const std::string suf = role.suffix;
    keep = [suf](const std::string& p) {
      const std::string n = file_name(p);
      return n.size() >= suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0;
    };
  } else {
    keep = spec.keep ? spec.keep : std::function<bool(const std::string&)>(has_image_extension);
  }
  std::vector<Listed> out;
  std::set<std::string> not_regular;  // told by the listing: no second stat per file
  for (const std::string& p : list_files(dir, keep, spec.skip_dirs, &not_regular)) {
    const std::string rel = spec.match_stem ? file_name(p) : fs::path(p).lexically_relative(dir).string();
    const std::string why = not_regular.count(p) ? found_file_problem(p, "an input of the folder " + dir) : "";
    out.push_back({key_of_relative(rel, role.suffix), p, why.empty() ? "" : p + ": " + why});
  }
  return out;
}

// The key of a manifest row without a "key" field: a row names a file on its
// own, as the command line does, so its stem (inputs.hpp).
std::string manifest_key(const std::string& written) { return written == "-" ? "stdin" : path_stem(written); }

std::vector<Item> from_manifest(const InputSpec& spec) {
  std::vector<Item> items;
  const std::string& m = spec.manifest;
  const std::string mname = m == "-" ? "<stdin>" : m;
  for (const ManifestRow& row : read_manifest(m)) {
    Item it;
    it.paths.assign(spec.roles.size(), "");
    const std::string where = mname + ": line " + std::to_string(row.line);
    if (!row.error.empty()) {
      it.key = "line" + std::to_string(row.line);
      it.error = row.error;
      items.push_back(std::move(it));
      continue;
    }
    std::vector<std::string> written(spec.roles.size());
    for (size_t r = 0; r < spec.roles.size(); ++r) {
      const Role& role = spec.roles[r];
      if (!row.columns.empty()) {
        if (r < row.columns.size()) written[r] = row.columns[r];
      } else {
        for (const std::string& f : role.fields) {
          if (row.fields.count(f)) {
            written[r] = row.fields.at(f);
            break;
          }
          for (const std::string& o : row.other_fields)
            if (o == f && it.error.empty()) it.error = where + ": field \"" + f + "\" is not a string";
          if (!it.error.empty()) break;
        }
      }
      if (written[r].empty() && role.required && it.error.empty()) {
        std::string names;
        for (const std::string& f : role.fields) names += (names.empty() ? "\"" : " or \"") + f + "\"";
        it.error = where + ": no " + role.name + " path (a JSON field " + names + ", or tab-separated column " +
                   std::to_string(r + 1) + ")";
      }
      if (!written[r].empty()) it.paths[r] = resolve_manifest_path(m, written[r]);
    }
    for (const std::string& o : row.other_fields)
      if (o == "key" && it.error.empty()) it.error = where + ": field \"key\" is not a string";
    if (row.fields.count("key")) it.key = row.fields.at("key");
    else it.key = written[0].empty() ? "line" + std::to_string(row.line) : manifest_key(written[0]);
    items.push_back(std::move(it));
  }
  return items;
}

std::vector<Item> from_single_role(const InputSpec& spec) {
  std::vector<Item> items;
  for (const std::string& in : spec.inputs) {
    if (in == "-" && !spec.allow_stdin)
      throw_usage("'-' (stdin) reads one " + spec.noun + "; it cannot be part of a batch");
    if (is_dir(in)) {
      for (auto& [key, p, error] : list_tree(spec, in, spec.roles[0])) items.push_back({key, {p}, error});
    } else {
      items.push_back({in == "-" ? "stdin" : path_stem(in), {in}, ""});  // a missing file is reported when read
    }
  }
  return items;
}

std::vector<Item> from_two_trees(const InputSpec& spec) {
  const std::string& a = spec.inputs[0];
  const std::string& b = spec.inputs[1];
  const Role& ra = spec.roles[0];
  const Role& rb = spec.roles[1];
  if (a == "-" && b == "-") throw_usage("only one of " + ra.name + " and " + rb.name + " can be '-' (stdin)");
  const bool da = is_dir(a), db = is_dir(b);
  if (da != db)
    throw_usage((da ? a : b) + " is a directory but " + (da ? b : a) + " is not: give two directories or two files");
  if (!da) {
    const std::string key = a != "-" ? path_stem(a) : b != "-" ? path_stem(b) : "stdin";
    return {{key, {a, b}, ""}};
  }
  // Keys of each tree (a duplicate within one tree is a bad item of its own).
  std::vector<Item> items;
  std::set<std::string> named_bad;  // keys of a FIFO or device: its partner is not reported again as alone
  auto index = [&](const std::string& dir, const Role& role, size_t slot, std::map<std::string, std::string>& by_key) {
    for (auto& [key, p, error] : list_tree(spec, dir, role)) {
      if (!error.empty()) {
        Item bad{key, {"", ""}, error};
        bad.paths[slot] = p;
        items.push_back(std::move(bad));
        named_bad.insert(key);
        continue;
      }
      auto [pos, fresh] = by_key.emplace(key, p);
      if (!fresh) {
        Item bad{key, {"", ""}, ""};
        bad.paths[slot] = p;
        bad.error = p + ": has the same key '" + key + "' as " + pos->second + " (" +
                    (spec.match_stem ? "file name" : "relative path without extension") + "): rename one of them";
        items.push_back(std::move(bad));
      }
    }
  };
  std::map<std::string, std::string> ka, kb;
  index(a, ra, 0, ka);
  index(b, rb, 1, kb);
  const std::string hint = spec.match_stem ? "" : " (keys are relative paths; --match-stem pairs by file name)";
  auto ia = ka.begin();
  auto ib = kb.begin();
  while (ia != ka.end() || ib != kb.end()) {
    if (ib == kb.end() || (ia != ka.end() && ia->first < ib->first)) {
      // A partner the role does not require (eval-iqa's ground truth for
      // no-reference metrics): the item without it.
      if (!named_bad.count(ia->first))
        items.push_back({ia->first, {ia->second, ""},
                         rb.required ? ia->second + ": no " + rb.name + " with key '" + ia->first + "' in " + b + hint
                                     : std::string()});
      ++ia;
    } else if (ia == ka.end() || ib->first < ia->first) {
      if (!named_bad.count(ib->first))
        items.push_back({ib->first, {"", ib->second},
                         ib->second + ": no " + ra.name + " with key '" + ib->first + "' in " + a + hint});
      ++ib;
    } else {
      items.push_back({ia->first, {ia->second, ib->second}, ""});
      ++ia, ++ib;
    }
  }
  return items;
}

std::string describe_sources(const InputSpec& spec) {
  std::string s;
  for (const std::string& in : spec.inputs) s += (s.empty() ? "" : ", ") + in;
  if (!spec.manifest.empty()) s += (s.empty() ? "" : ", ") + std::string("manifest ") + spec.manifest;
  return s;
}

}  // namespace

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] >> 6) != 0x2) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

std::string key_problem(const std::string& key, size_t name_room) {
  if (key.empty()) return "is empty";
  if (key[0] == '/') return "is an absolute path: keys name files inside the output directory";
  if (key.back() == '/') return "ends with '/' (is the file name only the suffix?)";
  for (const auto& part : fs::path(key))
    if (part == "..") return "contains '..': keys name files inside the output directory";
  if (fs::path(key).filename() == ".") return "ends in '.', which names no file (its output would be '.' and an extension)";
  // Keys are written in line-based and tab-separated listings (manifests,
  // tags.tsv, caption-map's key<TAB>tags lines that rass-restore --tags reads).
  if (key.find_first_of(std::string("\0\n\r\t", 4)) != std::string::npos)
    return "contains a NUL, newline, carriage return or tab character (keys go into line- and tab-separated listings)";
  if (!valid_utf8(key)) return "is not valid UTF-8";
  if (name_room > 0) {
    // NAME_MAX of Linux's filesystems (ext4, xfs, btrfs, tmpfs); temporary
    // names are shortened to fit (core/file.cpp), final names cannot be.
    constexpr size_t kNameMax = 255;
    const fs::path p(key);
    for (auto part = p.begin(); part != p.end(); ++part) {
      const size_t bytes = part->string().size() + (std::next(part) == p.end() ? name_room : 0);
      if (bytes <= kNameMax) continue;
      if (std::next(part) != p.end())
        return "has a folder name of " + std::to_string(bytes) + " bytes, longer than a file name can be (255 bytes)";
      return "makes output names of up to " + std::to_string(bytes) +
             " bytes, longer than a file name can be (255 bytes)";
    }
  }
  return "";
}

std::vector<Item> collect_items(const InputSpec& spec) {
  if (spec.roles.empty() || spec.roles.size() > 2) throw_runtime("collect_items: one or two roles");
  // --match-stem keys the files of directories; with files given one by one
  // it did nothing (rass-eval-iqa, rass-eval-miou).
  std::error_code ec;
  if (spec.match_stem && spec.manifest.empty() && !spec.inputs.empty() &&
      std::none_of(spec.inputs.begin(), spec.inputs.end(), [&](const std::string& p) { return fs::is_directory(p, ec); }))
    throw_usage("--match-stem pairs the files of two directories; files given one by one are paired as they are");
  std::vector<Item> items;
  if (spec.roles.size() == 2) {
    if (!spec.manifest.empty() && !spec.inputs.empty())
      throw_usage("give " + spec.roles[0].name + " " + spec.roles[1].name + " or --manifest, not both");
    if (spec.manifest.empty() && spec.inputs.size() != 2)
      throw_usage("give " + spec.roles[0].name + " " + spec.roles[1].name +
                  " (two directories matched by key, or two files), or --manifest FILE");
    items = spec.manifest.empty() ? from_two_trees(spec) : from_manifest(spec);
  } else {
    if (spec.inputs.empty() && spec.manifest.empty()) throw_usage("no input: give files, directories, '-' or --manifest");
    items = from_single_role(spec);
    if (!spec.manifest.empty()) {
      std::vector<Item> more = from_manifest(spec);
      items.insert(items.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
  }
  if (items.empty())
    throw_bad_input(describe_sources(spec),
                    "no inputs found" + (!spec.listed.empty()                ? " (" + spec.listed + ")"
                                         : spec.roles[0].suffix.empty() ? std::string(" (image files: .png .jpg .jpeg .ppm .pgm .pbm .pnm)")
                                                                        : " (files ending in " + spec.roles[0].suffix + ")"));
  // A key names output files under the output directory: it must stay there,
  // and names must go into JSON records and manifests (valid UTF-8).
  for (Item& it : items) {
    if (!it.error.empty()) continue;
    const std::string why = key_problem(it.key, spec.name_room);
    if (!why.empty()) it.error = it.name() + ": key '" + it.key + "' " + why;
    for (const std::string& p : it.paths)
      if (it.error.empty() && p.find('\0') != std::string::npos)  // a manifest's "\u0000": the name ended there
        it.error = p + ": a path with a NUL byte, which no file name can hold";
    for (const std::string& p : it.paths)
      if (it.error.empty() && !valid_utf8(p))
        it.error = p + ": the file name is not valid UTF-8, so records, manifests and reports cannot name it: rename it";
  }
  // One key, one item: later duplicates are bad items naming the first.
  // Keys are compared as the files they name: "./c" and "x//y" are "c" and
  // "x/y" (two items under such keys wrote one output, exit 0).
  std::unordered_map<std::string, size_t> first;
  for (size_t i = 0; i < items.size(); ++i) {
    Item& it = items[i];
    if (!it.error.empty()) continue;
    auto [pos, fresh] = first.emplace(fs::path(it.key).lexically_normal().generic_string(), i);
    if (!fresh)
      it.error = it.name() + ": has the same key '" + it.key + "' as " + items[pos->second].name() +
                 (it.key == items[pos->second].key ? "" : " ('" + items[pos->second].key + "': the same file)") +
                 " (outputs and pairs are named by key): rename one of them";
  }
  // A key's folder that is another item's output file (keys "x" and
  // "x.png/y": x.png is the first's image and the second's folder) or one of
  // the run's own files (the lock, a manifest): a failed write after the
  // work, and which item failed depended on the thread order. Only for tools
  // that name files by key (name_room), and only folders under an extension
  // some tool writes (a folder "a.v2" beside a key "a" is no output of it).
  static const std::set<std::string> written = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".json",
                                                ".npy", ".npz", ".h5", ".txt", ".safetensors"};
  for (Item& it : items) {
    if (!it.error.empty() || spec.name_room == 0) continue;
    const fs::path p = fs::path(it.key).lexically_normal();
    fs::path folder;
    for (auto part = p.begin(); it.error.empty() && std::next(part) != p.end(); ++part) {
      folder /= *part;
      const std::string name = part->string();
      if (folder == *part && (name.rfind(".rass-lock", 0) == 0 ||
                              (name.rfind("manifest", 0) == 0 && fs::path(name).extension() == ".jsonl")))
        it.error = it.name() + ": key '" + it.key + "' puts its outputs in a folder " + name +
                   ", the name of a file of the run itself: rename it";
      if (!it.error.empty() || !written.count(path_extension_lower(folder.string()))) continue;
      const auto other = first.find(fs::path(folder).replace_extension().generic_string());
      if (other != first.end() && items[other->second].error.empty())
        it.error = it.name() + ": key '" + it.key + "' puts its outputs in a folder " + folder.generic_string() +
                   ", the name of an output file of " + items[other->second].name() + " (key '" + other->first +
                   "'): rename one of them";
    }
  }
  return items;
}

ShardItems shard_items(const std::vector<Item>& all, const Shard& shard) {
  std::vector<size_t> order(all.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return all[a].key < all[b].key; });
  ShardItems out;
  for (size_t i = 0; i < order.size(); ++i)
    if (shard.contains(i)) {
      out.items.push_back(all[order[i]]);
      out.input_index.push_back(order[i]);
    }
  return out;
}

}  // namespace rass::batch
