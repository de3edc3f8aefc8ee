#include "rass/core/default_model.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "rass/core/error.hpp"

namespace fs = std::filesystem;

namespace rass {

namespace {

// Set for this file only by CMake (the source tree's models/ folder), so a
// build run from its tree finds the committed model without installing.
#ifndef RASS_SOURCE_MODELS_DIR
#define RASS_SOURCE_MODELS_DIR ""
#endif

bool is_model_root(const std::string& dir) {
  std::error_code ec;
  return !dir.empty() && fs::is_directory(dir + "/segment", ec) && fs::is_directory(dir + "/restore", ec);
}

std::vector<std::string> candidates() {
  std::vector<std::string> c;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) c.push_back((exe.parent_path().parent_path() / "share/rass/models/mini").string());
  if (*RASS_SOURCE_MODELS_DIR) c.push_back(std::string(RASS_SOURCE_MODELS_DIR) + "/mini");
  return c;
}

}  // namespace

std::string mini_model_root() {
  if (const char* env = std::getenv("RASS_MINI_MODEL"); env && *env) {
    if (!is_model_root(env))
      throw_usage(std::string("RASS_MINI_MODEL=") + env + ": not a mini model folder (no segment/ and restore/ in it)");
    return env;
  }
  for (const std::string& c : candidates())
    if (is_model_root(c)) return c;
  return "";
}

std::string default_model_part(const std::string& part, const std::string& tool, bool quiet) {
  const std::string root = mini_model_root();
  if (root.empty()) {
    std::string where;
    for (const std::string& c : candidates()) where += (where.empty() ? "" : ", ") + c;
    throw_usage("--model DIR is required: the embedded mini model was not found (looked in " + where +
                "; RASS_MINI_MODEL names another place)");
  }
  const std::string dir = root + "/" + part;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw_usage(root + ": the mini model has no " + part + "/ folder; pass --model DIR");
  if (!quiet)
    std::fprintf(stderr, "rass-%s: no --model: the embedded mini model %s (synthetic 128x128 scenes; pass --model for real images)\n",
                 tool.c_str(), printable_message(dir).c_str());
  return dir;
}

}  // namespace rass
