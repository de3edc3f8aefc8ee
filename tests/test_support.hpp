// Shared helpers of the doctest binaries (implemented in tests/test_main.cpp).
//
// A test that needs data this repository does not ship (NIQE's pristine
// parameters, a real tokenizer) has its own CTest entry (tests/CMakeLists.txt:
// rass_data_test) and calls require_data_file(): when the data is missing the
// whole binary exits 77, which CTest reports as skipped, never as passed.
#pragma once
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace rass::test {

// Ends the test program with exit code 77 (CTest: skipped), saying why on stderr.
[[noreturn]] void skip(const std::string& why);

// The value of environment variable `env` when set and non-empty, else `fallback`.
std::string data_path(const char* env, const std::string& fallback);

// data_path(env, fallback) when that file or directory exists; otherwise
// skip() with a message naming `what`, the path and the variable to set.
std::string require_data(const char* env, const std::string& fallback, const std::string& what);

// NIQE's pristine model (BasicSR's niqe_pris_params.npz): RASS_NIQE_PARAMS, else
// <source>/../shared/data/niqe_pris_params.npz (RASS_NIQE_PARAMS_DEFAULT from CMake).
std::string require_niqe_params();

// A scratch directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/rass-test.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (!made) skip("cannot create a temporary directory under /tmp");
    path = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

}  // namespace rass::test
