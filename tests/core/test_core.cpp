#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/rng.hpp"
#include "rass/core/shard.hpp"

using namespace rass;

TEST_CASE("keyed streams are independent of each other and reproducible") {
  CHECK(stream_seed(1, "a", "noise1") == stream_seed(1, "a", "noise1"));
  CHECK(stream_seed(1, "a", "noise1") != stream_seed(2, "a", "noise1"));
  CHECK(stream_seed(1, "a", "noise1") != stream_seed(1, "b", "noise1"));
  CHECK(stream_seed(1, "ab", "c") != stream_seed(1, "a", "bc"));
  Rng a(5, "img", "params"), b(5, "img", "params");
  for (int i = 0; i < 100; ++i) CHECK(a.next_u64() == b.next_u64());
}

TEST_CASE("FNV-1a 64 test vectors") {
  // From the FNV reference (isthe.com/chongo/tech/comp/fnv): fnv1a64("") and ("a").
  CHECK(fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
}

TEST_CASE("uniform, normal and choice have the right moments") {
  Rng r(123);
  const int n = 200000;
  double s = 0, s2 = 0, u = 0;
  std::vector<int> counts(3);
  for (int i = 0; i < n; ++i) {
    double z = r.normal();
    s += z;
    s2 += z * z;
    double v = r.uniform();
    CHECK(v >= 0);
    CHECK(v < 1);
    u += v;
    counts[r.choice({0.2, 0.7, 0.1})]++;
  }
  CHECK(std::fabs(s / n) < 0.01);
  CHECK(std::fabs(s2 / n - 1) < 0.015);
  CHECK(std::fabs(u / n - 0.5) < 0.005);
  CHECK(std::fabs(counts[1] / double(n) - 0.7) < 0.005);
  CHECK(r.choice({0, 0, 1}) == 2);
}

TEST_CASE("shards partition the items") {
  CHECK(parse_shard("2/5").index == 2);
  CHECK(parse_shard("2/5").count == 5);
  for (const char* bad : {"5/5", "-1/3", "1", "a/b", "1/0", "1/2x"}) CHECK_THROWS_AS(parse_shard(bad), Error);
  std::set<size_t> seen;
  for (int i = 0; i < 3; ++i) {
    Shard s{i, 3};
    for (size_t p = 0; p < 10; ++p)
      if (s.contains(p)) CHECK(seen.insert(p).second);
  }
  CHECK(seen.size() == 10);
}

TEST_CASE("Slurm array variables give the default shard") {
  setenv("SLURM_ARRAY_TASK_ID", "4", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
  Shard s = shard_from_env();
  CHECK(s.index == 3);
  CHECK(s.count == 4);
  unsetenv("SLURM_ARRAY_TASK_MIN");
  CHECK_THROWS_AS(shard_from_env(), Error);  // id 4 of 4 without a min of 1
  unsetenv("SLURM_ARRAY_TASK_ID");
  unsetenv("SLURM_ARRAY_TASK_COUNT");
  CHECK(shard_from_env().count == 1);
}

TEST_CASE("atomic writes leave no temporary file and report errors with the path") {
  char tmpl[] = "/tmp/rass-core-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string p = dir + "/out.bin";
  write_file_atomic(p, std::string("hello"));
  CHECK(read_file_bytes(p).size() == 5);
  write_file_atomic(p, std::string("replaced"));  // over an existing file
  CHECK(read_file_bytes(p).size() == 8);
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) entries += e.path().filename() == "out.bin" ? 1 : 100;
  CHECK(entries == 1);  // no temporary left behind
  try {
    write_file_atomic(dir + "/missing/out.bin", std::string("x"));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 1);
    CHECK(std::string(e.what()).find("missing/out.bin") != std::string::npos);
  }
  try {
    read_file_bytes(dir + "/nope.png");
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 3);
  }
  CHECK(path_stem("a/b/c.tar.png") == "c.tar");
  CHECK(path_extension_lower("x/Y.PNG") == ".png");
  std::system(("rm -rf " + dir).c_str());
}
