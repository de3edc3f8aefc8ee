#include "rass/degrade/frost.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "rass/batch/provenance.hpp"
#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/image_io.hpp"

namespace rass::degrade {

const char* frost_file_name(int index) {
  static const char* names[kFrostPictures] = {"frost1.png", "frost2.png", "frost3.png",
                                              "frost4.jpg", "frost5.jpg", "frost6.jpg"};
  return index >= 0 && index < kFrostPictures ? names[index] : "?";
}

const FrostPicture& frost_picture(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<FrostPicture>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[path];
  if (!slot) {
    // A FIFO would block: no special files (read_image_bytes says what is
    // wrong with a missing file or a folder).
    if (is_special_file(path)) throw_bad_input(path, "a frost picture must be a regular file");
    const std::vector<uint8_t> bytes = read_image_bytes(path);
    Image img = decode_image(bytes, path);
    if (img.depth != 8) throw_bad_input(path, "a frost picture must be an 8-bit image");
    if (img.channels == 4) img = drop_alpha(std::move(img));
    if (img.channels != 3) throw_bad_input(path, "a frost picture must be an RGB image");
    auto pic = std::make_unique<FrostPicture>();
    pic->image = std::move(img);
    pic->hash = batch::bytes_hash(bytes);
    slot = std::move(pic);
  }
  return *slot;
}

void frost_rescaled_size(int fw, int fh, int w, int h, int& out_w, int& out_h, const std::string& path) {
  double s = 1;
  if (fh >= h && fw >= w)
    s = 1;
  else if (fh < h && fw >= w)
    s = double(h) / fh;
  else if (fh >= h && fw < w)
    s = double(w) / fw;
  else
    s = std::max(double(h) / fh, double(w) / fw);
  s *= 1.1;
  const double rw = std::ceil(fw * s), rh = std::ceil(fh * s);
  if (rw * rh > double(kMaxFrostRescaledPixels))
    throw_bad_input(path, "rescaled to cover a " + std::to_string(w) + "x" + std::to_string(h) + " image, this frost " +
                              "picture would be " + std::to_string(int64_t(rw)) + "x" + std::to_string(int64_t(rh)) +
                              ", more than 2^28 pixels (ImageNet-C's frost covers the longer side)");
  out_w = int(rw);
  out_h = int(rh);
}

void corrupt_frost(Planes& img, double strength, double weight, const Image& frost, int crop_y, int crop_x,
                   const std::string& path) {
  int rw = 0, rh = 0;
  frost_rescaled_size(frost.width, frost.height, img.width, img.height, rw, rh, path);
  if (crop_y < 0 || crop_x < 0 || int64_t(crop_y) + img.height > rh || int64_t(crop_x) + img.width > rw)
    throw_bad_input(path, "the record's frost crop at (" + std::to_string(crop_y) + ", " + std::to_string(crop_x) +
                              ") leaves this picture rescaled to " + std::to_string(rw) + "x" + std::to_string(rh) +
                              " (another picture than the record's?)");
  const cv::Mat src(frost.height, frost.width, CV_8UC3, const_cast<uint8_t*>(frost.data.data()));
  cv::Mat big;
  cv::resize(src, big, cv::Size(rw, rh), 0, 0, cv::INTER_CUBIC);
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* row = big.ptr<uint8_t>(crop_y + y) + size_t(crop_x) * 3;
    for (int x = 0; x < img.width; ++x) {
      const size_t i = size_t(y) * img.width + x;
      const uint8_t* f = row + size_t(x) * 3;
      for (int c = 0; c < img.channels; ++c) {
        // Gray: the reference's np.dot over cv2's BGR order (f holds RGB).
        const double fv = img.channels >= 3 ? f[c] : f[2] * 0.2989 + f[1] * 0.5870 + f[0] * 0.1140;
        // In 0-255 as the reference: strength * x + weight * frost, clipped.
        const double v = strength * std::nearbyint(double(img.plane(c)[i]) * 255.0) + weight * fv;
        img.plane(c)[i] = float(std::clamp(v, 0.0, 255.0) / 255.0);
      }
    }
  }
}

}  // namespace rass::degrade
