// Small label maps written out by hand in the mIoU tests.
#pragma once
#include <cstdint>
#include <vector>

#include "rass/core/image.hpp"

namespace rass::test {

// A w x h single-channel label map (8- or 16-bit) with the values `v`, row-major.
inline Image label_map(int w, int h, const std::vector<int>& v, int depth = 8) {
  Image img(w, h, 1, depth);
  for (size_t i = 0; i < v.size(); ++i) {
    if (depth == 8)
      img.u8()[i] = uint8_t(v[i]);
    else
      img.u16()[i] = uint16_t(v[i]);
  }
  return img;
}

}  // namespace rass::test
