#include "rass/batch/provenance.hpp"

#include <fcntl.h>
#include <libdeflate.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <utility>

#include "rass/batch/ordered_lines.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/core/rng.hpp"
#include "rass/core/version.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/png_text.hpp"

namespace fs = std::filesystem;

namespace rass::batch {

namespace {

constexpr char kKeyword[] = "rass";

// A fingerprint's records (names, sizes, hashes) chained through core's
// FNV-1a 64, each with a NUL after it: "ab","c" differs from "a","bc".
void chain(uint64_t& h, std::string_view record) { h = fnv1a64(std::string_view("\0", 1), fnv1a64(record, h)); }

// CRC-32 and Adler-32 (zlib's conventions), continued over each piece.
struct ContentHash {
  uint32_t crc = 0, adler = 1;
  void add(const void* data, size_t n) {
    crc = libdeflate_crc32(crc, data, n);
    adler = libdeflate_adler32(adler, data, n);
  }
  std::string hex() const {
    char b[17];
    std::snprintf(b, sizeof b, "%08x%08x", crc, adler);
    return b;
  }
};

bool hidden(const std::string& name) { return !name.empty() && name[0] == '.'; }

// Every regular file under `dir` (relative names), links followed, hidden
// entries and folders already seen (a link loop, a link to a parent) left out.
void list_files(const fs::path& dir, const std::string& rel, int depth, std::set<std::pair<dev_t, ino_t>>& seen,
                std::vector<std::string>& out) {
  struct stat st {};
  if (depth > 4 || ::stat(dir.c_str(), &st) != 0 || !seen.insert({st.st_dev, st.st_ino}).second) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    const std::string name = e.path().filename().string();
    if (hidden(name)) continue;
    const std::string r = rel.empty() ? name : rel + "/" + name;
    std::error_code e2;
    if (e.is_directory(e2)) list_files(e.path(), r, depth + 1, seen, out);
    else if (e.is_regular_file(e2)) out.push_back(r);
  }
}

// The value as it comes back from the chunk: strings that are not UTF-8
// were written with U+FFFD (json_text), so they are compared that way.
nlohmann::json as_written(const nlohmann::ordered_json& j) { return nlohmann::json::parse(json_text(j)); }

}  // namespace

std::string content_hash(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::unique_ptr<uint8_t[]> buf(new uint8_t[1 << 20]);
  ContentHash h;
  for (;;) {
    const ssize_t n = ::read(fd, buf.get(), 1 << 20);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ::close(fd), "";
    if (n == 0) break;
    h.add(buf.get(), size_t(n));
  }
  ::close(fd);
  return h.hex();
}

std::string bytes_hash(const std::vector<uint8_t>& bytes) {
  ContentHash h;
  h.add(bytes.data(), bytes.size());
  return h.hex();
}

std::string text_or_hash(const std::string& text) {
  if (text.size() <= 4096) return text;
  ContentHash h;
  h.add(text.data(), text.size());
  return std::to_string(text.size()) + " bytes, hash " + h.hex();
}

std::string files_fingerprint(const std::vector<std::string>& paths) {
  uint64_t f = 0xcbf29ce484222325ULL;  // FNV-1a 64's offset basis
  for (const std::string& p : paths) {
    if (p.empty() || p == "-") continue;
    chain(f, "\x01");  // one record per path, even an empty folder
    std::error_code ec;
    std::vector<std::string> files;
    if (fs::is_directory(p, ec)) {
      std::set<std::pair<dev_t, ino_t>> seen;
      list_files(p, "", 0, seen, files);
      std::sort(files.begin(), files.end());
    } else {
      files.push_back("");
    }
    for (const std::string& rel : files) {
      const std::string file = rel.empty() ? p : p + "/" + rel;
      struct stat st {};
      if (::stat(file.c_str(), &st) != 0) continue;
      chain(f, rel);
      chain(f, std::to_string(st.st_size));
      chain(f, content_hash(file));
    }
  }
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(f));
  return b;
}

std::string provenance_text(const std::string& tool, const nlohmann::ordered_json& settings) {
  nlohmann::ordered_json j;
  j["tool"] = tool;
  j["version"] = version();
  j["settings"] = settings;
  return json_text(j);
}

bool made_with(const std::string& path, const nlohmann::ordered_json& settings, std::string* why) {
  return provenance_matches(read_png_text(path, kKeyword), settings, why);
}

bool provenance_matches(const std::optional<std::string>& text, const nlohmann::ordered_json& settings,
                        std::string* why) {
  auto say = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  if (!text) return say("no settings recorded: made by another program or an older rass, or the record is damaged");
  nlohmann::json stored;
  try {
    stored = parse_json_bounded<nlohmann::json>(*text).at("settings");
  } catch (const std::exception&) {
    return say("its recorded settings do not parse");
  }
  if (!stored.is_object()) return say("its recorded settings are not an object");
  const nlohmann::json want = as_written(settings);
  std::string diff;
  auto differs = [&](const std::string& key) { diff += (diff.empty() ? "" : ", ") + key; };
  for (auto it = want.begin(); it != want.end(); ++it) {
    if (it.key() == "outputs") {
      const nlohmann::json have = stored.contains("outputs") ? stored.at("outputs") : nlohmann::json::object();
      bool all = have.is_object();
      for (auto o = it.value().begin(); all && o != it.value().end(); ++o)
        all = have.contains(o.key()) && have.at(o.key()) == o.value();
      if (!all) differs("outputs");
    } else if (it.value() == kNotApplicable) {
      continue;
    } else if (!stored.contains(it.key()) || stored.at(it.key()) != it.value()) {
      differs(it.key());
    }
  }
  for (auto it = stored.begin(); it != stored.end(); ++it)
    if (it.key() != "outputs" && !want.contains(it.key())) differs(it.key());
  if (diff.empty()) return true;
  return say("other " + diff);
}

bool output_done(const std::string& png, const std::vector<std::string>& side, const nlohmann::ordered_json& settings,
                 std::string* why) {
  std::error_code ec;
  for (const std::string& f : side) {
    if (f.empty()) continue;
    if (!fs::exists(f, ec) || fs::file_size(f, ec) == 0) return false;
    // A cut or damaged side output is made again, as the PNG is: a .npy
    // must be as long as its header says, an image must decode.
    if (path_extension_lower(f) == ".npy" && !npy_file_complete(f)) return false;
    if (format_from_extension(f) != ImageFormat::unknown) try {
        if (read_image(f).empty()) return false;
      } catch (const std::exception&) {
        return false;
      }
  }
  if (!fs::exists(png, ec) || !made_with(png, settings, why)) return false;
  try {
    return !read_image(png).empty();
  } catch (const std::exception&) {
    return false;  // damaged: made again
  }
}

void ResumeTally::kept() {
  std::lock_guard<std::mutex> lock(mu_);
  ++kept_;
}

void ResumeTally::redone(const std::string& output, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (redone_++ == 0) first_ = output + " (" + why + ")";
}

size_t ResumeTally::kept_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kept_;
}

void ResumeTally::report(const char* prog, const char* what) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (redone_ > 0)
    // "Made again", not "were made": an item can still fail (then its old
    // output stays, and the summary counts the failure).
    std::fprintf(stderr, "%s: --resume: %zu existing %s made with other settings not kept but made again (one whose item fails this time stays as it was), e.g. %s\n",
                 prog, redone_, what, printable_message(first_).c_str());
}

bool resume_skips(const std::string& output, const std::vector<std::string>& side, const nlohmann::ordered_json& settings,
                  const std::string& key, size_t index, ResumeTally& tally, OrderedLines& lines) {
  std::string why;
  if (output_done(output, side, settings, &why)) {
    tally.kept();
    if (lines.enabled())
      lines.put(index, json_text(nlohmann::ordered_json({{"key", key}, {"output", output}, {"skipped", true}})) + "\n");
    return true;
  }
  if (!why.empty()) tally.redone(output, why);
  return false;
}

}  // namespace rass::batch
