// rass::train::linear_sum_assignment against brute force (every assignment
// enumerated) on random matrices up to 7x7 and rectangular ones, with ties,
// and against scipy.optimize.linear_sum_assignment's output on larger ones
// (tests/train/make_lsa_fixture.py -> tests/fixtures/train/lsa_scipy.safetensors).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/train/linear_assignment.hpp"

using rass::train::linear_sum_assignment;
using Pairs = std::vector<std::pair<int64_t, int64_t>>;

namespace {

double total(const std::vector<double>& c, int64_t cols, const Pairs& p) {
  double s = 0;
  for (auto [r, k] : p) s += c[size_t(r * cols + k)];
  return s;
}

// Minimum over every injective map of the shorter side into the longer one.
// *optima: how many distinct injections reach it; *arg: one of them as pairs
// sorted by row.
double brute_force(const std::vector<double>& c, int64_t rows, int64_t cols, int* optima, Pairs* arg) {
  const bool wide = rows <= cols;
  const int64_t n = wide ? rows : cols, m = wide ? cols : rows;
  std::vector<int64_t> perm(static_cast<size_t>(m));
  std::iota(perm.begin(), perm.end(), 0);
  double best = INFINITY;
  std::set<std::vector<int64_t>> best_sets;
  do {
    // The first n entries of each permutation of m give every injection
    // (each repeated (m-n)! times; the set below removes the repeats).
    double s = 0;
    for (int64_t a = 0; a < n; ++a)
      s += wide ? c[size_t(a * cols + perm[size_t(a)])] : c[size_t(perm[size_t(a)] * cols + a)];
    std::vector<int64_t> key(perm.begin(), perm.begin() + n);
    if (s < best - 1e-12) {
      best = s;
      best_sets = {key};
    } else if (std::abs(s - best) <= 1e-12) {
      best_sets.insert(key);
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  *optima = int(best_sets.size());
  arg->clear();
  const auto& key = *best_sets.begin();
  for (int64_t a = 0; a < n; ++a) arg->push_back(wide ? std::pair{a, key[size_t(a)]} : std::pair{key[size_t(a)], a});
  std::sort(arg->begin(), arg->end());
  return best;
}

void check_valid(const Pairs& p, int64_t rows, int64_t cols) {
  REQUIRE(int64_t(p.size()) == std::min(rows, cols));
  std::set<int64_t> rs, cs;
  for (size_t k = 0; k < p.size(); ++k) {
    CHECK(p[k].first >= 0);
    CHECK(p[k].first < rows);
    CHECK(p[k].second >= 0);
    CHECK(p[k].second < cols);
    rs.insert(p[k].first);
    cs.insert(p[k].second);
    if (k) CHECK(p[k - 1].first < p[k].first);  // sorted by row
  }
  CHECK(rs.size() == p.size());
  CHECK(cs.size() == p.size());
}

}  // namespace

TEST_CASE("linear_sum_assignment equals brute force on random matrices up to 7x7, square and rectangular, with ties") {
  std::mt19937_64 gen(12345);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> small(0, 2);
  int cases = 0, unique_checked = 0;
  for (int64_t rows = 1; rows <= 7; ++rows)
    for (int64_t cols = 1; cols <= 7; ++cols)
      for (int rep = 0; rep < 6; ++rep) {
        // Half continuous (unique optimum), half integers 0..2 (many ties).
        const bool ties = rep % 2 == 1;
        std::vector<double> c(size_t(rows * cols));
        for (double& x : c) x = ties ? small(gen) : u(gen) * 10;
        int optima = 0;
        Pairs arg;
        const double best = brute_force(c, rows, cols, &optima, &arg);
        const Pairs p = linear_sum_assignment(c, rows, cols);
        check_valid(p, rows, cols);
        CHECK(total(c, cols, p) == doctest::Approx(best).epsilon(1e-12));
        if (optima == 1) {
          // The unique optimum: the brute force's pairs themselves.
          ++unique_checked;
          CHECK(p == arg);
        }
        ++cases;
      }
  CHECK(cases == 294);
  CHECK(unique_checked > 100);
}

TEST_CASE("linear_sum_assignment: named rectangular cases 3x6 and 6x3 (hand-checked)") {
  // Row 0 prefers col 5 (0), row 1 col 5 too (0.5) but then col 1 (1);
  // row 2 col 0 (0). Optimum 0 + 1 + 0 = 1: (0,5), (1,1), (2,0).
  const std::vector<double> wide = {9, 9, 9, 9, 9, 0,   //
                                    9, 1, 9, 9, 9, 0.5,  //
                                    0, 9, 9, 9, 9, 9};
  const Pairs p = linear_sum_assignment(wide, 3, 6);
  CHECK(p == Pairs{{0, 5}, {1, 1}, {2, 0}});
  // The transpose: pairs swapped and sorted by row.
  std::vector<double> tall(18);
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < 6; ++k) tall[size_t(k * 3 + r)] = wide[size_t(r * 6 + k)];
  CHECK(linear_sum_assignment(tall, 6, 3) == Pairs{{0, 2}, {1, 1}, {5, 0}});
  // Empty sides (an image without targets: Mask2Former's Q x 0 cost).
  CHECK(linear_sum_assignment({}, 5, 0).empty());
  CHECK(linear_sum_assignment({}, 0, 4).empty());
  // A greedy choice is wrong here: row 0's cheapest column (0, cost 1) leaves
  // row 1 with 100; the optimum takes 2 + 2.
  CHECK(linear_sum_assignment({1, 2, 2, 100}, 2, 2) == Pairs{{0, 1}, {1, 0}});
}

TEST_CASE("linear_sum_assignment: non-finite costs are an error that names the entry") {
  std::vector<double> c = {1, 2, 3, 4, 5, 6};
  c[4] = std::nan("");
  try {
    linear_sum_assignment(c, 2, 3, "matcher (image 1)");
    FAIL("no error");
  } catch (const rass::Error& e) {
    CHECK(e.code() == rass::ExitCode::runtime);
    CHECK(std::string(e.what()).find("matcher (image 1): cost[1][1] is nan") != std::string::npos);
  }
  c[4] = INFINITY;
  CHECK_THROWS_WITH_AS(linear_sum_assignment(c, 3, 2), doctest::Contains("cost[2][0] is inf"), rass::Error);
  CHECK_THROWS_AS(linear_sum_assignment(c, 2, 2), std::invalid_argument);
}

TEST_CASE("linear_sum_assignment equals scipy's on larger matrices (100x20, 20x100, 150x150, ties)") {
  auto f = rass::SafeTensorsFile::open(std::string(RASS_FIXTURES) + "/train/lsa_scipy.safetensors");
  const auto unique = nlohmann::json::parse(f->metadata().at("unique")).get<std::vector<std::string>>();
  int n = 0;
  for (const auto& v : f->tensors()) {
    if (v.name.rfind("cost.", 0) != 0) continue;
    const std::string name = v.name.substr(5);
    CAPTURE(name);
    const rass::TensorView* a = f->find("assign." + name);
    REQUIRE(a);
    REQUIRE(v.dtype == rass::DType::f64);
    REQUIRE(v.shape.size() == 2);
    const int64_t rows = v.shape[0], cols = v.shape[1];
    std::vector<double> c(size_t(rows * cols));
    std::memcpy(c.data(), v.data, c.size() * sizeof(double));
    Pairs ref(size_t(a->shape[0]));
    const auto* ai = reinterpret_cast<const int64_t*>(a->data);
    for (size_t k = 0; k < ref.size(); ++k) ref[k] = {ai[2 * k], ai[2 * k + 1]};

    const Pairs p = linear_sum_assignment(c, rows, cols);
    check_valid(p, rows, cols);
    CHECK(total(c, cols, p) == doctest::Approx(total(c, cols, ref)).epsilon(1e-12));
    if (std::find(unique.begin(), unique.end(), name) != unique.end()) CHECK(p == ref);
    ++n;
  }
  CHECK(n == 6);
}
