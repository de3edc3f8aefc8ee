// FolderWriter (model/model_folder.hpp), the one way a model folder is
// written (rass-merge-lora, rass-model, rass-train's exports): nothing
// visible before commit(), a refused or replaced destination, names as the
// user gave them in messages. Torch-free: plain doctest.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/signals.hpp"
#include "rass/model/model_folder.hpp"
#include "test_support.hpp"

using namespace rass;
using rass::test::TempDir;
namespace fs = std::filesystem;

namespace {

void put(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string get(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int entries(const std::string& dir) {
  int n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

}  // namespace

TEST_CASE("FolderWriter: nothing at the destination before commit; an abandoned writer leaves nothing") {
  TempDir t;
  put(t.path + "/src/vae/config.json", "{}");
  put(t.path + "/src/unet/config.json", "{\"u\":1}");
  put(t.path + "/src/unet/diffusion_pytorch_model.safetensors", "weights");
  {
    model::FolderWriter w(t.path + "/out/");  // "out/" names the folder "out"
    w.link_tree(t.path + "/src", "", {"unet"});
    w.copy_component_extras(t.path + "/src/unet", "unet");
    CHECK(!fs::exists(t.path + "/out"));
    w.commit();
  }
  CHECK(get(t.path + "/out/vae/config.json") == "{}");
  CHECK(get(t.path + "/out/unet/config.json") == "{\"u\":1}");
  CHECK(!fs::exists(t.path + "/out/unet/diffusion_pytorch_model.safetensors"));  // weights are the caller's to write
  // Linked, not copied, on one filesystem.
  CHECK(fs::equivalent(t.path + "/out/vae/config.json", t.path + "/src/vae/config.json"));
  {
    model::FolderWriter w(t.path + "/gone");
    w.link_tree(t.path + "/src", "");
  }
  CHECK(!fs::exists(t.path + "/gone"));
  CHECK(entries(t.path) == 2);  // src and out: no temporary folder left
}

TEST_CASE("FolderWriter: an existing destination is refused or replaced whole") {
  TempDir t;
  put(t.path + "/src/a.txt", "new");
  put(t.path + "/dst/old.txt", "old");
  CHECK_THROWS_AS(model::FolderWriter(t.path + "/dst"), Error);
  CHECK(get(t.path + "/dst/old.txt") == "old");
  // Replace mode takes only an earlier export (its .rass-export mark) or an empty folder.
  try {
    model::FolderWriter w(t.path + "/dst", model::FolderWriter::Existing::replace);
    FAIL("a folder of other files was taken for an export");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 2);
    CHECK(std::string(e.what()).find("not an earlier export") != std::string::npos);
  }
  CHECK(get(t.path + "/dst/old.txt") == "old");
  put(t.path + "/dst/.rass-export", "");
  {
    model::FolderWriter w(t.path + "/dst", model::FolderWriter::Existing::replace);
    w.link_tree(t.path + "/src", "");
    CHECK(get(t.path + "/dst/old.txt") == "old");  // untouched until commit
    w.commit();
  }
  CHECK(get(t.path + "/dst/a.txt") == "new");
  CHECK(fs::exists(t.path + "/dst/.rass-export"));  // an export again
  CHECK(!fs::exists(t.path + "/dst/old.txt"));  // replaced, not merged
  CHECK(entries(t.path) == 2);                  // the old folder is gone too
  put(t.path + "/file", "x");
  try {
    model::FolderWriter w(t.path + "/file", model::FolderWriter::Existing::replace);
    FAIL("a file is not replaced by a folder");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 2);
    CHECK(std::string(e.what()).find("is not a folder") != std::string::npos);
  }
  for (const std::string& bad : {std::string(), std::string("."), std::string(".."), std::string("/"), t.path + "/..",
                                 t.path + "/sub/../.", t.path + "/sub/.././/"})
    CHECK_THROWS_AS(model::FolderWriter(bad, model::FolderWriter::Existing::replace), Error);
  // "new/." and "new/./" are the folder "new" (as mkdir takes them).
  CHECK(model::FolderWriter::check_destination(t.path + "/new/.", model::FolderWriter::Existing::refuse) ==
        t.path + "/new");
  {
    model::FolderWriter w(t.path + "/new/./");
    w.commit();
  }
  CHECK(fs::is_directory(t.path + "/new"));
}

TEST_CASE("FolderWriter: an export that another run made while this writer worked is left to it") {
  TempDir t;
  fs::create_directories(t.path + "/runA");
  fs::create_directories(t.path + "/runB");
  // Run B's writer starts while the folder is free (as two runs started at once)...
  model::FolderWriter::set_export_run(t.path + "/runB");
  auto b = std::make_unique<model::FolderWriter>(t.path + "/exp", model::FolderWriter::Existing::replace);
  put(b->tmp() + "/weights", "B");
  // ... run A exports there first ...
  model::FolderWriter::set_export_run(t.path + "/runA");
  {
    model::FolderWriter a(t.path + "/exp", model::FolderWriter::Existing::replace);
    put(a.tmp() + "/weights", "A");
    a.commit();
  }
  // ... and B's commit is refused: A's export stays.
  model::FolderWriter::set_export_run(t.path + "/runB");
  try {
    b->commit();
    FAIL("run B replaced run A's export");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 2);
    CHECK(std::string(e.what()).find("another run") != std::string::npos);
  }
  b.reset();
  CHECK(get(t.path + "/exp/weights") == "A");
  // A's own next export replaces it.
  model::FolderWriter::set_export_run(t.path + "/runA/.");
  {
    model::FolderWriter a(t.path + "/exp", model::FolderWriter::Existing::replace);
    put(a.tmp() + "/weights", "A2");
    a.commit();
  }
  CHECK(get(t.path + "/exp/weights") == "A2");
  model::FolderWriter::set_export_run("");
}

TEST_CASE("FolderWriter empty_only: takes over an empty folder, never one that filled meanwhile or a link") {
  TempDir t;
  put(t.path + "/src/a.txt", "new");
  const model::FolderWriter::Existing empty_only = model::FolderWriter::Existing::empty_only;
  fs::create_directory(t.path + "/empty");
  {
    model::FolderWriter w(t.path + "/empty", empty_only);
    w.link_tree(t.path + "/src", "");
    w.commit();
  }
  CHECK(get(t.path + "/empty/a.txt") == "new");
  put(t.path + "/full/keep.txt", "precious");
  CHECK_THROWS_AS(model::FolderWriter(t.path + "/full", empty_only), Error);
  // A folder that appears, or fills, between the check and the commit (a
  // second init, the user's files) is left as it is; the new one goes.
  for (const bool appears : {true, false}) {
    const std::string d = t.path + (appears ? "/race1" : "/race2");
    if (!appears) fs::create_directory(d);
    model::FolderWriter w(d, empty_only);
    w.link_tree(t.path + "/src", "");
    put(d + "/keep.txt", "precious");
    try {
      w.commit();
      FAIL("a folder that filled meanwhile was replaced");
    } catch (const Error& e) {
      CHECK(e.exit_code() == 2);
      CHECK(std::string(e.what()).find("was made or filled by someone else while this ran") != std::string::npos);
    }
    CHECK(get(d + "/keep.txt") == "precious");
    CHECK(!fs::exists(d + "/a.txt"));
  }
  // A link to an empty folder is refused (it was replaced by a folder and
  // its target left empty).
  fs::create_directory(t.path + "/target");
  fs::create_directory_symlink(t.path + "/target", t.path + "/link");
  try {
    model::FolderWriter w(t.path + "/link", empty_only);
    FAIL("a symbolic link was taken");
  } catch (const Error& e) {
    CHECK(e.exit_code() == 2);
    CHECK(std::string(e.what()).find("is a symbolic link") != std::string::npos);
  }
  CHECK(fs::is_symlink(t.path + "/link"));
  CHECK(entries(t.path) == 7);  // src empty full race1 race2 target link: no temporary left
  // The path as the kernel walks it: a file before a ".." is refused (it
  // was normalised away and the folder written beside it), and a ".."
  // after a link climbs from the link's target.
  put(t.path + "/afile", "x");
  CHECK_THROWS_WITH_AS(model::FolderWriter(t.path + "/afile/../out", empty_only),
                       doctest::Contains("afile is not a folder"), Error);
  CHECK_THROWS_WITH_AS(model::FolderWriter(t.path + "/afile/sub", empty_only),
                       doctest::Contains("afile is not a folder"), Error);
  fs::create_directories(t.path + "/real/sub");
  fs::create_directory_symlink(t.path + "/real/sub", t.path + "/lnk");
  {
    model::FolderWriter w(t.path + "/lnk/../out2", empty_only);
    w.link_tree(t.path + "/src", "");
    w.commit();
  }
  CHECK(get(t.path + "/real/out2/a.txt") == "new");
  CHECK(!fs::exists(t.path + "/out2"));
}

TEST_CASE("FolderWriter: a SIGTERM before commit removes the temporary folder and only it") {
  TempDir t;
  put(t.path + "/src/unet/big.bin", "gigabytes");
  put(t.path + "/outside/keep.txt", "keep");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    install_signal_cleanup();
    model::FolderWriter w(t.path + "/model");
    w.link_tree(t.path + "/src", "");                                  // hard links to the user's files
    fs::create_directories(w.tmp() + "/a/b/c");
    put(w.tmp() + "/a/b/c/deep.txt", "x");
    fs::create_directory_symlink(t.path + "/outside", w.tmp() + "/link");  // never followed
    ::raise(SIGTERM);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM));
  CHECK(entries(t.path) == 2);  // src and outside: no model, no model.tmp.*
  CHECK(get(t.path + "/src/unet/big.bin") == "gigabytes");
  CHECK(get(t.path + "/outside/keep.txt") == "keep");
}

TEST_CASE("copy_file_to: data and permission bits, a new file only, errors name the file as shown") {
  TempDir t;
  put(t.path + "/a", std::string(300000, 'q'));
  ::chmod((t.path + "/a").c_str(), 0640);
  copy_file_to(t.path + "/a", t.path + "/b", "OUT/b");
  CHECK(get(t.path + "/b") == std::string(300000, 'q'));
  struct stat st {};
  REQUIRE(::stat((t.path + "/b").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  try {
    copy_file_to(t.path + "/a", t.path + "/b", "OUT/b");
    FAIL("an existing file is not written over");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("OUT/b: cannot create") != std::string::npos);
  }
  CHECK_THROWS_AS(copy_file_to(t.path + "/missing", t.path + "/c", "OUT/c"), Error);
  CHECK(!fs::exists(t.path + "/c"));
  CHECK_THROWS_AS(copy_file_to(t.path, t.path + "/d", "OUT/d"), Error);  // a folder is not copied as a file
  CHECK(!fs::exists(t.path + "/d"));
}

TEST_CASE("FolderWriter: temporaries of a killed writer are removed, a live writer's and others kept") {
  TempDir t;
  const std::string dst = t.path + "/model";
  auto temp = [&](const std::string& n, bool mark) {
    fs::create_directories(dst + n + "/unet");
    put(dst + n + "/unet/big.bin", "gigabytes");
    if (mark) put(dst + n + "/.rass-writer", "");
  };
  temp(".tmp.1.0", true);          // its writer was killed: the mark's lock is free
  temp(".tmp.2.0", true);          // a live writer (below) holds the lock
  temp(".tmp.3.0", false);         // no mark: not ours to judge
  temp(".tmp.x.0", true);          // not temporary_path's form
  temp("-other.tmp.5.0", true);    // another destination's
  const int live = ::open((dst + ".tmp.2.0/.rass-writer").c_str(), O_RDWR);
  REQUIRE(live >= 0);
  REQUIRE(::flock(live, LOCK_EX) == 0);
  {
    model::FolderWriter w(dst);
    w.commit();
  }
  ::close(live);
  CHECK(!fs::exists(dst + ".tmp.1.0"));
  CHECK(fs::exists(dst + ".tmp.2.0/unet/big.bin"));
  CHECK(fs::exists(dst + ".tmp.3.0"));
  CHECK(fs::exists(dst + ".tmp.x.0"));
  CHECK(fs::exists(dst + "-other.tmp.5.0"));
  CHECK(fs::is_directory(dst));
  CHECK(!fs::exists(dst + "/.rass-writer"));  // the mark never stays in the finished folder
  // Replacing: the old folder waits inside the temporary and is gone after.
  put(dst + "/old.txt", "old");
  put(dst + "/.rass-export", "");
  {
    model::FolderWriter w(dst, model::FolderWriter::Existing::replace);
    put(w.tmp() + "/new.txt", "new");
    w.commit();
  }
  CHECK(get(dst + "/new.txt") == "new");
  CHECK(!fs::exists(dst + "/old.txt"));
  CHECK(!fs::exists(dst + "/.rass-old"));
}
