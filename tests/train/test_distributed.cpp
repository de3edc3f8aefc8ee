// Data-parallel processes: the environment torchrun and srun set, Slurm node
// lists, and a real 2-process Gloo run of rass-train (two processes of the
// built tool on 127.0.0.1) against 1 process with the combined batch.
#include "nn/torch_doctest.hpp"  // first: drops c10's glog-style CHECK

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/train/distributed.hpp"
#include "test_support.hpp"
#include "train/train_test_util.hpp"

using namespace rass;
using namespace rass::train;

namespace {
DistEnv env_of(std::map<std::string, std::string> vars) {
  return dist_env_from([&](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}
bool usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code() == ExitCode::usage;
  }
  return false;
}
}  // namespace

TEST_CASE("process place from torchrun's and srun's variables") {
  auto one = env_of({});
  CHECK(one.world == 1);
  CHECK(one.rank == 0);
  CHECK(one.source == "single");
  auto t = env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "10.0.0.2"}, {"MASTER_PORT", "1234"}});
  CHECK(t.rank == 3);
  CHECK(t.world == 4);
  CHECK(t.local_rank == 1);
  CHECK(t.master_addr == "10.0.0.2");
  CHECK(t.master_port == 1234);
  CHECK(t.source == "torchrun");
  auto s = env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_JOB_NODELIST", "gpu[07-08]"}});
  CHECK(s.rank == 5);
  CHECK(s.world == 8);
  CHECK(s.local_rank == 1);
  CHECK(s.master_addr == "gpu07");
  CHECK(s.master_port == 29500);
  CHECK(s.source == "slurm");
  // torchrun's variables win over Slurm's (torchrun inside an allocation).
  auto both = env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "1"}});
  CHECK(both.world == 2);
  CHECK(usage_error([] { env_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}); }));
  CHECK(usage_error([] { env_of({{"RANK", "0"}}); }));
  CHECK(usage_error([] { env_of({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}); }));
  CHECK(usage_error([] { env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}); }));
  CHECK(usage_error([] { env_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}); }));
}

TEST_CASE("first host of a Slurm node list") {
  CHECK(first_slurm_host("node7") == "node7");
  CHECK(first_slurm_host("node7,node8") == "node7");
  CHECK(first_slurm_host("gpu[03-05,9],cpu1") == "gpu03");
  CHECK(first_slurm_host("gpu[9,3-5]") == "gpu9");
  CHECK(first_slurm_host("a-b[001-004]") == "a-b001");
  CHECK(usage_error([] { first_slurm_host(""); }));
  CHECK(usage_error([] { first_slurm_host("gpu[03"); }));
  CHECK(usage_error([] { first_slurm_host("gpu[]"); }));
}

namespace {
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string rass_train_binary() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  std::string self(buf, n > 0 ? size_t(n) : 0);
  return self.substr(0, self.rfind('/')) + "/../rass-train";  // build/tests/test-train -> build/rass-train
}

// Starts rass-train with `args` and the environment `vars` added; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& vars) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}
int wait_for(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

torch::Tensor load(const std::string& path, const std::string& name) {
  auto f = SafeTensorsFile::open(path);
  return model::to_tensor(*f->find(name), path);
}
}  // namespace

TEST_CASE("2 processes over Gloo (batch 4 each) equal 1 process with the combined batch of 8") {
  test::TempDir tmp;
  if (!have_gloo()) {
    MESSAGE("this build has no Gloo (gloo headers missing at build time)");
    std::exit(77);
  }
  const std::string bin = rass_train_binary();
  REQUIRE_MESSAGE(file_exists(bin), bin, " is not built");
  const std::string one = (tmp / "one"), two = (tmp / "two");
  const std::vector<std::string> common = {bin, "selftest", "--steps", "5", "--batch", "8", "--seed", "4", "--threads", "1",
                                           "--set", "loop.clip_grad_norm=0.7", "-q",
                                           // W (600 x 512 floats, 1.2 MB) is a bucket of its own, the bias another
                                           "--set", "selftest.inputs=512", "--set", "selftest.outputs=600",
                                           "--set", "loop.bucket_mb=1",
                                           // Adam's update lr * m / (sqrt(v) + eps) is about lr * sign(g) with a
                                           // small eps, which turns fp32 rounding of a near-zero gradient into a
                                           // whole step; eps = 1 keeps the update smooth in the gradient, so the
                                           // weights show the gradients' agreement.
                                           "--set", "loop.eps=1.0", "--lr", "0.5"};
  auto with = [&](const std::string& out) {
    auto a = common;
    a.push_back("-o");
    a.push_back(out);
    return a;
  };
  CHECK(wait_for(spawn(with(one), {})) == 0);
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn(with(two), {{"RANK", std::to_string(r)}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", std::to_string(r)},
                                     {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", port}}));
  for (pid_t p : pids) CHECK(wait_for(p) == 0);
  const std::string fa = one + "/final/selftest.safetensors", fb = two + "/final/selftest.safetensors";
  REQUIRE(file_exists(fa));
  REQUIRE(file_exists(fb));
  for (const char* name : {"weight", "bias"}) {
    auto a = load(fa, name), b = load(fb, name);
    // The checkpoint of the last step holds the exported weights, and they moved from the initial ones.
    CHECK((a - load(one + "/checkpoints/step_5.safetensors", name)).abs().max().item<double>() == 0);
    auto groups = test::selftest(4, {{"inputs", 512}, {"outputs", 600}})->param_groups();
    const torch::Tensor init = std::string(name) == "weight" ? groups[0].params[0].second : groups[1].params[0].second;
    CHECK((a - init.detach()).abs().max().item<double>() > 1e-3);
    // ... and the two runs agree to fp32 rounding (sums in another order).
    const double diff = (a - b).abs().max().item<double>(), scale = a.abs().max().item<double>();
    INFO(name, ": max |1 process - 2 processes| = ", diff, " (max |w| = ", scale, ")");
    CHECK(diff <= 1e-5 * std::max(1.0, scale));
  }
  // Every step's loss (averaged over the processes) and gradient norm (after the all-reduce) agree.
  std::ifstream l1(one + "/log.jsonl"), l2(two + "/log.jsonl");
  std::string a, b;
  int lines = 0;
  while (std::getline(l1, a) && std::getline(l2, b)) {
    auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
    CHECK(ja["step"] == jb["step"]);
    for (const char* k : {"loss", "grad_norm"})
      CHECK(jb[k].get<double>() == doctest::Approx(ja[k].get<double>()).epsilon(1e-5));
    ++lines;
  }
  CHECK(lines == 5);
}
