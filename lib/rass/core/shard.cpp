#include "rass/core/shard.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "rass/core/error.hpp"

namespace rass {

// A decimal integer in [0, INT_MAX], nothing else (no sign, spaces or overflow).
static bool parse_count(const std::string& s, long& out) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  errno = 0;
  out = std::strtol(s.c_str(), nullptr, 10);
  return errno == 0 && out <= INT_MAX;
}

Shard parse_shard(const std::string& text) {
  size_t slash = text.find('/');
  long i = 0, n = 0;
  if (slash == std::string::npos || !parse_count(text.substr(0, slash), i) ||
      !parse_count(text.substr(slash + 1), n) || n < 1 || i >= n)
    throw_usage("--shard '" + text + "': expected i/n with 0 <= i < n <= 2147483647 (e.g. 0/4)");
  return Shard{static_cast<int>(i), static_cast<int>(n), true};
}

Shard shard_from_env() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  if (!id && !count) return {};
  if (!id || !count)
    throw_usage(std::string(id ? "SLURM_ARRAY_TASK_ID" : "SLURM_ARRAY_TASK_COUNT") + " is set but " +
                (id ? "SLURM_ARRAY_TASK_COUNT" : "SLURM_ARRAY_TASK_ID") +
                " is not: every task would do the whole data set; pass --shard i/n");
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  const char* step = std::getenv("SLURM_ARRAY_TASK_STEP");
  long i = 0, n = 0, lo = 0, st = 1;
  if (!parse_count(id, i) || !parse_count(count, n) || (min && !parse_count(min, lo)) ||
      (step && !parse_count(step, st)) || st < 1)
    throw_usage("SLURM_ARRAY_TASK_ID/COUNT/MIN/STEP are not non-negative integers");
  // Stepped arrays (--array=0-15:4): task ids lo, lo+st, ...; the shard is the task's position.
  if (i < lo || (i - lo) % st != 0)
    throw_usage("SLURM_ARRAY_TASK_ID=" + std::string(id) + " is not in the array (min " + std::to_string(lo) +
                ", step " + std::to_string(st) + "); pass --shard i/n");
  i = (i - lo) / st;
  if (n < 1 || i >= n)
    throw_usage("SLURM_ARRAY_TASK_ID=" + std::string(id) + " is outside the array of " + std::string(count) +
                " tasks (min " + std::to_string(lo) + ", step " + std::to_string(st) + "); pass --shard i/n");
  return Shard{static_cast<int>(i), static_cast<int>(n)};
}

}  // namespace rass
