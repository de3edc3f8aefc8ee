// --device and --dtype of the network tools, parsed one way: usage errors
// (exit 2) for what is not a device or dtype name, a runtime error (exit 1)
// for CUDA asked of a build or machine without it.
#pragma once
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace rass::model {

c10::ScalarType parse_dtype(const std::string& s);  // fp32, fp16, bf16
c10::Device parse_device(const std::string& s);     // cpu, cuda, cuda:N

}  // namespace rass::model
