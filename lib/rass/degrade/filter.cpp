#include "rass/degrade/filter.hpp"

#include "rass/degrade/filter_direct.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace rass::degrade {

namespace {
// Pipeline results must not depend on OpenCV's thread pool; parallelism is
// across images (--jobs), so OpenCV runs single-threaded.
void single_threaded_opencv() {
  static const bool once = [] {
    cv::setNumThreads(1);
    return true;
  }();
  (void)once;
}
}  // namespace

Planes filter2d(const Planes& in, const Kernel& k, FilterAlgo algo) {
  if (algo == FilterAlgo::direct_large && k.size >= kDirectFilterMinSize && k.size <= kDirectFilterMaxSize)
    return filter2d_direct(in, k);
  single_threaded_opencv();
  Planes out(in.width, in.height, in.channels);
  cv::Mat kernel(k.size, k.size, CV_32F);
  for (int i = 0; i < k.size * k.size; ++i) kernel.at<float>(i / k.size, i % k.size) = float(k.k[i]);
  for (int c = 0; c < in.channels; ++c) {
    cv::Mat src(in.height, in.width, CV_32F, const_cast<float*>(in.plane(c)));
    cv::Mat dst(out.height, out.width, CV_32F, out.plane(c));
    cv::filter2D(src, dst, CV_32F, kernel, cv::Point(-1, -1), 0, cv::BORDER_REFLECT_101);
  }
  return out;
}

Planes filter_separable(const Planes& in, const std::vector<double>& row, const std::vector<double>& col) {
  single_threaded_opencv();
  Planes out(in.width, in.height, in.channels);
  cv::Mat kx(1, int(row.size()), CV_32F), ky(int(col.size()), 1, CV_32F);
  for (size_t i = 0; i < row.size(); ++i) kx.at<float>(0, int(i)) = float(row[i]);
  for (size_t i = 0; i < col.size(); ++i) ky.at<float>(int(i), 0) = float(col[i]);
  for (int c = 0; c < in.channels; ++c) {
    cv::Mat src(in.height, in.width, CV_32F, const_cast<float*>(in.plane(c)));
    cv::Mat dst(out.height, out.width, CV_32F, out.plane(c));
    cv::sepFilter2D(src, dst, CV_32F, kx, ky, cv::Point(-1, -1), 0, cv::BORDER_REFLECT_101);
  }
  return out;
}

}  // namespace rass::degrade
