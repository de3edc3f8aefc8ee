#include "rass/core/signals.hpp"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <csignal>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rass {
namespace {

// Every signal whose default action ends the process and that a batch
// system, terminal or pipe sends (SIGQUIT, SIGSEGV and the like are left
// alone: their core dump is the point).
constexpr int kFatal[] = {SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU, SIGXFSZ};

// A slot's life: free -> filling (the owner copies the name) -> armed ->
// free (the owner disarms) or taken (a handler removes the file; the slot is
// never reused, as the process is ending). Only lock-free atomics and
// unlink(2) are touched in the handler.
enum : int { kFree = 0, kFilling = 1, kArmed = 2, kTaken = 3 };
constexpr int kSlots = 256;
constexpr size_t kPathMax = 4096;
struct Slot {
  std::atomic<int> state{kFree};
  bool tree = false;  // a folder: removed with everything in it
  char path[kPathMax];
};
Slot slots[kSlots];
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

std::atomic<int> deferring{0};     // a DeferredStop lives
std::atomic<int> pending{0};       // the signal it recorded
const char* deferring_who = "";    // set before `deferring`, read by the handler after it

// getdents64's record (the kernel's layout; glibc's struct dirent64 is the
// same but not declared everywhere).
struct Dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

// rm -rf of `name` under the folder `parent` with system calls only (the
// handler may not allocate or take locks): never follows a symbolic link
// (unlinkat removes the link; a folder is opened only after unlinkat said it
// is one, with O_NOFOLLOW), at most 16 levels deep (a model folder has 3).
// Returns whether `name` is gone.
bool remove_tree_at(int parent, const char* name, int depth) {
  if (::unlinkat(parent, name, 0) == 0) return true;
  if (errno != EISDIR || depth >= 16) return false;
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  alignas(8) char buf[2048];
  // Entries removed while a listing is read may move the rest: list again
  // from the start until a pass removes nothing (an entry it cannot remove,
  // such as a folder past the depth limit, ends the passes too).
  for (int pass = 0; pass < 64; ++pass) {
    bool removed = false;
    ::lseek(fd, 0, SEEK_SET);
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const Dirent64* d = reinterpret_cast<const Dirent64*>(buf + off);
        off += d->d_reclen;
        const char* e = d->d_name;
        if (e[0] == '.' && (e[1] == 0 || (e[1] == '.' && e[2] == 0))) continue;
        if (remove_tree_at(fd, e, depth + 1)) removed = true;
      }
    }
    if (!removed) break;
  }
  ::close(fd);
  return ::unlinkat(parent, name, AT_REMOVEDIR) == 0;
}

void remove_temporaries() {
  for (Slot& s : slots) {
    int armed = kArmed;
    if (!s.state.compare_exchange_strong(armed, kTaken)) continue;
    if (s.tree) remove_tree_at(AT_FDCWD, s.path, 0);
    else ::unlink(s.path);
  }
}

void write_stderr(const char* text) {
  for (size_t n = std::strlen(text); n > 0;) {
    const ssize_t w = ::write(STDERR_FILENO, text, n);
    if (w <= 0) return;
    text += w;
    n -= size_t(w);
  }
}

[[noreturn]] void end_by(int sig) {
  remove_temporaries();
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);  // inside the handler `sig` is blocked
  ::raise(sig);
  ::_exit(128 + sig);  // a default action that does not end the process: never for the signals above
}

void on_signal(int sig) {
  const int saved = errno;
  if (deferring.load() && sig == SIGPIPE) {
    // A reader that left (`rass-train ... | tee log` ended by the same
    // Ctrl-C, or on its own): a stop like the others, but never the second
    // signal that ends the process at once, as every later write to that
    // pipe raises it again. Nothing is written: stderr may be that pipe.
    int none = 0;
    pending.compare_exchange_strong(none, sig);
    errno = saved;
    return;
  }
  if (deferring.load() && (sig == SIGINT || sig == SIGTERM || sig == SIGUSR1)) {
    int none = 0;
    if (pending.compare_exchange_strong(none, sig)) {
      write_stderr(deferring_who);
      write_stderr(": ");
      write_stderr(signal_name(sig));
      write_stderr(": stopping after this step (a checkpoint is written); send it again to stop at once\n");
      errno = saved;
      return;
    }
  }
  end_by(sig);
}

}  // namespace

const char* signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGPIPE: return "SIGPIPE";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGALRM: return "SIGALRM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGKILL: return "SIGKILL";
    default: return "a signal";
  }
}

void install_signal_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const int sig : kFatal) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) continue;  // ignored stays ignored
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      for (const int other : kFatal) sigaddset(&sa.sa_mask, other);  // one handler at a time
      sa.sa_flags = SA_RESTART;  // a deferred stop returns: system calls go on, not EINTR
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

void SignalCleanup::arm(const char* path, bool tree) {
  disarm();
  const size_t n = std::strlen(path);
  if (n == 0 || n >= kPathMax) return;
  for (int i = 0; i < kSlots; ++i) {
    int free = kFree;
    if (!slots[i].state.compare_exchange_strong(free, kFilling)) continue;
    std::memcpy(slots[i].path, path, n + 1);
    slots[i].tree = tree;
    slots[i].state.store(kArmed);
    slot_ = i;
    return;
  }
}

bool SignalCleanup::disarm() {
  if (slot_ < 0) return true;
  int armed = kArmed;
  const bool ok = slots[slot_].state.compare_exchange_strong(armed, kFree);  // kTaken: a handler is removing it
  slot_ = -1;
  return ok;
}

DeferredStop::DeferredStop(const char* who) {
  deferring_who = who;
  deferring.store(1);
}

DeferredStop::~DeferredStop() { deferring.store(0); }

int stop_signal() { return pending.load(); }

void request_stop(int sig) {
  int none = 0;
  pending.compare_exchange_strong(none, sig);
}

void clear_stop() { pending.store(0); }

void die_by_signal(int sig) {
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);  // no handler runs between here and the raise
  end_by(sig);
}

}  // namespace rass
