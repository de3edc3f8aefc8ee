// ImageNet-C frost (imagecorruptions 1.1.2): one of its frost photographs,
// rescaled to cover the image (cv2.resize INTER_CUBIC) and cropped at random,
// blended in. The photographs are not this project's to ship: the user gives
// their folder (rass-degrade --frost-dir; imagecorruptions' frost/ holds
// them). Its own file: the resize goes through OpenCV, as the reference's.
#pragma once
#include <string>

#include "rass/core/image.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// frost1.png, frost2.png, frost3.png, frost4.jpg, frost5.jpg, frost6.jpg
// (index 0-5; the reference draws 0-4, never the sixth).
constexpr int kFrostPictures = 6;
const char* frost_file_name(int index);
// The picture, decoded once per process (8-bit RGB). Throws Error(bad_input)
// naming the file.
const Image& frost_picture(const std::string& path);
// The reference's rescaled size of a fw x fh picture for an image of w x h:
// scaled (by the larger of the factors that make it cover the image, 1 when
// it does), times 1.1, each side rounded up.
void frost_rescaled_size(int fw, int fh, int w, int h, int& out_w, int& out_h);
// x' = strength x + weight frost[crop_y + y, crop_x + x] / 255, clipped to
// [0, 1]; on a gray image the frost's luma (0.2989 R + 0.587 G + 0.114 B).
// Throws Error(bad_input) when the crop leaves the rescaled picture.
void corrupt_frost(Planes& img, double strength, double weight, const Image& frost, int crop_y, int crop_x);

}  // namespace rass::degrade
