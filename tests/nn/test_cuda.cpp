// The network layer on a CUDA device: the tiny UNet fixtures on cuda:0 against
// the reference outputs (diffusers v0.25.1), through the fused attention
// kernel of LibTorch 2.x. Needs a GPU and a LibTorch with CUDA (the CUDA
// build, scripts/build-cuda.sh): elsewhere the binary exits 77 and CTest
// reports unit.nn.cuda skipped (tests/CMakeLists.txt runs this case alone).
#include "torch_doctest.hpp"
#include "tolerances.hpp"
#include "test_support.hpp"

#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/unet.hpp"

using namespace rass;

TEST_CASE("UNet forward on CUDA equals diffusers (fp32 without TF32)") {
  if (!torch::cuda::is_available())
    test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  // cuDNN convolutions default to TF32 on Ampere and later (10-bit mantissa):
  // off, so the comparison is an fp32 one.
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  torch::NoGradGuard no_grad;
  // $RASS_FIXTURES: the fixtures of a copy of the tree elsewhere (a GPU
  // machine running the prebuilt binary; scripts/gpu-run.sh).
  const std::string dir = test::data_path("RASS_FIXTURES", RASS_FIXTURES) + "/nn";
  const torch::Device cuda(torch::kCUDA, 0);
  for (const char* name : {"unet_tiny", "unet_tiny_conv"}) {
    INFO(std::string(name));
    nn::UNetConfig cfg = model::read_unet_config(dir + "/" + name + "/config.json");
    nn::UNet2DCondition unet(cfg);
    auto weights = SafeTensorsFile::open(dir + "/" + name + "/diffusion_pytorch_model.safetensors");
    model::LoadReport rep = model::load_state_dict(*unet, *weights);
    CHECK(rep.loaded == weights->tensors().size());
    unet->eval();
    unet->to(cuda);
    auto io = SafeTensorsFile::open(dir + "/" + name + "_io.safetensors");
    auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
    torch::Tensor out = unet->forward(get("sample").to(cuda), get("timesteps").to(cuda), get("context").to(cuda));
    REQUIRE(out.device() == cuda);
    torch::Tensor want = get("out");
    REQUIRE(out.sizes() == want.sizes());
    const double err = (out.cpu() - want).abs().max().item<double>();
    MESSAGE(std::string(name), " max abs error on ", torch::cuda::device_count(), " CUDA device(s): ", err);
    CHECK(err < TOL_UNET_CUDA);
  }
}
