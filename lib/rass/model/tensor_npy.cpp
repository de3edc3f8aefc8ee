#include "rass/model/tensor_npy.hpp"

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "rass/io/npy.hpp"
#include "rass/model/checkpoint.hpp"

namespace rass::model {

at::Tensor read_npy_float(const std::string& path) { return npy_float_tensor(read_npy(path)); }

at::Tensor npy_float_tensor(const NpyArray& a) {
  std::vector<float> v = npy_to_f32(a);
  const std::vector<int64_t> shape(a.shape.begin(), a.shape.end());
  return torch::from_blob(v.data(), shape, torch::kFloat).clone();
}

void write_npy_tensor(const std::string& path, const at::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU);
  if (c.scalar_type() != torch::kLong) c = c.to(torch::kFloat);
  c = c.contiguous();
  NpyArray a;
  a.dtype = file_dtype(c.scalar_type());
  a.shape.assign(c.sizes().begin(), c.sizes().end());
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  a.data.assign(p, p + c.nbytes());
  write_npy(path, a);
}

}  // namespace rass::model
