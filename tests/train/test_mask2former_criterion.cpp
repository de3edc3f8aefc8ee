// The Mask2Former criterion (lib/rass/train/mask2former_criterion.hpp):
// against Mask2Former's own SetCriterion + HungarianMatcher replayed with the
// reference's random draws (tests/train/make_criterion_fixture.py ->
// tests/fixtures/train/criterion_m2f.safetensors): every loss term, the
// matchings, the weighted total and its gradients; each formula on tiny
// tensors worked by hand; target_from_label_map; point sampling; the
// keyed-generator determinism contract (a sample's points do not depend on
// the batch it is in; N processes equal one with the combined batch).
#include "../nn/torch_doctest.hpp"

#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/train/mask2former_criterion.hpp"
#include "rass/train/mask2former_terms.hpp"
#include "rass/train/point_sampling.hpp"

using namespace rass;
using namespace rass::train;

namespace {

// fp32 parity with Mask2Former's criterion (torch 2.1.2 CPU) on Debian's
// LibTorch 1.13 CPU, about 3x the largest error measured (the test prints
// them): terms (values 0.8..2.2) 6.0e-7; the weighted total (46.67) 3.8e-6,
// one fp32 ulp; gradients 4.5e-8.
constexpr double TOL_TERM = 2e-6;
constexpr double TOL_TOTAL = 1.2e-5;
constexpr double TOL_GRAD = 1.5e-7;

torch::Tensor get(const SafeTensorsFile& f, const std::string& name) {
  const TensorView* v = f.find(name);
  REQUIRE_MESSAGE(v, "fixture lacks ", name);
  return model::to_tensor(*v, f.path());
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

torch::Tensor term(const CriterionResult& r, const std::string& name) {
  for (const auto& [k, v] : r.terms)
    if (k == name) return v;
  FAIL("no term ", name);
  return {};
}

}  // namespace

namespace {

void check_against_reference(const std::string& name) {
  auto f = SafeTensorsFile::open(std::string(RASS_FIXTURES) + "/train/criterion_" + name + ".safetensors");
  const int64_t n_aux = std::stoll(f->metadata().at("aux")), n_draws = std::stoll(f->metadata().at("draws"));
  const int64_t classes = std::stoll(f->metadata().at("num_classes"));
  nn::MaskFormerOutput out;
  out.pred_logits = get(*f, "in.logits").requires_grad_();
  out.pred_masks = get(*f, "in.masks").requires_grad_();
  for (int64_t i = 0; i < n_aux; ++i)
    out.aux.emplace_back(get(*f, "in.aux" + std::to_string(i) + ".logits").requires_grad_(),
                         get(*f, "in.aux" + std::to_string(i) + ".masks").requires_grad_());
  const torch::Tensor maps = get(*f, "in.label_map");
  std::vector<SegTarget> targets;
  for (int64_t b = 0; b < maps.size(0); ++b) targets.push_back(target_from_label_map(maps[b], classes));

  CriterionConfig c;
  c.num_points = std::stoll(f->metadata().at("num_points"));
  CriterionContext ctx;
  for (int64_t b = 0; b < maps.size(0); ++b) ctx.sample_keys.push_back(b);
  int64_t next = 0;
  ctx.rand_hook = [&](const std::vector<int64_t>& shape) {
    char name[32];
    std::snprintf(name, sizeof name, "draw.%03d", int(next++));
    torch::Tensor d = get(*f, name);
    CHECK(d.sizes() == torch::IntArrayRef(shape));
    return d;
  };
  const CriterionResult r = mask2former_loss(out, targets, c, ctx);
  CHECK(next == n_draws);  // every reference draw replayed, in order

  // Terms: the same names, the same values.
  const auto names = nlohmann::json::parse(f->metadata().at("terms")).get<std::vector<std::string>>();
  CHECK(r.terms.size() == names.size());
  double e_term = 0;
  for (const auto& name : names) {
    CAPTURE(name);
    e_term = std::max(e_term, std::abs(term(r, name).item<double>() - get(*f, "term." + name).item<double>()));
  }
  const double e_total = std::abs(r.loss.item<double>() - get(*f, "total").item<double>());
  MESSAGE("terms max abs error ", e_term, ", total ", e_total, " (total ", r.loss.item<double>(), ")");
  CHECK(e_term < TOL_TERM);
  CHECK(e_total < TOL_TOTAL);

  // Matchings of every prediction and image.
  REQUIRE(r.matches.size() == size_t(n_aux + 1));
  for (size_t l = 0; l < r.matches.size(); ++l)
    for (size_t b = 0; b < targets.size(); ++b) {
      const torch::Tensor ref = get(*f, "match." + std::to_string(l) + "." + std::to_string(b));
      Matching m;
      for (int64_t k = 0; k < ref.size(0); ++k) m.emplace_back(ref[k][0].item<int64_t>(), ref[k][1].item<int64_t>());
      CAPTURE(l);
      CAPTURE(b);
      CHECK(r.matches[l][b] == m);
    }

  // Gradients of the weighted total.
  r.loss.backward();
  double e_grad = max_abs(out.pred_logits.grad(), get(*f, "grad.logits"));
  e_grad = std::max(e_grad, max_abs(out.pred_masks.grad(), get(*f, "grad.masks")));
  for (int64_t i = 0; i < n_aux; ++i) {
    const std::string p = "grad.aux" + std::to_string(i);
    e_grad = std::max(e_grad, max_abs(out.aux[size_t(i)].first.grad(), get(*f, p + ".logits")));
    e_grad = std::max(e_grad, max_abs(out.aux[size_t(i)].second.grad(), get(*f, p + ".masks")));
  }
  MESSAGE("gradients max abs error ", e_grad, " (largest ",
          get(*f, "grad.masks").abs().max().item<double>(), ")");
  CHECK(e_grad < TOL_GRAD);
}

}  // namespace

TEST_CASE("mask2former_loss equals Mask2Former's SetCriterion: terms, matchings, total, gradients (fp32)") {
  SUBCASE("3 images (one without targets), 8 queries, 3 aux predictions") { check_against_reference("m2f"); }
  SUBCASE("3 queries for 5 targets: some targets unmatched") { check_against_reference("m2f_fewq"); }
}

TEST_CASE("sigmoid_ce_loss and dice_loss of one mask at 4 points, by hand") {
  // logits 0, ln 3, -ln 3, 0 -> sigmoid 1/2, 3/4, 1/4, 1/2; labels 1, 1, 0, 0.
  // BCE per point: -ln(1/2), -ln(3/4), -ln(1 - 1/4), -ln(1 - 1/2)
  //   = ln 2, ln 4/3, ln 4/3, ln 2; mean = ln(8/3) / 2 = 0.4904146.
  // Dice: sum(s t) = 5/4, sum s = 2, sum t = 2:
  //   1 - (2 * 5/4 + 1) / (2 + 2 + 1) = 1 - 3.5 / 5 = 0.3.
  const double l3 = std::log(3.0);
  const torch::Tensor logits = torch::tensor({0.0, l3, -l3, 0.0}, torch::kFloat).view({1, 4});
  const torch::Tensor labels = torch::tensor({1.0, 1.0, 0.0, 0.0}, torch::kFloat).view({1, 4});
  CHECK(sigmoid_ce_loss(logits, labels, 1).item<double>() == doctest::Approx(std::log(8.0 / 3.0) / 2).epsilon(1e-6));
  CHECK(dice_loss(logits, labels, 1).item<double>() == doctest::Approx(0.3).epsilon(1e-6));
  // Divided by num_masks.
  CHECK(dice_loss(logits, labels, 2).item<double>() == doctest::Approx(0.15).epsilon(1e-6));
  // The matcher's pairwise costs of the same mask against itself's labels and
  // the complement (labels 0, 0, 1, 1): BCE ln 2, ln 4, ln 4, ln 2 -> mean
  // ln 8 / 2; dice 1 - (2 * 3/4 + 1) / (2 + 2 + 1) = 0.5.
  const torch::Tensor both = torch::cat({labels, 1 - labels}, 0);
  const torch::Tensor ce = batch_sigmoid_ce_cost(logits, both), dice = batch_dice_cost(logits, both);
  REQUIRE(ce.sizes() == torch::IntArrayRef({1, 2}));
  CHECK(ce[0][0].item<double>() == doctest::Approx(std::log(8.0 / 3.0) / 2).epsilon(1e-6));
  CHECK(ce[0][1].item<double>() == doctest::Approx(std::log(8.0) / 2).epsilon(1e-6));
  CHECK(dice[0][0].item<double>() == doctest::Approx(0.3).epsilon(1e-6));
  CHECK(dice[0][1].item<double>() == doctest::Approx(0.5).epsilon(1e-6));
}

TEST_CASE("class_loss: cross-entropy with the no-object weight, by hand") {
  // 2 queries, 2 classes + no object. Query 0: logits ln(1, 1, 2) -> softmax
  // (1/4, 1/4, 1/2), matched to a target of class 1: -ln(1/4) = ln 4, weight 1.
  // Query 1: logits 0 -> 1/3 each, unmatched -> no object: ln 3, weight 0.1.
  // Weighted mean: (ln 4 + 0.1 ln 3) / 1.1 = 1.3601406.
  const torch::Tensor logits = torch::tensor({0.0, 0.0, std::log(2.0), 0.0, 0.0, 0.0}, torch::kFloat).view({1, 2, 3});
  SegTarget t;
  t.labels = torch::tensor({int64_t(1)}, torch::kLong);
  t.masks = torch::zeros({1, 2, 2});
  const std::vector<Matching> m = {{{0, 0}}};
  const double expected = (std::log(4.0) + 0.1 * std::log(3.0)) / 1.1;
  CHECK(class_loss(logits, m, {t}, 0.1).item<double>() == doctest::Approx(expected).epsilon(1e-6));
  // An explicit divisor replaces the weight sum.
  CHECK(class_loss(logits, m, {t}, 0.1, 2.0).item<double>() ==
        doctest::Approx((std::log(4.0) + 0.1 * std::log(3.0)) / 2).epsilon(1e-6));
  // Unmatched, both queries are "no object": (ln 2 + ln 3) * 0.1 / 0.2.
  CHECK(class_loss(logits, {{}}, {t}, 0.1).item<double>() ==
        doctest::Approx((std::log(2.0) + std::log(3.0)) / 2).epsilon(1e-6));
}

TEST_CASE("target_from_label_map: one mask per class present, 255 ignored, bad values named") {
  const torch::Tensor map = torch::tensor({0, 2, 255, 2, 2, 0, 255, 4, 4}, torch::kLong).view({3, 3});
  const SegTarget t = target_from_label_map(map, 5);
  CHECK(torch::equal(t.labels, torch::tensor({0, 2, 4}, torch::kLong)));
  REQUIRE(t.masks.sizes() == torch::IntArrayRef({3, 3, 3}));
  CHECK((t.masks.scalar_type() == torch::kFloat));
  CHECK(torch::equal(t.masks[0], torch::tensor({1, 0, 0, 0, 0, 1, 0, 0, 0}, torch::kFloat).view({3, 3})));
  CHECK(torch::equal(t.masks[1], torch::tensor({0, 1, 0, 1, 1, 0, 0, 0, 0}, torch::kFloat).view({3, 3})));
  CHECK(torch::equal(t.masks[2], torch::tensor({0, 0, 0, 0, 0, 0, 0, 1, 1}, torch::kFloat).view({3, 3})));
  // All ignore: no targets.
  const SegTarget none = target_from_label_map(torch::full({3, 3}, 255, torch::kLong), 5);
  CHECK(none.labels.numel() == 0);
  CHECK(none.masks.sizes() == torch::IntArrayRef({0, 3, 3}));
  // A class beyond num_classes, and a negative one.
  torch::Tensor bad = map.clone();
  bad[1][2] = 7;
  CHECK_THROWS_WITH_AS(target_from_label_map(bad, 5, 255, "a.png"),
                       "a.png: value 7 at (1, 2) is not a class (0..4) nor the ignore label 255", Error);
  bad[1][2] = -1;
  CHECK_THROWS_WITH_AS(target_from_label_map(bad, 5), doctest::Contains("value -1 at (1, 2)"), Error);
  CHECK_THROWS_AS(target_from_label_map(torch::zeros({3, 3}), 5), Error);  // not integer
}

TEST_CASE("point_sample and uncertain points, by hand") {
  // 2x2 map [[1, 2], [3, 4]]; align_corners false puts pixel centres at 1/4
  // and 3/4. (1/2, 1/2): mean of all = 2.5; (1/4, 1/4): pixel (0,0) = 1;
  // x 1/4, y 3/4: pixel (1,0) = 3; (0, 0): a quarter of pixel (0,0) (the
  // rest is zero padding) = 0.25.
  const torch::Tensor in = torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kFloat).view({1, 1, 2, 2});
  const torch::Tensor pts = torch::tensor({0.5, 0.5, 0.25, 0.25, 0.25, 0.75, 0.0, 0.0}, torch::kFloat).view({1, 4, 2});
  const torch::Tensor v = point_sample(in, pts);
  REQUIRE(v.sizes() == torch::IntArrayRef({1, 1, 4}));
  CHECK(v[0][0][0].item<double>() == doctest::Approx(2.5));
  CHECK(v[0][0][1].item<double>() == doctest::Approx(1.0));
  CHECK(v[0][0][2].item<double>() == doctest::Approx(3.0));
  CHECK(v[0][0][3].item<double>() == doctest::Approx(0.25));
  CHECK(torch::equal(calculate_uncertainty(torch::tensor({-2.0, 0.5}).view({1, 1, 2})),
                     torch::tensor({-2.0, -0.5}).view({1, 1, 2})));

  // Logits -4 | 4 (1x2): at y 1/2, x 0.1 -> -2.8, 0.5 -> 0, 0.9 -> 2.8, 0.3
  // -> -3.2. 2 points, oversample 2, importance 0.5: the 4 drawn points, the
  // one most uncertain (x 0.5) kept, then 1 new random point.
  const torch::Tensor coarse = torch::tensor({-4.0, 4.0}, torch::kFloat).view({1, 1, 1, 2});
  int calls = 0;
  const UniformPoints uniform = [&](int64_t rows, int64_t points) {
    ++calls;
    CHECK(rows == 1);
    if (calls == 1) {
      CHECK(points == 4);
      return torch::tensor({0.1, 0.5, 0.5, 0.5, 0.9, 0.5, 0.3, 0.5}, torch::kFloat).view({1, 4, 2});
    }
    CHECK(points == 1);
    return torch::tensor({0.7, 0.2}, torch::kFloat).view({1, 1, 2});
  };
  const torch::Tensor c = uncertain_point_coords_with_randomness(coarse, 2, 2.0, 0.5, uniform);
  CHECK(calls == 2);
  CHECK(torch::allclose(c, torch::tensor({0.5, 0.5, 0.7, 0.2}, torch::kFloat).view({1, 2, 2})));
}

namespace {

nn::MaskFormerOutput random_output(int64_t b, int64_t q, int64_t classes, int64_t h, int64_t aux, uint64_t seed) {
  torch::manual_seed(seed);
  nn::MaskFormerOutput o;
  o.pred_logits = (torch::randn({b, q, classes + 1}) * 2).requires_grad_();
  o.pred_masks = (torch::randn({b, q, h, h}) * 3).requires_grad_();
  for (int64_t i = 0; i < aux; ++i)
    o.aux.emplace_back((torch::randn({b, q, classes + 1}) * 2).requires_grad_(),
                       (torch::randn({b, q, h, h}) * 3).requires_grad_());
  return o;
}

std::vector<SegTarget> random_targets(int64_t b, int64_t classes, int64_t h, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<SegTarget> t;
  for (int64_t i = 0; i < b; ++i) {
    // Blocky maps: classes on a 4x4 grid upsampled, some cells ignored.
    torch::Tensor cells = torch::randint(0, classes + 2, {1, 1, 4, 4}).to(torch::kFloat);
    torch::Tensor map = torch::upsample_nearest2d(cells, {h, h}).view({h, h}).to(torch::kLong);
    map.masked_fill_(map >= classes, 255);
    t.push_back(target_from_label_map(map, classes));
  }
  return t;
}

nn::MaskFormerOutput slice(const nn::MaskFormerOutput& o, int64_t from, int64_t to) {
  auto cut = [&](const torch::Tensor& t) { return t.detach().slice(0, from, to).clone().requires_grad_(); };
  nn::MaskFormerOutput s;
  s.pred_logits = cut(o.pred_logits);
  s.pred_masks = cut(o.pred_masks);
  for (const auto& [l, m] : o.aux) s.aux.emplace_back(cut(l), cut(m));
  return s;
}

}  // namespace

TEST_CASE("mask2former_loss: keyed points; 2 processes with half batches equal 1 with the whole batch") {
  const int64_t B = 4, Q = 6, C = 4, H = 12;
  CriterionConfig c;
  c.num_points = 48;
  const nn::MaskFormerOutput all = random_output(B, Q, C, H, 2, 1);
  std::vector<SegTarget> tg = random_targets(B, C, 40, 2);
  tg[3] = target_from_label_map(torch::full({40, 40}, 255, torch::kLong), C);  // one image without targets

  CriterionContext one;
  one.seed = 99;
  one.step = 5;
  one.sample_keys = {10, 11, 12, 13};
  const CriterionResult r1 = mask2former_loss(all, tg, c, one);
  r1.loss.backward();

  // The same call again: the same value, bit for bit (no global RNG state).
  const nn::MaskFormerOutput again = slice(all, 0, B);
  CHECK(mask2former_loss(again, tg, c, one).loss.item<float>() == r1.loss.item<float>());
  // Another step draws other points.
  CriterionContext other = one;
  other.step = 6;
  CHECK(mask2former_loss(again, tg, c, other).loss.item<float>() != r1.loss.item<float>());

  // Two processes: images 0-1 and 2-3 with the same global sample keys; the
  // allreduce sums each process's value with the other's (recorded first).
  std::vector<double> local[2];
  nn::MaskFormerOutput part[2] = {slice(all, 0, 2), slice(all, 2, 4)};
  const std::vector<SegTarget> tp[2] = {{tg[0], tg[1]}, {tg[2], tg[3]}};
  for (int p = 0; p < 2; ++p) {
    CriterionContext ctx = one;
    ctx.world = 2;
    ctx.sample_keys = {one.sample_keys[size_t(2 * p)], one.sample_keys[size_t(2 * p + 1)]};
    ctx.allreduce_sum = [&, p](double x) { local[p].push_back(x); return x; };
    mask2former_loss(slice(all, 2 * p, 2 * p + 2), tp[p], c, ctx);
  }
  REQUIRE(local[0].size() == 2);
  REQUIRE(local[1].size() == 2);
  double loss_mean = 0;
  for (int p = 0; p < 2; ++p) {
    CriterionContext ctx = one;
    ctx.world = 2;
    ctx.sample_keys = {one.sample_keys[size_t(2 * p)], one.sample_keys[size_t(2 * p + 1)]};
    size_t call = 0;
    ctx.allreduce_sum = [&, p](double x) {
      const double s = x + local[1 - p][call];
      ++call;
      return s;
    };
    const CriterionResult rp = mask2former_loss(part[p], tp[p], c, ctx);
    rp.loss.backward();
    loss_mean += rp.loss.item<double>() / 2;
  }
  CHECK(loss_mean == doctest::Approx(r1.loss.item<double>()).epsilon(1e-6));
  // The loop averages the processes' gradients: each half's gradient / 2
  // equals the whole batch's gradient of those images.
  auto check_half = [&](const torch::Tensor& whole, const torch::Tensor& g0, const torch::Tensor& g1) {
    CHECK(max_abs(whole.grad().slice(0, 0, 2), g0.grad() / 2) < 1e-7);
    CHECK(max_abs(whole.grad().slice(0, 2, 4), g1.grad() / 2) < 1e-7);
  };
  check_half(all.pred_logits, part[0].pred_logits, part[1].pred_logits);
  check_half(all.pred_masks, part[0].pred_masks, part[1].pred_masks);
  for (size_t i = 0; i < all.aux.size(); ++i) {
    check_half(all.aux[i].first, part[0].aux[i].first, part[1].aux[i].first);
    check_half(all.aux[i].second, part[0].aux[i].second, part[1].aux[i].second);
  }
  // With world 1, the num_masks overload is the same loss (Mask2Former's
  // normalisers: the batch's target count and the queries' weight sum).
  int64_t masks = 0;
  for (const auto& t : tg) masks += t.labels.size(0);
  const CriterionResult r2 = mask2former_loss(again, tg, c, one.seed, one.step, one.sample_keys, double(masks));
  CHECK(r2.loss.item<double>() == doctest::Approx(r1.loss.item<double>()).epsilon(1e-6));
}

TEST_CASE("mask2former_loss: no targets at all, deep supervision off, bad inputs") {
  CriterionConfig c;
  c.num_points = 16;
  const nn::MaskFormerOutput o = random_output(2, 4, 3, 8, 2, 3);
  const SegTarget empty = target_from_label_map(torch::full({8, 8}, 255, torch::kLong), 3);
  const CriterionResult r = mask2former_loss(o, {empty, empty}, c, 1, 0, {0, 1}, 1.0);
  // Only the class term: every query is "no object"; mask and dice are 0.
  CHECK(term(r, "loss_mask").item<double>() == 0);
  CHECK(term(r, "loss_dice_1").item<double>() == 0);
  CHECK(term(r, "loss_ce").item<double>() > 0);
  CHECK(r.terms.size() == 9);
  r.loss.backward();
  CHECK(o.pred_masks.grad().abs().max().item<double>() == 0);

  c.deep_supervision = false;
  const CriterionResult r1 = mask2former_loss(o, {empty, empty}, c, 1, 0, {0, 1}, 1.0);
  CHECK(r1.terms.size() == 3);
  CHECK(r1.matches.size() == 1);

  CHECK_THROWS_AS(mask2former_loss(o, {empty, empty}, c, 1, 0, {0, 1}, 0.0), std::invalid_argument);
  CHECK_THROWS_WITH_AS(mask2former_loss(o, {empty}, c, 1, 0, {0}, 1.0),
                       doctest::Contains("2 images but 1 targets"), Error);
  SegTarget wrong = target_from_label_map(torch::zeros({8, 8}, torch::kLong), 3);
  wrong.labels.fill_(3);  // the predictions have classes 0..2
  CHECK_THROWS_WITH_AS(mask2former_loss(o, {wrong, empty}, c, 1, 0, {0, 1}, 1.0),
                       doctest::Contains("target 0: a label is outside 0..2"), Error);
  // NaN logits: the matcher's cost is NaN, named.
  nn::MaskFormerOutput nan = random_output(2, 4, 3, 8, 0, 3);
  nan.pred_logits.detach().fill_(NAN);
  const SegTarget one = target_from_label_map(torch::zeros({8, 8}, torch::kLong), 3);
  CHECK_THROWS_WITH_AS(mask2former_loss(nan, {one, empty}, c, 1, 0, {0, 1}, 1.0),
                       doctest::Contains("mask2former matcher (layer 0, image 0, sample 0): cost[0][0] is nan"), Error);
}

TEST_CASE("bench: mask2former_loss forward+backward at the real size" * doctest::skip()) {
  // B 2, Q 100, 150 classes, masks 128x128, targets 512x512, 10 layers
  // (final + 9 aux), 12544 points. Run: test-train -tc='bench*' --no-skip
  const nn::MaskFormerOutput o = random_output(2, 100, 150, 128, 9, 5);
  const std::vector<SegTarget> t = random_targets(2, 150, 512, 6);
  CriterionConfig c;
  CriterionContext ctx;
  ctx.sample_keys = {0, 1};
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    ctx.step = rep;
    const CriterionResult r = mask2former_loss(o, t, c, ctx);
    const auto t1 = std::chrono::steady_clock::now();
    r.loss.backward();
    const auto t2 = std::chrono::steady_clock::now();
    MESSAGE("forward ", std::chrono::duration<double, std::milli>(t1 - t0).count(), " ms, backward ",
            std::chrono::duration<double, std::milli>(t2 - t1).count(), " ms (", torch::get_num_threads(),
            " threads; targets ", t[0].labels.size(0), " + ", t[1].labels.size(0), ")");
  }
}
