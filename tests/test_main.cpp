#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "test_support.hpp"

namespace rass::test {

void skip(const std::string& why) {
  std::fflush(stdout);
  std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(77);  // CTest's SKIP_RETURN_CODE
}

std::string data_path(const char* env, const std::string& fallback) {
  const char* v = std::getenv(env);
  return v && *v ? std::string(v) : fallback;
}

std::string require_data(const char* env, const std::string& fallback, const std::string& what) {
  const std::string path = data_path(env, fallback);
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec))
    skip(what + " not found at '" + path + "' (set " + env + " to its path)");
  return path;
}

std::string require_niqe_params() {
#ifdef RASS_NIQE_PARAMS_DEFAULT
  const std::string fallback = RASS_NIQE_PARAMS_DEFAULT;
#else
  const std::string fallback;
#endif
  return require_data("RASS_NIQE_PARAMS", fallback, "NIQE pristine parameters (BasicSR's niqe_pris_params.npz)");
}

}  // namespace rass::test
