// One element-type enum for .npy arrays and safetensors tensors.
#include <doctest/doctest.h>

#include <type_traits>

#include "rass/core/error.hpp"
#include "rass/io/dtype.hpp"
#include "rass/io/npy.hpp"
#include "rass/io/safetensors.hpp"

using namespace rass;

static_assert(std::is_same_v<decltype(NpyArray::dtype), decltype(TensorView::dtype)>,
              ".npy and safetensors share rass::DType");

TEST_CASE("DType: safetensors names, sizes, floating types; numpy descr where numpy has one") {
  for (DType t : {DType::b1, DType::u8, DType::i8, DType::u16, DType::i16, DType::f16, DType::bf16, DType::u32,
                  DType::i32, DType::f32, DType::f64, DType::u64, DType::i64, DType::f8_e4m3, DType::f8_e5m2}) {
    DType back;
    REQUIRE(dtype_from_name(dtype_name(t), back));
    CHECK(back == t);
  }
  DType t;
  CHECK(!dtype_from_name("F12", t));
  CHECK(dtype_size(DType::bf16) == 2);
  CHECK(dtype_size(DType::i64) == 8);
  CHECK(std::string(dtype_name(DType::b1)) == "BOOL");
  CHECK(dtype_is_float(DType::bf16));
  CHECK(!dtype_is_float(DType::i32));
  CHECK(std::string(dtype_descr(DType::i64)) == "<i8");
  CHECK_THROWS_AS(dtype_descr(DType::bf16), Error);
  // bf16 values convert to float: 1.5 is 0x3FC0, -2 is 0xC000.
  NpyArray a;
  a.dtype = DType::bf16;
  a.shape = {2};
  a.data = {0xC0, 0x3F, 0x00, 0xC0};
  const std::vector<float> v = npy_to_f32(a);
  CHECK(v[0] == 1.5f);
  CHECK(v[1] == -2.f);
}
