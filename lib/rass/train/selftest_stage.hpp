// `rass-train selftest`: a small linear model fitted to generated data. It
// needs no data set and no weights, so it checks a launch on a new machine or
// cluster (processes, rendezvous, gradient all-reduce, checkpoints, --resume)
// in seconds, and it follows the determinism contract of stage.hpp, so a run
// with N processes can be compared with one process and the same global batch.
//
// Data: `items` pairs (x, y), x ~ N(0, 1)^inputs keyed by (seed, item), y =
// A x + b* with a fixed random A, b* keyed by seed; each sample of each step
// adds noise * N(0, 1) to y, keyed by (seed, step, global sample index).
// Model: y = W x + b, W from init_seed, b = 0. Loss: the mean squared error
// over this process's samples and outputs.
#pragma once
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo selftest_stage_info();

}  // namespace rass::train
