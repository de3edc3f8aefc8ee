// The batch layer: key rule, listing (link loops), pairing, manifests with bad
// lines, duplicates, the per-item error policy, ordered lines, report writers
// and the output guard. Expected values are worked by hand from the rules in
// lib/rass/batch/*.hpp.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <stdexcept>

#include "rass/batch/inputs.hpp"
#include "rass/batch/ordered_lines.hpp"
#include "rass/batch/output_guard.hpp"
#include "rass/batch/report.hpp"
#include "rass/batch/run.hpp"
#include "../test_support.hpp"
#include "rass/core/error.hpp"

namespace fs = std::filesystem;
using rass::test::TempDir;
using namespace rass;
using namespace rass::batch;

namespace {

void touch(const std::string& p, const std::string& text = "x") {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p) << text;
}

InputSpec one_role(std::vector<std::string> inputs) {
  InputSpec s;
  s.roles = {{"hq", {"hq"}, true, ""}};
  s.inputs = std::move(inputs);
  return s;
}

InputSpec two_roles() {
  InputSpec s;
  s.roles = {{"prediction", {"pred", "lq"}, true, ""}, {"ground truth", {"gt", "hq"}, true, ""}};
  return s;
}

ExitCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ExitCode::ok;
}

}  // namespace

TEST_CASE("key rule: relative path without extension, or without the suffix") {
  CHECK(key_of_relative("a.png") == "a");
  CHECK(key_of_relative("sub/b.tar.png") == "sub/b.tar");
  CHECK(key_of_relative("sub/noext") == "sub/noext");
  CHECK(key_of_relative("city/x_gtFine_labelTrainIds.png", "_gtFine_labelTrainIds.png") == "city/x");
}

TEST_CASE("listing: sorted, image files only, link loops and two links to one folder list a file once") {
  TempDir t;
  touch(t / "in/b.png");
  touch(t / "in/a.jpg");
  touch(t / "in/notes.txt");
  touch(t / "in/sub/c.PNG");
  fs::create_directory_symlink("..", t / "in/sub/up");        // loop
  fs::create_directory_symlink(t / "in/sub", t / "in/again");  // second path to sub
  auto items = collect_items(one_role({t / "in"}));
  REQUIRE(items.size() == 3);
  CHECK(items[0].key == "a");
  CHECK(items[1].key == "again/c");  // "again" sorts before "sub": the first path reached wins
  CHECK(items[2].key == "b");
  for (const Item& it : items) CHECK(it.error.empty());
}

TEST_CASE("listing skips output directories and reports empty input as bad input") {
  TempDir t;
  touch(t / "in/a.png");
  touch(t / "in/out/a.png");
  InputSpec s = one_role({t / "in"});
  s.skip_dirs = {t / "in/out"};
  CHECK(collect_items(s).size() == 1);
  fs::create_directories(t / "empty");
  CHECK(code_of([&] { collect_items(one_role({t / "empty"})); }) == ExitCode::bad_input);
}

TEST_CASE("duplicate keys: the first is kept, each later one is a bad item naming both") {
  TempDir t;
  touch(t / "in/a.jpg");
  touch(t / "in/a.png");
  touch(t / "in/b.png");
  auto items = collect_items(one_role({t / "in", t / "in/b.png"}));
  REQUIRE(items.size() == 4);
  CHECK(items[0].error.empty());
  CHECK(items[1].error == t / "in/a.png" + ": has the same key 'a' as " + t / "in/a.jpg" +
                              " (outputs and pairs are named by key): rename one of them");
  CHECK(items[2].error.empty());
  CHECK(items[3].error.find("same key 'b'") != std::string::npos);
}

TEST_CASE("pairing two trees by key; --match-stem by file name; unpaired items are bad") {
  TempDir t;
  touch(t / "p/x.png");
  touch(t / "p/sub/y.png");
  touch(t / "p/only.png");
  touch(t / "g/x.png");
  touch(t / "g/other/y.png");
  InputSpec s = two_roles();
  s.inputs = {t / "p", t / "g"};
  auto items = collect_items(s);
  // keys in order: only, other/y, sub/y, x
  REQUIRE(items.size() == 4);
  CHECK(items[0].key == "only");
  CHECK(items[0].error.find("no ground truth with key 'only'") != std::string::npos);
  CHECK(items[1].key == "other/y");
  CHECK(items[1].error.find("no prediction with key 'other/y'") != std::string::npos);
  CHECK(items[2].key == "sub/y");
  CHECK(items[3].key == "x");
  CHECK(items[3].paths == std::vector<std::string>{t / "p/x.png", t / "g/x.png"});
  s.match_stem = true;
  items = collect_items(s);
  REQUIRE(items.size() == 3);
  CHECK(items[2].key == "y");
  CHECK(items[2].error.empty());
  CHECK(items[2].paths[1] == t / "g/other/y.png");
  // A directory with a file, and two stdins, are usage errors.
  s.inputs = {t / "p", t / "g/x.png"};
  CHECK(code_of([&] { collect_items(s); }) == ExitCode::usage);
  s.inputs = {"-", "-"};
  CHECK(code_of([&] { collect_items(s); }) == ExitCode::usage);
}

TEST_CASE("manifests: field lookup, TSV columns, keys, and bad lines as bad items") {
  TempDir t;
  touch(t / "m/list.jsonl",
        "{\"lq\": \"lq/a.png\", \"hq\": \"hq/a.png\", \"key\": \"k1\"}\n"  // 1: aliases lq/hq, key field
        "pred/sub/b.png\tgt/b.png\n"                                        // 2: TSV; key: the first path's stem
        "# a comment\n"
        "\n"
        "{\"pred\": \"/abs/c.png\", \"gt\": \"g.png\"}\n"  // 5: absolute path
        "{\"pred\": \"p.png\"}\n"                          // 6: no gt
        "{\"pred\": 3, \"gt\": \"g.png\"}\n"               // 7: pred not a string
        "{\"pred\": \"p.png\", \n"                         // 8: not JSON
        "[1, 2]\n"                                         // 9: TSV line "[1, 2]" (one column): no gt
        "{\"pred\": \"../up.png\", \"gt\": \"g.png\"}\n");  // 10: outside the folder
  InputSpec s = two_roles();
  s.manifest = t / "m/list.jsonl";
  const auto items = collect_items(s);
  REQUIRE(items.size() == 8);
  CHECK(items[0].key == "k1");
  CHECK(items[0].paths == std::vector<std::string>{t / "m/lq/a.png", t / "m/hq/a.png"});
  CHECK(items[1].key == "b");
  CHECK(items[1].paths[1] == t / "m/gt/b.png");
  CHECK(items[2].key == "c");
  CHECK(items[2].paths[0] == "/abs/c.png");
  CHECK(items[3].error == s.manifest + ": line 6: no ground truth path (a JSON field \"gt\" or \"hq\", or tab-separated column 2)");
  CHECK(items[4].error == s.manifest + ": line 7: field \"pred\" is not a string");
  CHECK(items[5].error.find(s.manifest + ": line 8: invalid JSON") == 0);
  CHECK(items[6].error.find(": line 9: no ground truth path") != std::string::npos);
  CHECK(items[7].key == "up");
  CHECK(items[7].error.empty());
}

TEST_CASE("manifests: lines end in LF, CRLF or a lone CR") {
  TempDir t;
  touch(t / "m/list.tsv", "a.png\tg/a.png\r\nb.png\tg/b.png\rc.png\tg/c.png\n{\"pred\": \"d.png\", \"gt\": 5}\r");
  InputSpec s = two_roles();
  s.manifest = t / "m/list.tsv";
  const auto items = collect_items(s);
  REQUIRE(items.size() == 4);
  CHECK(items[0].key == "a");
  CHECK(items[1].key == "b");
  CHECK(items[1].paths[1] == t / "m/g/b.png");
  CHECK(items[2].key == "c");
  CHECK(items[3].error.find(": line 4: ") != std::string::npos);  // a CRLF counts one line, a lone CR one
}

TEST_CASE("run_items: every failure kind is counted, named and does not stop the others") {
  std::vector<Item> items;
  for (const char* k : {"ok1", "bad", "runtime", "alloc", "std", "preset", "ok2"})
    items.push_back({k, {std::string("/data/") + k + ".png"}, ""});
  items[5].error = "/data/preset.png: no partner";
  std::vector<std::string> messages(items.size());
  std::vector<Outcome> outcomes(items.size(), Outcome::ok);
  Reporter rep("rass-test");
  const Tally tally = run_items(
      items, {2, true}, rep,
      [&](size_t i, int) {
        const std::string k = items[i].key;
        if (k == "bad") throw_bad_input("/data/bad.png", "not an image");
        if (k == "runtime") throw_runtime("disk on fire");
        if (k == "alloc") throw std::bad_alloc();
        if (k == "std") throw std::out_of_range("vector::at");
        if (k == "preset") FAIL("an item with an error must not run");
      },
      [&](size_t i, Outcome o, const std::string& m) {
        outcomes[i] = o;
        messages[i] = m;
      });
  CHECK(tally.ok == 2);
  CHECK(tally.bad == 2);
  CHECK(tally.failed == 3);
  CHECK(tally.exit_code() == 1);
  CHECK(outcomes[1] == Outcome::bad);
  CHECK(messages[1] == "/data/bad.png: not an image");  // already named: not prefixed twice
  CHECK(messages[2] == "/data/runtime.png: disk on fire");
  CHECK(messages[3] == "/data/alloc.png: out of memory");
  CHECK(messages[4] == "/data/std.png: vector::at");
  CHECK(messages[5] == "/data/preset.png: no partner");
  CHECK(outcomes[6] == Outcome::ok);
  CHECK(Tally{3, 1, 0}.exit_code() == 3);
  CHECK(Tally{3, 0, 0}.exit_code() == 0);
}

TEST_CASE("run_item_groups: groups of consecutive items, per-item errors, a throwing group fails only its items") {
  std::vector<Item> items;
  for (const char* k : {"a", "b", "bad", "preset", "c", "g1", "g2"})
    items.push_back({k, {std::string("/data/") + k + ".png"}, ""});
  items[3].error = "/data/preset.png: no partner";
  std::vector<std::vector<size_t>> groups;
  std::mutex mu;
  std::vector<Outcome> outcomes(items.size(), Outcome::ok);
  std::vector<std::string> messages(items.size());
  Reporter rep("rass-test");
  const Tally tally = run_item_groups(
      items, 3, {2, true}, rep,
      [&](const std::vector<size_t>& idx, int, std::vector<std::exception_ptr>& errors) {
        {
          std::lock_guard<std::mutex> lock(mu);
          groups.push_back(idx);
        }
        for (size_t k = 0; k < idx.size(); ++k)
          if (items[idx[k]].key == "bad") errors[k] = std::make_exception_ptr(Error(ExitCode::bad_input, "too small"));
        for (size_t i : idx)
          if (items[i].key == "g1") throw_runtime("device lost");
      },
      [&](size_t i, Outcome o, const std::string& m) {
        outcomes[i] = o;
        messages[i] = m;
      });
  std::sort(groups.begin(), groups.end());
  // Groups of 3 by position; the item with an error is not handed to the body.
  CHECK(groups == std::vector<std::vector<size_t>>{{0, 1, 2}, {4, 5}, {6}});
  CHECK(tally.ok == 3);
  CHECK(tally.bad == 2);
  CHECK(tally.failed == 2);
  CHECK(messages[2] == "/data/bad.png: too small");  // the item's name prefixed
  CHECK(outcomes[3] == Outcome::bad);
  CHECK(outcomes[4] == Outcome::failed);  // its group threw
  CHECK(messages[5] == "/data/g1.png: device lost");
  CHECK(outcomes[6] == Outcome::ok);
}

TEST_CASE("key_problem: keys that cannot name a file inside the output directory") {
  using rass::batch::key_problem;
  // "./a" and "a/./b" name files as they always did (OUT/./a.png is OUT/a.png).
  for (const char* good : {"a", "sub/a", ".hidden", "a.b", "a..b", "x/.y", "./a", "a/./b"})
    CHECK_MESSAGE(key_problem(good).empty(), good);
  // A last component "." names no file (key "." named the output "OUT/..png").
  for (const char* dot : {".", "a/."}) CHECK_MESSAGE(key_problem(dot).find("'.'") != std::string::npos, dot);
  CHECK(key_problem("../a").find("'..'") != std::string::npos);
  CHECK(key_problem("/abs").find("absolute") != std::string::npos);
  CHECK(key_problem("a/").find("ends with '/'") != std::string::npos);
  CHECK(!key_problem("").empty());
}

TEST_CASE("key_problem: names past 255 bytes with the tool's extension") {
  using rass::batch::key_problem;
  const std::string k251(251, 'k'), k252(252, 'k'), k256(256, 'd');
  // 251 + ".png" is 255 bytes: a file name; 252 + 4 is not.
  CHECK(key_problem(k251, 4).empty());
  CHECK(key_problem(k252, 4).find("256 bytes, longer than a file name can be (255 bytes)") != std::string::npos);
  // Without name_room (a tool that names no file by key) the length is not its business.
  CHECK(key_problem(k252).empty());
  // Only the last part takes the extension; a folder part has 255 bytes at most.
  CHECK(key_problem(std::string(255, 'd') + "/a", 4).empty());
  CHECK(key_problem(k256 + "/a", 4).find("a folder name of 256 bytes") != std::string::npos);
  CHECK(key_problem("sub/" + k251, 4).empty());
  CHECK(!key_problem("sub/" + k252, 4).empty());
  // Bytes, not characters: 127 two-byte letters + ".json" is 259 bytes.
  std::string e127;
  for (int i = 0; i < 127; ++i) e127 += "\xc3\xa9";
  CHECK(key_problem(e127, 5).find("259 bytes") != std::string::npos);
}

namespace {
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}
std::string text_of(const std::string& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

TEST_CASE("OrderedLines: input order whatever the finishing order; the file appears only at finish") {
  TempDir d;
  const std::string p = d.path + "/per-image.jsonl";
  touch(p, "old\n");  // an earlier run's file stays whole until the new one is complete
  {
    OrderedLines lines(p);
    REQUIRE(lines.enabled());
    lines.put(2, "c\n");
    lines.put(0, "a\n");
    CHECK(text_of(p) == "old\n");
    lines.put(1, "b\n");
    CHECK(text_of(p) == "old\n");
    lines.finish();
  }
  CHECK(text_of(p) == "a\nb\nc\n");
  CHECK(names_in(d.path) == std::vector<std::string>{"per-image.jsonl"});
  {
    OrderedLines lines(p);  // no finish(): an interrupted run
    lines.put(0, "x\n");
  }
  CHECK(text_of(p) == "a\nb\nc\n");
  CHECK(names_in(d.path) == std::vector<std::string>{"per-image.jsonl"});
  {
    OrderedLines lines(p);
    lines.put(1, "only the second\n");
    CHECK_THROWS_AS(lines.finish(), Error);  // a line never came: nothing is written
  }
  CHECK(text_of(p) == "a\nb\nc\n");
  CHECK(!OrderedLines("").enabled());
  // A missing folder is made; one that cannot be (a file on the way) is an error.
  CHECK(OrderedLines(d.path + "/missing/x.jsonl").enabled());
  { std::ofstream(d.path + "/afile") << "x"; }
  CHECK_THROWS_AS(OrderedLines(d.path + "/afile/x.jsonl"), Error);
}

TEST_CASE("OrderedLines: a write failure is reported at finish naming the file") {
  REQUIRE(::access("/dev/full", W_OK) == 0);  // Linux always has it
  OrderedLines lines("/dev/full");  // a device: written in place, every write fails (ENOSPC)
  lines.put(0, "a\n");
  lines.put(1, "b\n");
  try {
    lines.finish();
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 1);
    CHECK(std::string(e.what()).find("/dev/full") != std::string::npos);
  }
}

TEST_CASE("OrderedLines: a killed run leaves nothing under the final name, and no temporary where O_TMPFILE works") {
  TempDir d;
  bool unnamed = false;  // where there is no O_TMPFILE or /proc, a named temporary is used and stays
#ifdef O_TMPFILE
  const int probe = ::open(d.path.c_str(), O_TMPFILE | O_WRONLY, 0644);
  unnamed = probe >= 0 && ::access("/proc/self/fd", X_OK) == 0;
  if (probe >= 0) ::close(probe);
#endif
  const std::string p = d.path + "/log.jsonl";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    OrderedLines lines(p);
    lines.put(0, "written, never finished\n");
    ::kill(::getpid(), SIGKILL);  // as a job's time limit would
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(!fs::exists(p));
  if (unnamed) CHECK(names_in(d.path).empty());
  else MESSAGE("no O_TMPFILE here: only the final name was checked");
}
