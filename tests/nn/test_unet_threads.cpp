// One loaded UNet serves several threads: the modules keep no per-call state
// (captures go to the caller's UNetCaptures), so concurrent forwards with
// different inputs give exactly what each gives alone.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"

using namespace rass;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

namespace {
struct Inputs {
  torch::Tensor x, t, ctx;
};
struct Result {
  torch::Tensor out;
  nn::UNetCaptures cap;
};

Result run(nn::UNet2DCondition& unet, const Inputs& in) {
  Result r;
  r.cap.cross_attention = r.cap.self_attention = r.cap.up_blocks = true;
  r.out = unet->forward(in.x, in.t, in.ctx, &r.cap);
  return r;
}

// Exactly equal: same output, same captured paths and tensors.
bool same(const Result& a, const Result& b) {
  if (!torch::equal(a.out, b.out)) return false;
  if (a.cap.attention.size() != b.cap.attention.size() || a.cap.up_block_outputs.size() != b.cap.up_block_outputs.size())
    return false;
  for (size_t i = 0; i < a.cap.attention.size(); ++i)
    if (a.cap.attention[i].path != b.cap.attention[i].path || !torch::equal(a.cap.attention[i].probs, b.cap.attention[i].probs))
      return false;
  for (size_t i = 0; i < a.cap.up_block_outputs.size(); ++i)
    if (!torch::equal(a.cap.up_block_outputs[i], b.cap.up_block_outputs[i])) return false;
  return true;
}
}  // namespace

TEST_CASE("one loaded UNet (with a LoRA adapter) runs from two threads at once, captures on, as single-threaded") {
  const int threads_before = torch::get_num_threads();
  torch::set_num_threads(1);  // each caller computes alone; the intra-op pool plays no part
  nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  nn::UNet2DCondition unet(cfg);
  model::load_state_dict(*unet, *SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors"));
  unet->eval();
  torch::manual_seed(5);
  nn::add_lora(*unet, "scr", 2, 4.0, {"to_q", "to_v", "conv1", "proj_in"});
  {
    torch::NoGradGuard ng;
    for (auto& p : unet->named_parameters())
      if (p.key().find(".lora_B.scr.") != std::string::npos) p.value().normal_(0, 0.1);
  }
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  // Two different jobs: the fixture inputs, and another sample, timestep and context.
  const Inputs a{get("sample"), get("timesteps"), get("context")};
  const Inputs b{a.x.flip({3}) * 0.7 + 0.1, a.t * 0 + 17, a.ctx.flip({1}) * -1.3};

  Result ref_a, ref_b;
  {
    c10::InferenceMode im;
    ref_a = run(unet, a);
    ref_b = run(unet, b);
  }
  REQUIRE(!torch::equal(ref_a.out, ref_b.out));
  REQUIRE(ref_a.cap.attention.size() == 8);  // 4 transformer blocks x (attn1, attn2)
  REQUIRE(ref_a.cap.up_block_outputs.size() == cfg.block_out_channels.size());

  const int rounds = 4;
  std::atomic<int> ready{0};
  std::vector<std::string> errors(2);
  std::vector<int> matches(2, 0);
  auto worker = [&](int id) {
    try {
      c10::InferenceMode im;  // thread-local, as every grad-mode guard
      const Inputs& in = id == 0 ? a : b;
      const Result& want = id == 0 ? ref_a : ref_b;
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();  // start together
      for (int r = 0; r < rounds; ++r)
        if (same(run(unet, in), want)) ++matches[id];
    } catch (const std::exception& e) {
      errors[id] = e.what();
    }
  };
  std::thread t0(worker, 0), t1(worker, 1);
  t0.join();
  t1.join();
  torch::set_num_threads(threads_before);
  CHECK(errors[0] == "");
  CHECK(errors[1] == "");
  CHECK(matches[0] == rounds);
  CHECK(matches[1] == rounds);
}
