#include "rass/train/linear_assignment.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "rass/core/error.hpp"

namespace rass::train {

namespace {

using Pairs = std::vector<std::pair<int64_t, int64_t>>;

// rows <= cols. Every row is assigned in turn by a Dijkstra search over the
// reduced costs c[i][j] - u[i] - v[j] (all >= 0 by the dual feasibility the
// updates keep) for the cheapest path from the new row to a free column;
// the path's assignments are then flipped (Crouse 2016, Algorithm 1 and the
// dual update of section IV.B).
Pairs solve_wide(const std::vector<double>& c, int64_t nr, int64_t nc) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(size_t(nr), 0.0), v(size_t(nc), 0.0), dist(size_t(nc), inf);
  std::vector<int64_t> col4row(size_t(nr), -1), row4col(size_t(nc), -1), path(size_t(nc), -1);
  std::vector<int64_t> remaining, scanned_rows, scanned_cols;
  remaining.reserve(size_t(nc));
  for (int64_t cur = 0; cur < nr; ++cur) {
    std::fill(dist.begin(), dist.end(), inf);
    std::fill(path.begin(), path.end(), -1);
    remaining.clear();
    for (int64_t j = 0; j < nc; ++j) remaining.push_back(j);
    scanned_rows.clear();
    scanned_cols.clear();
    double min_val = 0;
    int64_t i = cur, sink = -1;
    while (sink < 0) {
      scanned_rows.push_back(i);
      double lowest = inf;
      size_t best = 0;
      const double* ci = c.data() + i * nc;
      for (size_t k = 0; k < remaining.size(); ++k) {
        const int64_t j = remaining[k];
        const double r = min_val + ci[j] - u[size_t(i)] - v[size_t(j)];
        if (r < dist[size_t(j)]) {
          dist[size_t(j)] = r;
          path[size_t(j)] = i;
        }
        // Among equally short paths prefer one ending at a free column: the
        // search stops there, one augmentation sooner.
        if (dist[size_t(j)] < lowest || (dist[size_t(j)] == lowest && row4col[size_t(j)] < 0)) {
          lowest = dist[size_t(j)];
          best = k;
        }
      }
      // Costs are finite (checked), so some column is always reachable.
      min_val = lowest;
      const int64_t j = remaining[best];
      remaining[best] = remaining.back();
      remaining.pop_back();
      scanned_cols.push_back(j);
      if (row4col[size_t(j)] < 0)
        sink = j;
      else
        i = row4col[size_t(j)];
    }
    // Dual update: keeps reduced costs >= 0 and those of assigned pairs 0.
    u[size_t(cur)] += min_val;
    for (int64_t r : scanned_rows)
      if (r != cur) u[size_t(r)] += min_val - dist[size_t(col4row[size_t(r)])];
    for (int64_t j : scanned_cols) v[size_t(j)] -= min_val - dist[size_t(j)];
    // Augment along the path back from the sink.
    for (int64_t j = sink;;) {
      const int64_t r = path[size_t(j)];
      row4col[size_t(j)] = r;
      std::swap(col4row[size_t(r)], j);
      if (r == cur) break;
    }
  }
  Pairs out;
  out.reserve(size_t(nr));
  for (int64_t r = 0; r < nr; ++r) out.emplace_back(r, col4row[size_t(r)]);
  return out;
}

}  // namespace

Pairs linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols, const std::string& what) {
  if (rows < 0 || cols < 0 || cost.size() != size_t(rows) * size_t(cols))
    throw std::invalid_argument("linear_sum_assignment: cost has " + std::to_string(cost.size()) +
                                " values, not " + std::to_string(rows) + " x " + std::to_string(cols));
  for (size_t k = 0; k < cost.size(); ++k)
    if (!std::isfinite(cost[k]))
      throw_runtime(what + ": cost[" + std::to_string(int64_t(k) / cols) + "][" + std::to_string(int64_t(k) % cols) +
                    "] is " + (std::isnan(cost[k]) ? "nan" : cost[k] > 0 ? "inf" : "-inf") +
                    " (non-finite predictions: the run diverged; a lower loop.lr or loop.clip_grad_norm may help)");
  if (rows == 0 || cols == 0) return {};
  if (rows <= cols) return solve_wide(cost, rows, cols);
  // More rows than columns: solve the transpose, then swap back.
  std::vector<double> t(cost.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[size_t(c * rows + r)] = cost[size_t(r * cols + c)];
  Pairs p = solve_wide(t, cols, rows);
  for (auto& rc : p) std::swap(rc.first, rc.second);
  std::sort(p.begin(), p.end());
  return p;
}

}  // namespace rass::train
