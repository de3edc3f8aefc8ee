// What a tool does when a signal ends it (SIGTERM from a batch system, SIGINT
// from Ctrl-C, SIGHUP from a closed terminal, SIGPIPE from a reader that left):
// it removes the temporaries it has open, then dies by that same signal, so
// the parent still sees "killed by SIGTERM" (a shell loop stops on Ctrl-C,
// `$?` is 128 + the signal) and no `F.tmp.PID.N` is left next to an output.
// Without this only SIGKILL-proof O_TMPFILE files left nothing; on NFS and
// other filesystems without O_TMPFILE every output in flight was left as a
// named temporary.
//
// A long job that can stop cleanly (rass-train: a checkpoint after the
// current step) asks for a deferred stop instead: the first SIGINT, SIGTERM
// or SIGUSR1 is only recorded, the job polls it and finishes its step, and a
// second signal ends the process at once as above. SIGPIPE (a reader of its
// output that left) is recorded too but never ends it at once.
//
// Signals the process started with ignored (nohup's SIGHUP, SIGINT of a
// background job, a parent's ignored SIGPIPE) stay ignored. Torch-free.
#pragma once

namespace rass {

// Installs the handlers (once; later calls do nothing). run_main calls it.
void install_signal_cleanup();

// A temporary file (or, with `tree`, a temporary folder and everything in
// it) the handlers remove when a signal ends the process, while this object
// is armed. Async-signal-safe bookkeeping: a fixed table of 256 names of at
// most 4095 bytes; a name that does not fit (or a full table) is simply not
// removed by a signal, as before.
class SignalCleanup {
 public:
  SignalCleanup() = default;
  explicit SignalCleanup(const char* path, bool tree = false) { arm(path, tree); }
  ~SignalCleanup() { disarm(); }
  SignalCleanup(const SignalCleanup&) = delete;
  SignalCleanup& operator=(const SignalCleanup&) = delete;
  void arm(const char* path, bool tree = false);  // disarms a previous name first
  // The file is renamed into place or gone: no longer removed. False when a
  // handler has already taken the name (the process is ending): the caller
  // must then not move it into place.
  bool disarm();

 private:
  int slot_ = -1;
};

// While an object of this class lives, SIGINT, SIGTERM and SIGUSR1 (and
// SIGPIPE, see above) are recorded instead of ending the process (`who` starts the note printed on
// stderr when one comes: "rass-train"). Not nested.
class DeferredStop {
 public:
  explicit DeferredStop(const char* who);
  ~DeferredStop();
  DeferredStop(const DeferredStop&) = delete;
  DeferredStop& operator=(const DeferredStop&) = delete;
};

// The signal recorded while a DeferredStop lived (0: none). A process told to
// stop by another (its peers in a distributed run) records one with
// request_stop; clear_stop forgets it (the work finished anyway).
int stop_signal();
void request_stop(int sig);
void clear_stop();

// Removes the registered temporaries and ends the process by `sig` with the
// signal's default action (as if it had never been caught).
[[noreturn]] void die_by_signal(int sig);

// "SIGTERM", "SIGINT", ... ("signal N" for others).
const char* signal_name(int sig);

}  // namespace rass
