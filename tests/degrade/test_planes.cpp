// to_image8 / to_planes: the table and SSE2 paths give the bytes and floats of
// the per-sample formulas (round_to_byte; sample / 255 or / 65535), ties and
// out-of-range values included.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "rass/core/rng.hpp"
#include "rass/degrade/planes.hpp"

using namespace rass;
using namespace rass::degrade;

TEST_CASE("to_image8 quantises every sample as round_to_byte does") {
  for (int channels : {1, 2, 3}) {
    CAPTURE(channels);
    Planes p(37, 29, channels);  // 1073 pixels: whole SSE blocks, a 512 block and a tail
    Rng rng(1, "planes", "values");
    const float special[] = {0.f, -0.f, 1.f, -1e-9f, 1.0000001f, 0.5f / 255.f, 1.5f / 255.f, 2.5f / 255.f,
                             254.5f / 255.f, 3.f, -3.f, std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(), std::nanf("")};
    for (size_t i = 0; i < p.data.size(); ++i)
      p.data[i] = i < sizeof special / sizeof *special ? special[i]
                  : i % 3 == 0 ? float(int(rng.uniform() * 256) + 0.5) / 255.f  // ties
                               : float(rng.uniform() * 1.2 - 0.1);
    const Image img = to_image8(p);
    REQUIRE(img.channels == channels);
    for (int k = 0; k < channels; ++k)
      for (size_t i = 0; i < p.plane_size(); ++i) {
        const float v = p.plane(k)[i];
        const uint8_t want = std::isnan(v) ? 0 : static_cast<uint8_t>(round_to_byte(v));
        if (img.data[i * channels + k] != want) {
          CAPTURE(k);
          CAPTURE(i);
          CAPTURE(v);
          CHECK(int(img.data[i * channels + k]) == int(want));
        }
      }
  }
}

TEST_CASE("to_planes divides every 8- and 16-bit sample") {
  for (int channels : {1, 3})
    for (int depth : {8, 16}) {
      Image img(300, 7, channels, depth);
      for (size_t i = 0; i < img.samples(); ++i) {
        if (depth == 8)
          img.data[i] = uint8_t(i * 7);
        else
          img.u16()[i] = uint16_t(i * 2654435761u >> 7);
      }
      const Planes p = to_planes(img);
      for (int k = 0; k < channels; ++k)
        for (size_t i = 0; i < p.plane_size(); ++i) {
          const size_t j = i * channels + k;
          const float want = depth == 8 ? img.data[j] / 255.0f : img.u16()[j] / 65535.0f;
          REQUIRE(p.plane(k)[i] == want);
        }
    }
}
