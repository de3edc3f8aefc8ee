// The element types of tensors in files: one enum for .npy arrays and
// safetensors tensors (and what the network layer maps to torch types).
// Names are safetensors' spellings ("F32", "BF16", "BOOL"); the numpy
// descr of a type is in io/npy.hpp (bf16 and the fp8 types have none).
#pragma once
#include <cstddef>
#include <string>

namespace rass {

enum class DType { b1, u8, i8, u16, i16, f16, bf16, u32, i32, f32, f64, u64, i64, f8_e4m3, f8_e5m2 };

size_t dtype_size(DType t);          // bytes per element
const char* dtype_name(DType t);     // "F32", "I64", "BOOL", "F8_E4M3", ...
bool dtype_from_name(const std::string& name, DType& out);  // the inverse; false if unknown
bool dtype_is_float(DType t);        // f16, bf16, f32, f64, fp8

}  // namespace rass
