// core/signals: every case runs in a forked child (the handlers are
// process-wide and the child dies by its signal); the parent reads how it
// ended and what it left on disk.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>

#include "rass/core/file.hpp"
#include "rass/core/signals.hpp"
#include "test_support.hpp"

namespace {

// Runs `body` in a child with stderr on /dev/null; the wait status.
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDERR_FILENO);
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

bool killed_by(int status, int sig) { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }

void touch(const std::string& path) { std::ofstream(path) << "x"; }

}  // namespace

TEST_CASE("signals: SIGTERM removes an armed temporary and the process ends by SIGTERM") {
  rass::test::TempDir dir;
  const std::string f = dir / "out.png.tmp.1.0";
  touch(f);
  const int status = in_child([&] {
    rass::install_signal_cleanup();
    rass::SignalCleanup c(f.c_str());
    ::raise(SIGTERM);
    return 0;  // not reached
  });
  CHECK(killed_by(status, SIGTERM));
  CHECK_FALSE(std::filesystem::exists(f));
}

TEST_CASE("signals: a disarmed name and an unarmed file stay") {
  rass::test::TempDir dir;
  const std::string done = dir / "renamed", other = dir / "other";
  touch(done);
  touch(other);
  const int status = in_child([&] {
    rass::install_signal_cleanup();
    rass::SignalCleanup c(done.c_str());
    c.disarm();
    ::raise(SIGINT);
    return 0;
  });
  CHECK(killed_by(status, SIGINT));
  CHECK(std::filesystem::exists(done));
  CHECK(std::filesystem::exists(other));
}

TEST_CASE("signals: a signal ignored at start stays ignored") {
  rass::test::TempDir dir;
  const std::string f = dir / "t";
  touch(f);
  const int status = in_child([&] {
    ::signal(SIGHUP, SIG_IGN);  // as nohup leaves it
    rass::install_signal_cleanup();
    rass::SignalCleanup c(f.c_str());
    ::raise(SIGHUP);
    return 7;
  });
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 7));
  CHECK(std::filesystem::exists(f));
}

TEST_CASE("signals: a deferred stop records the first signal and a second ends the process") {
  rass::test::TempDir dir;
  const std::string f = dir / "t";
  touch(f);
  const int status = in_child([&] {
    rass::install_signal_cleanup();
    rass::SignalCleanup c(f.c_str());
    rass::DeferredStop d("test");
    ::raise(SIGUSR1);
    if (rass::stop_signal() != SIGUSR1) return 1;
    if (!std::filesystem::exists(f)) return 2;
    ::raise(SIGINT);
    return 3;
  });
  CHECK(killed_by(status, SIGINT));
  CHECK_FALSE(std::filesystem::exists(f));
}

TEST_CASE("signals: after the deferred stop ends signals are fatal again and die_by_signal ends by the recorded one") {
  const int status = in_child([] {
    rass::install_signal_cleanup();
    {
      rass::DeferredStop d("test");
      ::raise(SIGTERM);
    }
    if (rass::stop_signal() != SIGTERM) return 1;
    rass::request_stop(SIGINT);  // the first one recorded wins
    if (rass::stop_signal() != SIGTERM) return 2;
    rass::die_by_signal(rass::stop_signal());
  });
  CHECK(killed_by(status, SIGTERM));
  const int fatal_again = in_child([] {
    rass::install_signal_cleanup();
    { rass::DeferredStop d("test"); }
    ::raise(SIGTERM);
    return 0;
  });
  CHECK(killed_by(fatal_again, SIGTERM));
}

TEST_CASE("signals: AtomicFile's named temporary is armed until commit") {
  // A file that replaces another passes through a named temporary (or the
  // whole write does, without O_TMPFILE). A SIGTERM before commit leaves the
  // old file and no temporary.
  rass::test::TempDir dir;
  const std::string f = dir / "out.txt";
  touch(f);
  const int status = in_child([&] {
    rass::install_signal_cleanup();
    rass::AtomicFile a(f);
    a.write(std::string("new"));
    ::raise(SIGTERM);
    return 0;
  });
  CHECK(killed_by(status, SIGTERM));
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) n += e.path().filename() != "out.txt";
  CHECK(n == 0);
  std::ifstream in(f);
  std::string text;
  in >> text;
  CHECK(text == "x");
}

TEST_CASE("signals: names") {
  CHECK(std::string(rass::signal_name(SIGTERM)) == "SIGTERM");
  CHECK(std::string(rass::signal_name(SIGUSR1)) == "SIGUSR1");
  CHECK(std::string(rass::signal_name(64)) == "a signal");
}
