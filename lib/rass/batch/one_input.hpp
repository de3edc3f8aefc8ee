// A batch tool given one input (-o FILE): the batch-only flags that would do
// nothing there are refused rather than silently ignored.
#pragma once
#include <string>

namespace rass::batch {

// --resume: Error(usage) "--resume skips a batch's finished outputs; one
// image (-o FILE) is always made" + `hint`. `one`: "one image (-o FILE)".
// (--shard is not refused by the network tools: Slurm array jobs set it for
// every run through the environment.)
void refuse_resume_for_one(bool resume, const std::string& one, const std::string& hint = "");

}  // namespace rass::batch
