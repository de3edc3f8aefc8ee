// The tiled VAE on CUDA (unit.nn.cuda_tile_offload): every --vae-offload
// choice gives the same bits; host memory lowers the allocator's peak; auto
// reads a positive room from the device (device_room_bytes) and, with room,
// keeps the tiles as off does; with none (pretended) moves them as on does.
// A file of its own: test-nn-cuda (a GPU host's build) takes it without the
// CPU cases of test_restore.cpp.
#include "torch_doctest.hpp"
#include "test_support.hpp"

#include <cmath>
#include <string>

#include <c10/core/InferenceMode.h>

#include "rass/model/peak_memory.hpp"
#include "rass/model/restore.hpp"
#include "rass/model/tiled_vae.hpp"

using namespace rass;
using namespace rass::model;

namespace {
const std::string kNn = std::string(RASS_FIXTURES) + "/nn";
// No room for auto (ends with the scope, even if a check fails).
struct PretendRoom {
  PretendRoom() { set_tile_offload_room(0); }
  ~PretendRoom() { set_tile_offload_room(-1); }
  PretendRoom(const PretendRoom&) = delete;
  PretendRoom& operator=(const PretendRoom&) = delete;
};
}  // namespace

TEST_CASE("the tiled VAE on CUDA keeps its bits with every offload choice") {
  if (!torch::cuda::is_available())
    rass::test::skip("no CUDA device (torch::cuda::is_available() is false: CPU-only LibTorch or no GPU)");
  c10::InferenceMode im;
  RestoreModelOptions o;
  o.dir = kNn + "/sd_tiny";
  o.device = "cuda";
  o.dtype = "bf16";
  o.quiet = true;
  const RestoreModel m(o);
  nn::AutoencoderKLImpl& vae = *m.vae.ptr();
  torch::manual_seed(5);
  const torch::Tensor z = torch::randn({1, 4, 24, 32}).to(m.device, m.vae_dtype);
  // The device's room as auto reads it: the driver's free memory and more.
  const int64_t room = model::device_room_bytes(m.device);
  MESSAGE("device room " << double(room) / double(int64_t(1) << 30) << " GiB");
  CHECK(room > 0);
  // Each decode's peak allocated bytes (weights and z included in each).
  auto run = [&](TileOffload off, int64_t& peak) {
    model::take_tensor_peak(m.device);
    const torch::Tensor out = tiled_decoder_forward(vae, z, 8, 2, true, off).cpu();
    peak = model::take_tensor_peak(m.device).allocated;
    return out;
  };
  int64_t p_off = 0, p_on = 0, p_roomy = 0, p_tight = 0, p_warm = 0;
  run(TileOffload::off, p_warm);  // cuDNN's first-use workspaces and choices, not in the peaks compared
  const torch::Tensor dec_off = run(TileOffload::off, p_off);
  const torch::Tensor dec_on = run(TileOffload::on, p_on);
  const torch::Tensor dec_roomy = run(TileOffload::automatic, p_roomy);  // a test GPU has room for 12 tiny tiles
  torch::Tensor dec_tight;
  {
    const PretendRoom none;
    dec_tight = run(TileOffload::automatic, p_tight);
  }
  MESSAGE("peak allocated: off " << p_off << ", on " << p_on << ", auto " << p_roomy << ", auto without room " << p_tight);
  CHECK(torch::equal(dec_on, dec_off));
  CHECK(torch::equal(dec_roomy, dec_off));
  CHECK(torch::equal(dec_tight, dec_off));
  CHECK(p_on < p_off);
  CHECK(p_tight < p_off);
  // auto with room keeps the tiles: off's peak (within 5%), above on's.
  CHECK(p_roomy > p_on);
  CHECK(std::abs(double(p_roomy - p_off)) <= 0.05 * double(p_off));
}
