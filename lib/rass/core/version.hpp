#pragma once
namespace rass {
// The toolkit version (CMake project version), written into every record.
const char* version();
}  // namespace rass
