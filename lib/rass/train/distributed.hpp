// Data-parallel processes for rass-train with torch.distributed's c10d from
// LibTorch: a TCPStore for the rendezvous and ProcessGroupGloo (CPU) or
// ProcessGroupNCCL (CUDA) for the collectives. One process (world 1) needs
// neither: every collective is then the identity.
//
// The process's place comes from the variables torchrun sets (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or, when those are absent,
// from Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host
// of SLURM_JOB_NODELIST; MASTER_ADDR / MASTER_PORT still win when set).
#pragma once
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace rass::train {

struct DistEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;  // torchrun's default
  std::string source = "single";  // "torchrun", "slurm" or "single": where the values came from
};

// Reads the environment through `getenv` (tests pass a map). Malformed or
// inconsistent values (RANK >= WORLD_SIZE, a port outside 1..65535, RANK
// without WORLD_SIZE) throw Error(usage) naming the variable.
DistEnv dist_env_from(const std::function<std::optional<std::string>(const std::string&)>& getenv);
DistEnv dist_env_from_environment();

// The first host of a Slurm node list: "gpu[03-05,9],cpu1" -> "gpu03",
// "node7,node8" -> "node7". Throws Error(usage) for an empty or malformed list.
std::string first_slurm_host(const std::string& nodelist);

// Which collective backends this build has (Gloo needs gloo's headers at
// build time, NCCL a CUDA LibTorch).
bool have_gloo();
bool have_nccl();

class Distributed {
 public:
  // Joins the process group of `env` (world > 1: blocks until every process
  // has joined the store, up to `timeout`); `device` picks the backend: Gloo
  // for CPU, NCCL for CUDA. Throws Error(runtime) when the backend is missing
  // from this build or the rendezvous fails.
  static std::unique_ptr<Distributed> init(const DistEnv& env, const torch::Device& device,
                                           std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~Distributed();
  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  const DistEnv& env() const { return env_; }

  // Sum over processes of one number (exact in double for the small counts
  // and loss values it carries).
  double allreduce_sum(double x);
  std::vector<double> allreduce_sum(const std::vector<double>& xs);
  // Replaces every tensor by its mean over processes, in flat buckets of at
  // most `bucket_bytes` (one all-reduce per bucket, all in flight at once),
  // grouped by dtype and device. Undefined tensors are skipped.
  void allreduce_mean_(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes);
  // Every process must pass the same `value` (e.g. the merged configuration):
  // its hash goes through the store; a process that differs from rank 0 makes
  // every process throw Error(usage) naming `what` and the ranks that differ,
  // followed by `hint` (what the user must do).
  void check_same(const std::string& what, const std::string& value,
                  const std::string& hint = "every process must be started with the same configuration");
  // Replaces every tensor by rank 0's (as DistributedDataParallel does with
  // the module's state at its construction): an all-reduce of rank 0's values
  // and zeros elsewhere, exact for finite values. Undefined tensors are skipped.
  void broadcast_from_rank0_(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes);
  void barrier();
  // A process that fails inside a step leaves the others in a collective,
  // which fails when its connections close. Before it ends it tells the
  // store why (its message and exit code: an Error's, else 1); the others,
  // whose collective failed (collective_failed), read it with peer_failure:
  // "" when no process told (or the store, which rank 0 holds, is gone),
  // else "rank R: message" and that process's code.
  void tell_failure(const std::exception_ptr& error);
  std::pair<int, std::string> peer_failure();
  bool collective_failed() const { return collective_failed_; }
  // Call with what this process caught before the first step (nullptr when
  // nothing failed): if any process failed, every process throws -- its own
  // error, or Error(runtime) saying that another process stopped -- so no
  // process waits for one that has left.
  void agree(const std::exception_ptr& error);

 private:
  struct Impl;
  explicit Distributed(DistEnv env);
  // Sums every tensor over processes in place, then divides it by `divisor`.
  void allreduce_sum_(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes, double divisor);
  // Consecutive tensors of one dtype and device, flattened into one all-reduce.
  struct Bucket {
    std::vector<torch::Tensor> parts;
    int64_t bytes = 0;
  };
  void allreduce_buckets(std::vector<Bucket>& buckets, double divisor);
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
  bool collective_failed_ = false;
};

}  // namespace rass::train
