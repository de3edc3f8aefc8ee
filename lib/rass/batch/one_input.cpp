#include "rass/batch/one_input.hpp"

#include "rass/core/error.hpp"

namespace rass::batch {

void refuse_resume_for_one(bool resume, const std::string& one, const std::string& hint) {
  if (resume) throw_usage("--resume skips a batch's finished outputs; " + one + " is always made" + hint);
}

}  // namespace rass::batch
