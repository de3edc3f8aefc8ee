// Helpers of the training-loop tests: file bytes, the selftest stage with
// chosen settings (scratch directories: test::TempDir, test_support.hpp).
#pragma once
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/train/selftest_stage.hpp"

namespace rass::test {

inline std::vector<char> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline std::unique_ptr<train::Stage> selftest(uint64_t seed, nlohmann::ordered_json settings = {}) {
  auto info = train::selftest_stage_info();
  auto s = info.defaults();
  for (auto it = settings.begin(); it != settings.end(); ++it) s[it.key()] = it.value();
  train::StageEnv env;
  env.seed = seed;
  return info.make(s, env);
}

}  // namespace rass::test
