// ImageNet-C frost (imagecorruptions 1.1.2): one of its frost photographs,
// rescaled to cover the image (cv2.resize INTER_CUBIC) and cropped at random,
// blended in. The photographs are not this project's to ship: the user gives
// their folder (rass-degrade --frost-dir; imagecorruptions' frost/ holds
// them). Its own file: the resize goes through OpenCV, as the reference's.
#pragma once
#include <cstdint>
#include <string>

#include "rass/core/image.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// frost1.png, frost2.png, frost3.png, frost4.jpg, frost5.jpg, frost6.jpg
// (index 0-5; the reference draws 0-4, never the sixth).
constexpr int kFrostPictures = 6;
constexpr int kFrostPicturesDrawn = 5;
const char* frost_file_name(int index);
// The picture, decoded once per process (8-bit RGB), and the hash of its
// bytes (batch/provenance.hpp's bytes_hash; records hold it, so a replay or
// --resume with another picture under the same name is caught). A regular
// file read as input images are (size cap, format checked from the first
// bytes). Throws Error(bad_input) naming the file.
struct FrostPicture {
  Image image;
  std::string hash;
};
const FrostPicture& frost_picture(const std::string& path);
// Most pixels of a rescaled picture (2^28, as --max-pixels' default): it
// covers the image's longer side, so a 65535x1 strip asked for 10 GB.
constexpr int64_t kMaxFrostRescaledPixels = int64_t(1) << 28;
// The reference's rescaled size of a fw x fh picture for an image of w x h:
// scaled (by the larger of the factors that make it cover the image, 1 when
// it does), times 1.1, each side rounded up. Throws Error(bad_input) naming
// `path` past kMaxFrostRescaledPixels.
void frost_rescaled_size(int fw, int fh, int w, int h, int& out_w, int& out_h, const std::string& path);
// x' = strength x + weight frost[crop_y + y, crop_x + x] / 255, clipped to
// [0, 1]; on a gray image the reference's 2-D path, np.dot(crop, [0.2989,
// 0.587, 0.114]) of cv2's BGR crop (the weights fall on B, G, R). Throws
// Error(bad_input) naming `path` when the crop leaves the rescaled picture.
void corrupt_frost(Planes& img, double strength, double weight, const Image& frost, int crop_y, int crop_x,
                   const std::string& path);

}  // namespace rass::degrade
