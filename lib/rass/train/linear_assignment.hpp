// The rectangular linear sum assignment problem (minimise), as
// scipy.optimize.linear_sum_assignment solves it and as Mask2Former's
// HungarianMatcher calls it: the shortest augmenting path method (a
// Jonker-Volgenant variant) described by D. F. Crouse, "On implementing 2D
// rectangular assignment algorithms", IEEE Trans. Aerospace and Electronic
// Systems 52(4), 2016. Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rass::train {

// `cost` is rows x cols, row-major. Returns min(rows, cols) pairs (row, col),
// sorted by row, every row and every column used at most once, with the
// smallest total cost (among several optima, any one). Either side may be the
// longer one; an empty side gives no pairs. O(min^2 * max) time.
//
// A NaN or infinite cost throws rass::Error(runtime) "<what>: cost[r][c] is
// nan" (Mask2Former's matching cost becomes NaN when the logits do, i.e. when
// training diverged); a size mismatch throws std::invalid_argument.
std::vector<std::pair<int64_t, int64_t>> linear_sum_assignment(const std::vector<double>& cost, int64_t rows,
                                                               int64_t cols,
                                                               const std::string& what = "assignment cost");

}  // namespace rass::train
