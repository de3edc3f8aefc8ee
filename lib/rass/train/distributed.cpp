#include "rass/train/distributed.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// The backends' headers compile only where their libraries' headers are
// (CMake defines USE_C10D_GLOO when gloo's headers are found, USE_C10D_NCCL
// for a CUDA LibTorch with nccl.h); without them that backend is a runtime error.
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"

namespace rass::train {

namespace {

// c10::Error's what() carries a C++ backtrace; users need the message.
std::string message_of(const std::exception& e) {
  if (auto c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

int parse_int_var(const std::string& name, const std::string& v, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE || x < lo || x > hi || !std::isdigit((unsigned char)v[0]))
    throw_usage(name + "=" + v + ": expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  return int(x);
}

}  // namespace

std::string first_slurm_host(const std::string& list) {
  // The first entry ends at a ',' outside brackets; a bracket holds ranges
  // ("03-05") and single numbers, of which the first gives the host.
  size_t depth = 0, end = 0;
  for (; end < list.size(); ++end) {
    if (list[end] == '[') ++depth;
    else if (list[end] == ']') { if (depth == 0) break; --depth; }
    else if (list[end] == ',' && depth == 0) break;
  }
  const std::string first = list.substr(0, end);
  const size_t open = first.find('[');
  if (first.empty() || (open != std::string::npos && first.back() != ']') || (open == std::string::npos && first.find(']') != std::string::npos))
    throw_usage("SLURM_JOB_NODELIST=" + list + ": cannot read the first host");
  if (open == std::string::npos) return first;
  const std::string inside = first.substr(open + 1, first.size() - open - 2);
  size_t stop = inside.find_first_of(",-");
  const std::string num = inside.substr(0, stop);
  if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos)
    throw_usage("SLURM_JOB_NODELIST=" + list + ": cannot read the first host");
  return first.substr(0, open) + num + first.substr(first.size());  // suffix after ']' is not used by Slurm
}

DistEnv dist_env_from(const std::function<std::optional<std::string>(const std::string&)>& getenv) {
  DistEnv e;
  auto var = [&](const char* n) { return getenv(n); };
  if (auto r = var("RANK")) {
    auto w = var("WORLD_SIZE");
    if (!w) throw_usage("RANK is set but WORLD_SIZE is not (set both, as torchrun does)");
    e.world = parse_int_var("WORLD_SIZE", *w, 1, 1 << 20);
    e.rank = parse_int_var("RANK", *r, 0, 1 << 20);
    if (auto l = var("LOCAL_RANK")) e.local_rank = parse_int_var("LOCAL_RANK", *l, 0, 1 << 20);
    e.source = "torchrun";
  } else if (auto p = var("SLURM_PROCID")) {
    auto n = var("SLURM_NTASKS");
    if (!n) throw_usage("SLURM_PROCID is set but SLURM_NTASKS is not");
    e.world = parse_int_var("SLURM_NTASKS", *n, 1, 1 << 20);
    e.rank = parse_int_var("SLURM_PROCID", *p, 0, 1 << 20);
    if (auto l = var("SLURM_LOCALID")) e.local_rank = parse_int_var("SLURM_LOCALID", *l, 0, 1 << 20);
    if (auto nl = var("SLURM_JOB_NODELIST"); nl && !nl->empty()) e.master_addr = first_slurm_host(*nl);
    e.source = "slurm";
  } else if (auto w = var("WORLD_SIZE")) {
    if (parse_int_var("WORLD_SIZE", *w, 1, 1 << 20) != 1) throw_usage("WORLD_SIZE is set but RANK is not");
  }
  if (e.rank >= e.world)
    throw_usage("rank " + std::to_string(e.rank) + " is not below the world size " + std::to_string(e.world));
  if (auto a = var("MASTER_ADDR"); a && !a->empty()) e.master_addr = *a;
  if (auto p = var("MASTER_PORT")) e.master_port = parse_int_var("MASTER_PORT", *p, 1, 65535);
  return e;
}

DistEnv dist_env_from_environment() {
  return dist_env_from([](const std::string& n) -> std::optional<std::string> {
    const char* v = std::getenv(n.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  });
}

bool have_gloo() {
#ifdef USE_C10D_GLOO
  return true;
#else
  return false;
#endif
}
bool have_nccl() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  torch::Device device{torch::kCPU};
  // The backend's all-reduce (sum), started; the returned function waits.
  std::function<std::function<void()>(std::vector<at::Tensor>&)> allreduce;
  int64_t checks = 0;
};

namespace {
template <class PG>
std::function<std::function<void()>(std::vector<at::Tensor>&)> allreduce_of(c10::intrusive_ptr<PG> pg) {
  return [pg](std::vector<at::Tensor>& ts) {
    auto work = pg->allreduce(ts);
    return std::function<void()>([work] { work->wait(); });
  };
}
}  // namespace

Distributed::Distributed(DistEnv env) : env_(std::move(env)), impl_(std::make_unique<Impl>()) {}
Distributed::~Distributed() = default;

std::unique_ptr<Distributed> Distributed::init(const DistEnv& env, const torch::Device& device,
                                               std::chrono::milliseconds timeout) {
  std::unique_ptr<Distributed> d(new Distributed(env));
  d->impl_->device = device;
  if (env.world == 1) return d;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions o;
    o.port = uint16_t(env.master_port);
    o.isServer = env.rank == 0;
    o.numWorkers = size_t(env.world);
    o.waitWorkers = true;
    o.timeout = timeout;
    d->impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  } catch (const std::exception& e) {
    throw_runtime("rendezvous at " + where + " (rank " + std::to_string(env.rank) + " of " +
                  std::to_string(env.world) + ") failed: " + message_of(e));
  }
  if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    // loop.timeout_s bounds a collective too: NCCL notices a peer that ended
    // (a failed step) only when it runs out.
    opts->timeout = timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(d->impl_->store, env.rank, env.world, opts);
    d->impl_->allreduce = allreduce_of(pg);
#else
    throw_runtime("multi-process training on CUDA needs NCCL, and this build's LibTorch has none (a CPU LibTorch)");
#endif
  } else {
#ifdef USE_C10D_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // As torch.distributed does: GLOO_SOCKET_IFNAME picks the interface, else
    // the address the host name resolves to (loopback when it does not).
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    try {
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(d->impl_->store, env.rank, env.world, opts);
      d->impl_->allreduce = allreduce_of(pg);
    } catch (const std::exception& e) {
      throw_runtime("Gloo process group over " + where + " failed: " + message_of(e) +
                    " (are all " + std::to_string(env.world) + " processes started, with the same MASTER_ADDR/MASTER_PORT?)");
    }
#else
    throw_runtime("multi-process training on the CPU needs Gloo, and this build has none "
                  "(gloo's headers, Debian's libgloo-dev, were not found when it was built)");
#endif
  }
  return d;
}

std::vector<double> Distributed::allreduce_sum(const std::vector<double>& xs) {
  if (env_.world == 1 || xs.empty()) return xs;
  std::vector<at::Tensor> t{torch::tensor(xs, torch::kDouble).to(impl_->device)};
  try {
    impl_->allreduce(t)();
    t[0] = t[0].cpu();
  } catch (...) {
    collective_failed_ = true;
    throw;
  }
  return std::vector<double>(t[0].data_ptr<double>(), t[0].data_ptr<double>() + xs.size());
}

double Distributed::allreduce_sum(double x) { return allreduce_sum(std::vector<double>{x})[0]; }

void Distributed::barrier() { allreduce_sum(0.0); }

void Distributed::agree(const std::exception_ptr& error) {
  double failed = 0;
  try {
    failed = allreduce_sum(error ? 1.0 : 0.0);
  } catch (...) {
    // A peer that crashed, or loop.timeout_s run out: this process's own
    // error (a refused output folder) is still the one to tell.
    if (error) std::rethrow_exception(error);
    throw;
  }
  if (error) std::rethrow_exception(error);
  if (failed > 0)
    throw_runtime("rank " + std::to_string(env_.rank) + ": another process stopped before the first step (its "
                  "message is on its stderr)");
}

void Distributed::allreduce_mean_(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  allreduce_sum_(tensors, bucket_bytes, double(env_.world));
}

void Distributed::broadcast_from_rank0_(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  if (env_.world == 1) return;
  if (env_.rank != 0) {
    torch::NoGradGuard ng;
    for (const auto& t : tensors)
      if (t.defined()) t.zero_();
  }
  allreduce_sum_(tensors, bucket_bytes, 1.0);
}

void Distributed::allreduce_sum_(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes, double divisor) {
  if (env_.world == 1) return;
  // Buckets: consecutive tensors of one dtype and device, up to bucket_bytes
  // (a tensor larger than that is a bucket of its own).
  std::vector<Bucket> buckets;
  std::map<std::pair<int, std::string>, size_t> open;  // (dtype, device) -> bucket being filled
  for (const auto& t : tensors) {
    if (!t.defined()) continue;
    const auto key = std::make_pair(int(t.scalar_type()), t.device().str());
    const int64_t b = t.numel() * int64_t(t.element_size());
    auto it = open.find(key);
    if (it == open.end() || buckets[it->second].bytes + b > bucket_bytes) {
      buckets.emplace_back();
      open[key] = buckets.size() - 1;
      it = open.find(key);
    }
    buckets[it->second].parts.push_back(t);
    buckets[it->second].bytes += b;
  }
  try {
    allreduce_buckets(buckets, divisor);
  } catch (...) {
    collective_failed_ = true;
    throw;
  }
}

void Distributed::allreduce_buckets(std::vector<Bucket>& buckets, double divisor) {
  std::vector<std::vector<at::Tensor>> flats(buckets.size());
  std::vector<std::function<void()>> waits;
  for (size_t i = 0; i < buckets.size(); ++i) {
    std::vector<torch::Tensor> flat;
    for (auto& p : buckets[i].parts) flat.push_back(p.reshape({-1}));
    flats[i] = {torch::cat(flat)};
    waits.push_back(impl_->allreduce(flats[i]));
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    waits[i]();
    torch::NoGradGuard ng;
    if (divisor != 1.0) flats[i][0].div_(divisor);
    int64_t off = 0;
    for (auto& p : buckets[i].parts) {
      p.copy_(flats[i][0].narrow(0, off, p.numel()).view(p.sizes()));
      off += p.numel();
    }
  }
}

void Distributed::tell_failure(const std::exception_ptr& error) {
  if (env_.world == 1 || !error) return;
  int code = int(ExitCode::runtime);
  std::string message = "an unknown error";
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    code = e.exit_code(), message = e.what();
  } catch (const std::exception& e) {
    message = message_of(e);
  } catch (...) {
  }
  const std::string v = std::to_string(code) + "\t" + message;
  try {
    const std::string key = "rass/failed/" + std::to_string(env_.rank);
    impl_->store->set(key, std::vector<uint8_t>(v.begin(), v.end()));
    impl_->store->check({key});  // a round trip: the server holds it before this process ends
  } catch (...) {
    // The store is gone (rank 0 ended): the others learn of it as a failed collective.
  }
}

std::pair<int, std::string> Distributed::peer_failure() {
  if (env_.world == 1) return {0, ""};
  try {
    for (int r = 0; r < env_.world; ++r) {
      const std::string key = "rass/failed/" + std::to_string(r);
      if (r == env_.rank || !impl_->store->check({key})) continue;
      const auto b = impl_->store->get(key);
      const std::string v(b.begin(), b.end());
      const size_t tab = v.find('\t');
      int code = int(ExitCode::runtime);
      try {
        code = std::stoi(v.substr(0, tab));
      } catch (const std::exception&) {
      }
      return {code, "rank " + std::to_string(r) + ": " + (tab == std::string::npos ? v : v.substr(tab + 1))};
    }
  } catch (...) {
  }
  return {0, ""};
}

void Distributed::check_same(const std::string& what, const std::string& value, const std::string& hint) {
  if (env_.world == 1) return;
  std::ostringstream h;
  h << std::hex << fnv1a64(value) << ":" << value.size();
  const std::string mine = h.str();
  const std::string prefix = "rass/check/" + std::to_string(impl_->checks++) + "/";
  impl_->store->set(prefix + std::to_string(env_.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
  std::vector<int> differ;
  std::string first;
  for (int r = 0; r < env_.world; ++r) {
    const auto v = impl_->store->get(prefix + std::to_string(r));
    const std::string s(v.begin(), v.end());
    if (r == 0) first = s;
    else if (s != first) differ.push_back(r);
  }
  if (!differ.empty()) {
    std::string ranks;
    for (int r : differ) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    throw_usage("the " + what + " of rank(s) " + ranks + " differs from rank 0's: " + hint);
  }
}

}  // namespace rass::train
