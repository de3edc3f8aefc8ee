#include "rass/degrade/cv_resize.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "rass/core/error.hpp"

namespace rass {

Image cv_resize_linear(const Image& in, int out_w, int out_h) {
  if (in.depth != 8) throw_usage("cv_resize_linear: 8-bit images only");
  if (out_w < 1 || out_h < 1 || in.empty()) throw_usage("cv_resize_linear: sizes must be positive");
  const cv::Mat src(in.height, in.width, CV_8UC(in.channels), const_cast<uint8_t*>(in.u8()));
  Image out(out_w, out_h, in.channels, 8);
  cv::Mat dst(out_h, out_w, CV_8UC(in.channels), out.u8());
  cv::resize(src, dst, cv::Size(out_w, out_h), 0, 0, cv::INTER_LINEAR);
  if (dst.data != out.u8()) throw_runtime("cv_resize_linear: OpenCV wrote elsewhere");
  return out;
}

}  // namespace rass
