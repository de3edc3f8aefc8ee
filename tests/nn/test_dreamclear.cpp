// DreamClear (seed 003) against its released code: a tiny random DiT with
// ControlFormer and MoAM, SwinIR and the SD VAE, run by DreamClear's own
// modules, sampler and test.py pipeline (fixtures from
// tests/nn/make_dreamclear_fixture.py), and the schedule, sizes and tiles
// worked by hand.
#include "torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <cmath>
#include <memory>

#include "rass/core/error.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/dreamclear_model.hpp"
#include "rass/nn/iddpm.hpp"

using namespace rass;

namespace {

const std::string kDcDir = std::string(RASS_FIXTURES) + "/nn";

const SafeTensorsFile& dc_io() {
  static const auto f = SafeTensorsFile::open(kDcDir + "/dreamclear_io.safetensors");
  return *f;
}

torch::Tensor dc_golden(const std::string& k) {
  const TensorView* v = dc_io().find(k);
  REQUIRE_MESSAGE(v != nullptr, k);
  return model::to_tensor(*v, dc_io().path());
}

double dc_err(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(torch::kDouble).cpu() - b.to(torch::kDouble).cpu()).abs().max().item<double>();
}

double dc_scale(const torch::Tensor& a) { return std::max(1e-6, a.abs().max().item<double>()); }

model::DreamClearModel& dc_tiny() {
  static std::unique_ptr<model::DreamClearModel> m;
  if (!m) {
    model::DreamClearModelOptions o;
    o.dir = kDcDir + "/dreamclear_tiny";
    m = std::make_unique<model::DreamClearModel>(o);
  }
  return *m;
}

nn::DreamClearDitInput fwd_input() {
  nn::DreamClearDitInput in;
  in.x = dc_golden("fwd.x");
  in.timestep = dc_golden("fwd.t");
  in.caption = dc_golden("fwd.y");
  in.mask = dc_golden("fwd.mask");
  in.img_hw = dc_golden("fwd.hw");
  in.aspect = dc_golden("fwd.ar");
  in.c_lq = dc_golden("fwd.c_lq");
  in.c_pre = dc_golden("fwd.c_pre");
  return in;
}

model::DreamClearCaption fwd_caption() {
  model::DreamClearCaption c;
  c.features = dc_golden("fwd.y").narrow(0, 0, 1).squeeze(1);  // [1, L, C]
  c.mask = dc_golden("fwd.mask").reshape({1, -1});
  return c;
}

}  // namespace

TEST_CASE("dreamclear iddpm: respacing with Python's round and the linear betas worked by hand") {
  // (1000 - 1) / (3 - 1) = 499.5 rounds to 500 (ties to even), as Python's round().
  CHECK((nn::iddpm_space_timesteps(1000, 3) == std::vector<int64_t>{0, 500, 999}));
  CHECK((nn::iddpm_space_timesteps(1000, 4) == std::vector<int64_t>{0, 333, 666, 999}));
  CHECK((nn::iddpm_space_timesteps(1000, 1) == std::vector<int64_t>{0}));
  CHECK(nn::iddpm_space_timesteps(1000, 50).size() == 50);
  CHECK_THROWS_AS(nn::iddpm_space_timesteps(1000, 1001), Error);
  CHECK_THROWS_AS(nn::iddpm_space_timesteps(1000, 0), Error);
  const nn::IddpmSchedule s = nn::make_iddpm_schedule(1000, 4);
  // The first kept step is step 0: beta = 1e-4 exactly.
  CHECK(s.betas[0] == doctest::Approx(1e-4).epsilon(1e-12));
  // Against the reference's SpacedDiffusion (float64 both).
  const torch::Tensor ref = dc_golden("sample.betas");
  for (int i = 0; i < 4; ++i) CHECK(s.betas[size_t(i)] == doctest::Approx(ref[i].item<double>()).epsilon(1e-12));
  const torch::Tensor ts = dc_golden("sample.timesteps");
  for (int i = 0; i < 4; ++i) CHECK(s.timesteps[size_t(3 - i)] == ts[i].item<int64_t>());
  // Posterior variance at step 0 is 0; its log is clipped to step 1's.
  CHECK(s.posterior_log_variance_clipped[0] == doctest::Approx(s.posterior_log_variance_clipped[1]));
}

TEST_CASE("dreamclear sizes and tiles worked by hand") {
  // 32x32 x4 = 128 >= min 128: unchanged; 48x32 -> 192x128.
  auto a = model::dreamclear_sizes(32, 32, 4, 128);
  CHECK((a.work_w == 128 && a.work_h == 128 && a.out_w == 128 && a.out_h == 128));
  a = model::dreamclear_sizes(48, 32, 4, 128);
  CHECK((a.work_w == 192 && a.work_h == 128));
  // 100x70 x4 = 400x280 < 1024: x 1024/280 -> 1462.86 x 1024 -> 23 * 64 = 1472 x 1024; the output stays 400x280.
  a = model::dreamclear_sizes(100, 70, 4, 1024);
  CHECK((a.work_w == 1472 && a.work_h == 1024 && a.out_w == 400 && a.out_h == 280));
  // np.round halves to even: 1056 / 64 = 16.5 -> 16 (1024), 1184 / 64 = 18.5 -> 18 (1152).
  a = model::dreamclear_sizes(264, 296, 4, 1024);
  CHECK((a.work_w == 1024 && a.work_h == 1152));
  // Tile origins: k (tile - overlap), the last flush with the edge.
  CHECK((model::dreamclear_tile_starts(24, 16, 4) == std::vector<int64_t>{0, 8}));
  CHECK((model::dreamclear_tile_starts(20, 16, 4) == std::vector<int64_t>{0, 4}));
  CHECK((model::dreamclear_tile_starts(300, 128, 32) == std::vector<int64_t>{0, 96, 172}));
  CHECK((model::dreamclear_tile_starts(16, 16, 4) == std::vector<int64_t>{0}));
  // An overlap not below the tile would never advance: refused, not looped on.
  CHECK_THROWS_AS(model::dreamclear_tile_starts(48, 32, 32), Error);
  const torch::Tensor w = model::dreamclear_tile_weights(16, 16);
  CHECK(dc_err(w, dc_golden("tile.weights")) < 1e-15);
  // x centred at (W-1)/2, y at H/2: the first and last columns weigh alike, the rows do not.
  CHECK(w[8][0].item<double>() == doctest::Approx(w[8][15].item<double>()));
  CHECK(w[0][7].item<double>() < w[15][7].item<double>());
}

TEST_CASE("dreamclear DiT: positions and forward equal the reference") {
  model::DreamClearModel& m = dc_tiny();
  torch::NoGradGuard ng;
  CHECK(dc_err(m.dit->positions(8, 6), dc_golden("fwd.pos_embed")) < 1e-6);
  nn::DreamClearDitInput in = fwd_input();
  const torch::Tensor ref = dc_golden("fwd.out");
  const torch::Tensor out = m.dit->forward(in);
  const double scale = dc_scale(ref);
  INFO("fwd.out scale " << scale);
  CHECK(dc_err(out, ref) < 2e-5 * dc_scale(ref));
  // Without a mask every sample sees all of its own caption's tokens.
  in.mask = torch::Tensor();
  CHECK(dc_err(m.dit->forward(in), dc_golden("fwd.out_nomask")) < 2e-5 * dc_scale(ref));
  // Batch 1: cross_de's sequence is the sample alone.
  in = fwd_input();
  in.x = in.x.narrow(0, 0, 1);
  in.timestep = in.timestep.narrow(0, 0, 1);
  in.caption = in.caption.narrow(0, 0, 1);
  CHECK(dc_err(m.dit->forward(in), dc_golden("fwd.single_out")) < 2e-5 * dc_scale(ref));
  // Batch 2 in groups of 1 is the single forward for sample 0: the reference's
  // batch-wide cross_de sequence is what makes fwd.out differ from it.
  in = fwd_input();
  in.de_group = 1;
  const torch::Tensor grouped = m.dit->forward(in).narrow(0, 0, 1);
  CHECK(dc_err(grouped, dc_golden("fwd.single_out")) < 2e-5 * dc_scale(ref));
  CHECK(dc_err(grouped, ref.narrow(0, 0, 1)) > 1e-2);
}

TEST_CASE("dreamclear DiT: guidance on three channels and the masked null caption") {
  model::DreamClearModel& m = dc_tiny();
  torch::NoGradGuard ng;
  // forward_with_cfg of the reference: the batch (x0, x0) with timesteps as given,
  // caption (y0, null), the caption's mask on both.
  nn::DreamClearDitInput in = fwd_input();
  in.x = torch::cat({in.x.narrow(0, 0, 1), in.x.narrow(0, 0, 1)});
  in.caption = dc_golden("cfg.y");
  const torch::Tensor raw = m.dit->forward(in);
  const torch::Tensor ref = dc_golden("cfg.out");
  const torch::Tensor c = raw.narrow(0, 0, 1), u = raw.narrow(0, 1, 1);
  const torch::Tensor guided = u.narrow(1, 0, 3) + 4.5 * (c.narrow(1, 0, 3) - u.narrow(1, 0, 3));
  CHECK(dc_err(guided, ref.narrow(0, 0, 1).narrow(1, 0, 3)) < 2e-5 * dc_scale(ref));
  CHECK(dc_err(raw.narrow(1, 3, 5), ref.narrow(1, 3, 5)) < 2e-5 * dc_scale(ref));
  // forward_cfg (one timestep for both halves, as the sampler calls it) equals
  // the same arithmetic on the raw batch.
  in = fwd_input();
  in.x = in.x.narrow(0, 0, 1);
  in.timestep = in.timestep.narrow(0, 0, 1);
  in.caption = in.caption.narrow(0, 0, 1);
  nn::DreamClearDitInput two = fwd_input();
  two.x = torch::cat({in.x, in.x});
  two.timestep = torch::cat({in.timestep, in.timestep});
  two.caption = dc_golden("cfg.y");
  const torch::Tensor r2 = m.dit->forward(two);
  const torch::Tensor g2 = torch::cat(
      {r2.narrow(0, 1, 1).narrow(1, 0, 3) + 4.5 * (r2.narrow(0, 0, 1).narrow(1, 0, 3) - r2.narrow(0, 1, 1).narrow(1, 0, 3)),
       r2.narrow(0, 0, 1).narrow(1, 3, 5)},
      1);
  CHECK(dc_err(m.dit->forward_cfg(in, 4.5), g2) < 1e-6 * dc_scale(g2));
}

TEST_CASE("dreamclear tiles: forward_with_cfg_tile of the reference") {
  model::DreamClearModel& m = dc_tiny();
  torch::NoGradGuard ng;
  model::DreamClearRun run;
  run.cfg_scale = 4.5;
  run.tile = 16;
  run.tile_overlap = 4;
  const torch::Tensor ref = dc_golden("tile.out").narrow(0, 0, 1);
  const torch::Tensor out = m.guided_output(dc_golden("tile.x").narrow(0, 0, 1), 999, dc_golden("tile.c_lq"),
                                            dc_golden("tile.c_pre"), fwd_caption(), run);
  const double scale = dc_scale(ref), err = dc_err(out, ref);
  INFO("tile.out scale " << scale << ", error " << err);
  CHECK(err < 2e-5 * scale);
}

TEST_CASE("dreamclear sampler: IDDPM p_sample_loop with guidance equals the reference") {
  model::DreamClearModel& m = dc_tiny();
  torch::NoGradGuard ng;
  model::DreamClearRun run;
  run.steps = 4;
  run.tile = 0;  // the reference's forward_with_cfg on the whole 16x12 latent
  model::DreamClearInjected inj;
  inj.z0 = dc_golden("sample.z0");
  const torch::Tensor noise = dc_golden("sample.noise");
  for (int64_t k = 0; k < noise.size(0); ++k) inj.noise.push_back(noise[k].narrow(0, 0, 1));
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const torch::Tensor out = m.sample(dc_golden("fwd.c_lq"), dc_golden("fwd.c_pre"), fwd_caption(), run, gen, &inj);
  const torch::Tensor ref = dc_golden("sample.out").narrow(0, 0, 1);
  const double scale = dc_scale(ref), err = dc_err(out, ref);
  INFO("sample.out scale " << scale << ", error " << err);
  CHECK(err < 5e-5 * scale);
}

TEST_CASE("dreamclear SwinIR equals the reference") {
  model::DreamClearModel& m = dc_tiny();
  torch::NoGradGuard ng;
  const torch::Tensor ref = dc_golden("swinir.out");
  CHECK(dc_err(m.swinir->forward(dc_golden("swinir.in")), ref) < 1e-5);
  // A size whose 1/8 features do not fill the windows is refused by name.
  CHECK_THROWS_AS(m.swinir->forward(torch::rand({1, 3, 80, 72})), Error);
}

TEST_CASE("dreamclear pipeline: test.py's log_validation step by step") {
  model::DreamClearModel& m = dc_tiny();
  for (const std::string tag : {"p1", "p2"}) {
    INFO("case " << tag);
    const torch::Tensor lq = dc_golden(tag + ".lq").contiguous();
    Image img(int(lq.size(1)), int(lq.size(0)), 3);
    std::memcpy(img.u8(), lq.data_ptr<uint8_t>(), img.data.size());
    model::DreamClearCaption cap;
    cap.features = dc_golden(tag + ".y");
    cap.mask = dc_golden(tag + ".mask");
    model::DreamClearRun run;
    run.steps = 3;
    run.min_size = 128;
    run.tile = 16;
    run.tile_overlap = 4;
    model::DreamClearInjected inj;
    inj.z0 = dc_golden(tag + ".z0");
    const torch::Tensor noise = dc_golden(tag + ".noise");
    for (int64_t k = 0; k < noise.size(0); ++k) inj.noise.push_back(noise[k].narrow(0, 0, 1));
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
    model::DreamClearTrace tr;
    const Image out = m.restore(img, cap, run, gen, &tr, &inj);
    CHECK(dc_err(tr.img_lq, dc_golden(tag + ".img_lq")) == 0);  // PIL bicubic to the byte
    CHECK(dc_err(tr.img_pre, dc_golden(tag + ".img_pre")) < 1e-5);
    CHECK(dc_err(tr.latent_lq, dc_golden(tag + ".latent_lq")) < 1e-4);
    CHECK(dc_err(tr.latent_pre, dc_golden(tag + ".latent_pre")) < 1e-4);
    const torch::Tensor samples = dc_golden(tag + ".samples");
    const double scale = dc_scale(samples), err = dc_err(tr.samples, samples);
    INFO("samples scale " << scale << ", error " << err);
    CHECK(err < 5e-5 * scale);
    CHECK(dc_err(tr.decoded, dc_golden(tag + ".decoded")) < 2e-5);
    CHECK(dc_err(tr.hq.squeeze(0), dc_golden(tag + ".hq")) < 2e-5);
    const torch::Tensor ref_out = dc_golden(tag + ".out");
    REQUIRE(out.width == ref_out.size(1));
    REQUIRE(out.height == ref_out.size(0));
    const torch::Tensor mine =
        torch::from_blob(const_cast<uint8_t*>(out.u8()), {out.height, out.width, 3}, torch::kUInt8).to(torch::kInt);
    const torch::Tensor diff = (mine - ref_out.to(torch::kInt)).abs();
    // x * 255 truncated: values within 1e-3 of the reference land on the same
    // byte or the next; few land on the next.
    CHECK(diff.max().item<int>() <= 1);
    CHECK(diff.gt(0).sum().item<int64_t>() < ref_out.numel() / 1000);
  }
}

TEST_CASE("dreamclear caption files: DreamClear's npz format, refused by name when wrong") {
  const model::DreamClearCaption c = model::read_dreamclear_caption(kDcDir + "/dreamclear_caption.npz", 8, 32);
  CHECK(dc_err(c.features, dc_golden("p1.y")) == 0);
  CHECK(dc_err(c.mask, dc_golden("p1.mask")) == 0);
  try {
    model::read_dreamclear_caption(kDcDir + "/dreamclear_caption.npz", 120, 4096);
    FAIL("a caption of another size loaded");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("dreamclear_caption.npz") != std::string::npos);
    CHECK(std::string(e.what()).find("[1, 120, 4096]") != std::string::npos);
  }
  CHECK_THROWS_AS(model::read_dreamclear_caption(kDcDir + "/npz_stored.npz", 8, 32), Error);
}

TEST_CASE("dreamclear LRE start: q_sample of the pre-restored latent worked by hand") {
  model::DreamClearModel& m = dc_tiny();
  torch::NoGradGuard ng;
  const torch::Tensor pre = dc_golden("fwd.c_pre");
  model::DreamClearRun run;
  torch::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(7), g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  // Off: the start is the generator's N(0, 1) draw itself.
  const torch::Tensor n = at::randn({1, 4, 16, 12}, g2, torch::kFloat);
  CHECK(dc_err(m.start_latent(pre, run, g1), n) == 0);
  // Step 500 of the linear schedule: a = prod(1 - beta_i), beta_i = 1e-4 + i (0.02 - 1e-4) / 999.
  double a = 1;
  for (int i = 0; i <= 500; ++i) a *= 1 - (1e-4 + i * (0.02 - 1e-4) / 999);
  run.lre_start = 500;
  const torch::Tensor z = m.start_latent(pre, run, g1);
  const torch::Tensor n2 = at::randn({1, 4, 16, 12}, g2, torch::kFloat);
  CHECK(dc_err(z, std::sqrt(a) * pre + std::sqrt(1 - a) * n2) < 1e-6);
  run.lre_start = 1000;
  CHECK_THROWS_AS(m.start_latent(pre, run, g1), Error);
}
