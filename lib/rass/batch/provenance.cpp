#include "rass/batch/provenance.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "rass/core/json_file.hpp"
#include "rass/core/version.hpp"
#include "rass/io/png_text.hpp"

namespace fs = std::filesystem;

namespace rass::batch {

namespace {

constexpr char kKeyword[] = "rass";

struct Fnv {
  uint64_t h = 14695981039346656037ull;  // the FNV-1a 64 offset basis
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }  // with its NUL: "ab","c" differs from "a","bc"
  void add(uint64_t v) { add(&v, sizeof v); }
  std::string hex() const {
    char b[17];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
    return b;
  }
};

void add_file(Fnv& f, const std::string& name, const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  f.add(name);
  f.add(uint64_t(st.st_size));
  f.add(uint64_t(st.st_mtim.tv_sec));
  f.add(uint64_t(st.st_mtim.tv_nsec));
}

// The value as it comes back from the chunk: strings that are not UTF-8
// were written with U+FFFD (json_text), so they are compared that way.
nlohmann::json as_written(const nlohmann::ordered_json& j) { return nlohmann::json::parse(json_text(j)); }

}  // namespace

std::string files_fingerprint(const std::vector<std::string>& paths) {
  Fnv f;
  for (const std::string& p : paths) {
    if (p.empty() || p == "-") continue;
    f.add(std::string("\x01"));  // one entry per path, even an empty folder
    std::error_code ec;
    if (!fs::is_directory(p, ec)) {
      add_file(f, "", p);
      continue;
    }
    std::vector<std::string> files;
    const auto opts = fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
    for (auto it = fs::recursive_directory_iterator(p, opts, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it.depth() > 8) it.disable_recursion_pending();  // a link loop ends here
      std::error_code e2;
      if (it->is_regular_file(e2)) files.push_back(fs::relative(it->path(), p, e2).generic_string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& rel : files) add_file(f, rel, fs::path(p) / rel);
  }
  return f.hex();
}

std::string content_hash(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!in) return "";
  Fnv f;
  unsigned char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, in.get())) > 0;) f.add(buf, n);
  return std::ferror(in.get()) ? "" : f.hex();
}

std::string provenance_text(const std::string& tool, const nlohmann::ordered_json& settings) {
  nlohmann::ordered_json j;
  j["tool"] = tool;
  j["version"] = version();
  j["settings"] = settings;
  return json_text(j);
}

bool made_with(const std::string& path, const nlohmann::ordered_json& settings, std::string* why) {
  auto say = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  const auto text = read_png_text(path, kKeyword);
  if (!text) return say("no settings recorded (made by another program or an older rass)");
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(*text).at("settings");
  } catch (const std::exception&) {
    return say("its recorded settings do not parse");
  }
  const nlohmann::json want = as_written(settings);
  if (stored == want) return true;
  std::string diff;
  for (auto it = want.begin(); it != want.end(); ++it)
    if (!stored.is_object() || !stored.contains(it.key()) || stored.at(it.key()) != it.value())
      diff += (diff.empty() ? "" : ", ") + it.key();
  if (stored.is_object())
    for (auto it = stored.begin(); it != stored.end(); ++it)
      if (!want.contains(it.key())) diff += (diff.empty() ? "" : ", ") + it.key();
  return say("other " + (diff.empty() ? std::string("settings") : diff));
}

}  // namespace rass::batch
