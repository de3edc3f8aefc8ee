// CLIPIQA against pyiqa 0.1.16 (oracle) and OpenAI's CLIP modules on a tiny
// random CLIP converted by scripts/convert_iqa_clipiqa.py (fixtures from
// tests/nn/make_iqa_clipiqa_fixture.py): the network's embeddings, the
// tokenizer's prompt ids, and the scores of both conventions, directly and
// through rass-eval-iqa's registry.
#include "torch_doctest.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/metrics/deep_iqa.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/iqa_clipiqa.hpp"

using namespace rass;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/nn/clipiqa";

torch::Tensor golden(const char* key) {
  static auto f = SafeTensorsFile::open(kDir + "/golden.safetensors");
  const TensorView* v = f->find(key);
  REQUIRE(v != nullptr);
  return model::to_tensor(*v, f->path());
}

double max_err(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// golden images [N,H,W,3] (uint8 values as float) -> [N,3,H,W] in [0,1]
torch::Tensor as_input(const torch::Tensor& img) { return img.permute({0, 3, 1, 2}).div(255); }

std::vector<Image> as_images(const torch::Tensor& img) {
  std::vector<Image> out;
  const torch::Tensor u8 = img.to(torch::kUInt8).contiguous();
  for (int64_t n = 0; n < img.size(0); ++n) {
    Image im(int(img.size(2)), int(img.size(1)), 3, 8);
    std::memcpy(im.u8(), u8[n].data_ptr<uint8_t>(), im.data.size());
    out.push_back(std::move(im));
  }
  return out;
}

// The ids up to the end-of-text token (clip.tokenize pads with 0, the
// tokenizer of transformers' layout with <|endoftext|>: padding is never read).
void check_ids(const torch::Tensor& ours, const torch::Tensor& ref) {
  REQUIRE(ours.sizes() == ref.sizes());
  for (int64_t p = 0; p < ref.size(0); ++p) {
    const int64_t eot = ref[p].argmax().item<int64_t>();
    CHECK(torch::equal(ours[p].slice(0, 0, eot + 1), ref[p].slice(0, 0, eot + 1)));
  }
}

}  // namespace

TEST_CASE("CLIPIQA equals pyiqa's clipiqa and the paper-pair score to 1e-5 (fp32), at three image sizes") {
  const model::ClipIqa pyiqa(kDir + "/clipiqa_rn50.safetensors", kDir + "/clipiqa_rn50_tokenizer",
                             model::clipiqa_pyiqa_prompts(), torch::kCPU);
  const model::ClipIqa paper(kDir + "/clipiqa_rn50.safetensors", kDir + "/clipiqa_rn50_tokenizer",
                             model::clipiqa_paper_prompts(), torch::kCPU);
  check_ids(pyiqa.prompt_ids(), golden("ids_pyiqa"));
  check_ids(paper.prompt_ids(), golden("ids_paper"));
  for (std::string tag : {"a", "b", "c"}) {
    INFO("images " << tag);
    const torch::Tensor x = as_input(golden(("img_" + tag).c_str()));
    const double e_fn = max_err(pyiqa.image_features(x), golden(("feat_nopos_" + tag).c_str()));
    const double e_fp = max_err(paper.image_features(x), golden(("feat_pos_" + tag).c_str()));
    const double e_s = max_err(pyiqa.score(x), golden(("clipiqa_" + tag).c_str()));
    const double e_p = max_err(paper.score(x), golden(("paper_" + tag).c_str()));
    MESSAGE("images ", tag, " ", x.sizes(), ": max abs error features ", e_fn, " / ", e_fp, ", clipiqa ", e_s,
            ", clipiqa@paper ", e_p);
    const double fscale = golden(("feat_pos_" + tag).c_str()).abs().max().item<double>();
    CHECK(e_fn < 1e-5 * std::max(1.0, fscale));
    CHECK(e_fp < 1e-5 * std::max(1.0, fscale));
    CHECK(e_s < 1e-5);
    CHECK(e_p < 1e-5);
  }
}

TEST_CASE("clipiqa and clipiqa@paper through rass-eval-iqa's registry; missing files and tiny images refused") {
  model::register_clipiqa_metric();
  metrics::DeepIqaOptions opt;
  opt.weights_dir = kDir;
  for (std::string name : {"clipiqa", "clipiqa@paper"}) {
    INFO(name);
    const metrics::DeepIqaMetric* m = metrics::find_deep_iqa_metric(name);
    REQUIRE(m != nullptr);
    CHECK_FALSE(m->full_reference);
    CHECK(m->weights_file == "clipiqa_rn50.safetensors");
    const auto scorer = m->load(opt);
    const std::vector<Image> imgs = as_images(golden("img_b"));
    std::vector<const Image*> ptrs;
    for (const Image& im : imgs) ptrs.push_back(&im);
    const std::vector<metrics::IqaValue> v = scorer->score(ptrs, {}, {"k0", "k1"});
    const torch::Tensor want = golden(name == "clipiqa" ? "clipiqa_b" : "paper_b");
    REQUIRE(v.size() == 2);
    for (int i = 0; i < 2; ++i) CHECK(std::abs(v[size_t(i)].value - want[i].item<double>()) < 1e-5);

    Image tiny(30, 40, 3, 8);
    try {
      scorer->score({&tiny}, {}, {"t"});
      FAIL("a 30-pixel-wide image was scored");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::bad_input);
      CHECK(std::string(e.what()).find("too small") != std::string::npos);
    }
  }
  // 31 pixels is the smallest side whose grid does not vanish (pyiqa accepts it too).
  CHECK(nn::clip_resnet_min_side() == 31);

  const std::string empty = std::filesystem::temp_directory_path() / ("rass-clipiqa-empty-" + std::to_string(::getpid()));
  std::filesystem::create_directories(empty);
  opt.weights_dir = empty;
  try {
    metrics::find_deep_iqa_metric("clipiqa")->load(opt);
    FAIL("loaded from an empty folder");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("clipiqa_rn50.safetensors") != std::string::npos);
    CHECK(std::string(e.what()).find("convert_iqa_clipiqa.py") != std::string::npos);
  }
  std::filesystem::remove_all(empty);
}
