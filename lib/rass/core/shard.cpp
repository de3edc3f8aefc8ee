#include "rass/core/shard.hpp"

#include <cstdlib>

#include "rass/core/error.hpp"

namespace rass {

static bool parse_int(const std::string& s, long& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtol(s.c_str(), &end, 10);
  return end && *end == '\0';
}

Shard parse_shard(const std::string& text) {
  size_t slash = text.find('/');
  long i = 0, n = 0;
  if (slash == std::string::npos || !parse_int(text.substr(0, slash), i) ||
      !parse_int(text.substr(slash + 1), n) || n < 1 || i < 0 || i >= n)
    throw_usage("--shard '" + text + "': expected i/n with 0 <= i < n (e.g. 0/4)");
  return Shard{static_cast<int>(i), static_cast<int>(n)};
}

Shard shard_from_env() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return {};
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  long i = 0, n = 0, lo = 0;
  if (!parse_int(id, i) || !parse_int(count, n) || (min && !parse_int(min, lo)))
    throw_usage("SLURM_ARRAY_TASK_ID/COUNT/MIN are not integers");
  i -= lo;
  if (n < 1 || i < 0 || i >= n)
    throw_usage("SLURM_ARRAY_TASK_ID=" + std::string(id) + " is outside the array of " +
                std::string(count) + " tasks (min " + std::to_string(lo) + "); pass --shard i/n");
  return Shard{static_cast<int>(i), static_cast<int>(n)};
}

}  // namespace rass
