#include "rass/io/dtype.hpp"

namespace rass {

namespace {
struct Info {
  DType t;
  const char* name;
  size_t size;
  bool floating;
};
constexpr Info kTypes[] = {
    {DType::b1, "BOOL", 1, false},       {DType::u8, "U8", 1, false},   {DType::i8, "I8", 1, false},
    {DType::u16, "U16", 2, false},       {DType::i16, "I16", 2, false}, {DType::f16, "F16", 2, true},
    {DType::bf16, "BF16", 2, true},      {DType::u32, "U32", 4, false}, {DType::i32, "I32", 4, false},
    {DType::f32, "F32", 4, true},        {DType::f64, "F64", 8, true},  {DType::u64, "U64", 8, false},
    {DType::i64, "I64", 8, false},       {DType::f8_e4m3, "F8_E4M3", 1, true},
    {DType::f8_e5m2, "F8_E5M2", 1, true},
};
const Info* info(DType t) {
  for (const Info& i : kTypes)
    if (i.t == t) return &i;
  return nullptr;
}
}  // namespace

size_t dtype_size(DType t) { return info(t) ? info(t)->size : 0; }
const char* dtype_name(DType t) { return info(t) ? info(t)->name : "?"; }
bool dtype_is_float(DType t) { return info(t) && info(t)->floating; }
bool dtype_from_name(const std::string& name, DType& out) {
  for (const Info& i : kTypes)
    if (name == i.name) return out = i.t, true;
  return false;
}

}  // namespace rass
