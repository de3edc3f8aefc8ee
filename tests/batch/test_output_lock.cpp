// batch::OutputLock: one run per output folder, shards of one count side by
// side. Two locks in one process stand for two runs: flock(2) and OFD
// byte-range locks belong to the open file, so they conflict within a process
// as between processes.
#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "rass/batch/output_lock.hpp"
#include "rass/core/error.hpp"
#include "test_support.hpp"

using rass::Error;
using rass::Shard;
using rass::batch::OutputLock;

namespace {

// The usage message of a refused lock, or "" when it was taken (and released).
std::string refused(const std::string& dir, Shard s) {
  try {
    OutputLock l(dir, s, "test");
    return "";
  } catch (const Error& e) {
    CHECK(e.exit_code() == 2);
    return e.what();
  }
}

}  // namespace

TEST_CASE("OutputLock: a whole run excludes everything and shards of one count run side by side") {
  rass::test::TempDir t;
  {
    OutputLock whole(t.path, Shard{0, 1}, "test");
    CHECK(refused(t.path, Shard{0, 1}).find("another run is writing") != std::string::npos);
    CHECK_FALSE(refused(t.path, Shard{1, 2}).empty());
  }
  OutputLock s0(t.path, Shard{0, 3}, "test");
  CHECK(refused(t.path, Shard{1, 3}).empty());
  CHECK(refused(t.path, Shard{0, 3}).find("shard 0/3") != std::string::npos);
  CHECK_FALSE(refused(t.path, Shard{0, 1}).empty());
}

TEST_CASE("OutputLock: a shard of another count is refused naming the count in use") {
  rass::test::TempDir t;
  std::optional<OutputLock> s0(std::in_place, t.path, Shard{0, 3}, "test");
  std::optional<OutputLock> s1(std::in_place, t.path, Shard{1, 3}, "test");
  for (const Shard other : {Shard{0, 2}, Shard{1, 2}, Shard{3, 4}, Shard{0, 30}}) {
    const std::string why = refused(t.path, other);
    CHECK(why.find("shards of another count (--shard I/3)") != std::string::npos);
  }
  s0.reset();  // one shard of count 3 still runs
  CHECK_FALSE(refused(t.path, Shard{0, 2}).empty());
  s1.reset();  // none: another count may start (a set resharded after its runs ended)
  CHECK(refused(t.path, Shard{0, 2}).empty());
}
