#include "rass/core/version.hpp"
namespace rass {
const char* version() { return RASS_VERSION; }
}  // namespace rass
