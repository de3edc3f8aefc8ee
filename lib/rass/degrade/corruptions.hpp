// Single named corruptions for robustness benchmarks (the "RobustSeg-style"
// degradations of GleSAM's Table 3, applied one at a time): most follow
// ImageNet-C (Hendrycks & Dietterich 2019) as the imagecorruptions package
// 1.1.2 computes them; low_light and rain are this project's own definitions
// (no reference implementation is public), written out below.
//
// Every function works on planes in [0, 1] (1 or 3 channels) and ends with a
// clip to [0, 1], as each reference function does. Randomness comes from the
// Draws given, so that tests can feed the reference's draws in its order.
#pragma once
#include <cstdint>
#include <vector>

#include "rass/core/rng.hpp"
#include "rass/degrade/planes.hpp"

namespace rass::degrade {

// The clip to [0, 1] every corruption ends with, as a float sample.
inline float clip01(double v) { return float(v < 0 ? 0 : v > 1 ? 1 : v); }

// A stream of uniform [0, 1) and standard normal numbers. The corruptions
// draw arrays in NumPy's row-major order, one number per element.
class Draws {
 public:
  virtual ~Draws() = default;
  virtual double uniform() = 0;
  virtual double normal() = 0;
};

class RngDraws : public Draws {
 public:
  explicit RngDraws(uint64_t seed) : rng_(seed) {}
  double uniform() override { return rng_.uniform(); }
  double normal() override { return rng_.normal_fast(); }
  Rng& rng() { return rng_; }

 private:
  Rng rng_;
};

// ImageNet-C contrast: per channel, (x - mean) * factor + mean.
void corrupt_contrast(Planes& img, double factor);
// ImageNet-C brightness: HSV value + delta (clipped), hue and saturation kept:
// an RGB pixel is scaled by V'/V (gray: x + delta). Black (V = 0) becomes gray V'.
void corrupt_brightness(Planes& img, double delta);

// imagecorruptions' _motion_blur: 2 radius + 1 copies of the image shifted
// along `angle_deg` (0 = +x, counter-clockwise in row-down coordinates as the
// reference's shift) by -ceil(i sin|cos - 0.5), weighted by a one-sided
// Gaussian of `sigma` normalised over the copies; borders repeat the edge.
// Stops where a shift reaches the image's size, as the reference does.
void motion_blur_plane(const float* in, float* out, int width, int height, int radius, double sigma, double angle_deg);
void motion_blur_plane(const double* in, double* out, int width, int height, int radius, double sigma, double angle_deg);
void corrupt_motion_blur(Planes& img, int radius, double sigma, double angle_deg);

// The diamond-square height map of ImageNet-C's fog (toroidal, side `mapsize`,
// a power of two >= 2), normalised to [0, 1]; row-major.
std::vector<double> plasma_fractal(int mapsize, double decay, Draws& draws);
// ImageNet-C fog: x += strength * plasma[:h, :w]; x * max / (max + strength),
// max being the image's maximum before the fog. The map's side is the next
// power of two of max(h, w, channels) as the reference computes it (at least 2).
void corrupt_fog(Planes& img, double strength, double decay, Draws& draws);
// That map's side for an image, and the longest side allowed (16384: 2 GiB
// of doubles); a longer one is refused before anything is allocated (a
// 1 x 20000 strip would need a map of 8 GiB).
int64_t fog_map_side(int width, int height, int channels);
constexpr int64_t kMaxFogMapSide = 16384;

// ImageNet-C snow: a Gaussian layer N(mean, std) of the image's size, zoomed
// about its centre by `zoom` (scipy.ndimage.zoom, order 1), zeroed below
// `threshold`, motion-blurred (radius, sigma, angle), rounded to 8 bits; the
// image is lightened (blend x + (1 - blend) max(x, 1.5 gray + 0.5)) and the
// layer and its 180-degree rotation are added.
struct SnowParams {
  double mean = 0.1, std = 0.3, zoom = 3, threshold = 0.5;
  int radius = 10;
  double sigma = 4, blend = 0.8, angle = -90;
};
void corrupt_snow(Planes& img, const SnowParams& p, Draws& draws);

// ImageNet-C shot noise: Poisson(x * photons) / photons, per element.
void corrupt_shot_noise(Planes& img, double photons, Rng& rng);
// ImageNet-C impulse noise (skimage random_noise 's&p'): each element, with
// probability `amount`, becomes 1 or 0 with equal odds.
void corrupt_impulse_noise(Planes& img, double amount, Rng& rng);

// ImageNet-C speckle noise: x + x N(0, sigma^2), per element.
void corrupt_speckle_noise(Planes& img, double sigma, Draws& draws);

// scipy.ndimage.gaussian_filter1d along rows and columns (radius
// int(truncate sigma + 0.5)) with its border modes: nearest (aaa|abc) or
// reflect (cba|abc). skimage.filters.gaussian is this, per channel.
enum class GaussBorder { nearest, reflect };
void gaussian_filter_plane(double* data, int width, int height, double sigma_y, double sigma_x, double truncate,
                           GaussBorder border);

// ImageNet-C defocus blur: a disk of `radius` (on a 17x17 grid up to radius
// 8), normalised, smoothed by cv2.GaussianBlur (3x3 up to radius 8, else
// 5x5, sigma alias_blur), correlated as cv2.filter2D (BORDER_REFLECT_101).
void corrupt_defocus_blur(Planes& img, int radius, double alias_blur);

// ImageNet-C zoom blur: the mean of the image and its centre zooms by
// np.arange(1, stop, step) (clipped_zoom, scipy.ndimage.zoom order 1).
// At most 100 zooms (an error beyond).
void corrupt_zoom_blur(Planes& img, double stop, double step);

// ImageNet-C glass blur: Gaussian blur (skimage, mode nearest) truncated to
// 8 bits, `iterations` passes of local pixel shuffling (np.random.randint
// offsets in [-max_delta, max_delta), from the bottom-right corner), blurred
// again. As the reference (its swap of two NumPy views copies one way), a
// pixel takes its partner's value and the partner keeps its own; a gray
// image is treated as imagecorruptions.corrupt() does, as RGB of one gray.
void corrupt_glass_blur(Planes& img, double sigma, int max_delta, int iterations, Draws& draws);

// ImageNet-C pixelate: PIL BOX resize to int(side * factor), NEAREST back.
void corrupt_pixelate(Planes& img, double factor);

// ImageNet-C saturate: skimage HSV saturation s * scale + shift, clipped to
// [0, 1] (gray images: as RGB of three equal channels, the first kept).
void corrupt_saturate(Planes& img, double scale, double shift);

// imagecorruptions' elastic transform: displacement fields uniform in
// +-0.005 h, smoothed by a Gaussian of sigma (0.01 h, 0.01 w) (mode
// reflect, truncate 3), times alpha; the image sampled there (order 1,
// mode reflect, as scipy.ndimage.map_coordinates).
void corrupt_elastic(Planes& img, double alpha, Draws& draws);

// Low light (this project's definition): x' = gain * x^gamma, a dimmer and
// darker-toned exposure; the preset adds sensor noise as a gaussian_noise op.
void corrupt_low_light(Planes& img, double gamma, double gain);

// Rain (this project's definition): streak starts drawn per pixel with
// probability `density`; each streak is a line of `length` pixels along
// `angle_deg` (90 = vertical), rasterised as motion_blur_plane shifts it. The
// image is darkened by `darken` and the streaks are screened on at `opacity`:
// x' = d x + opacity s (1 - d x), s in {0, 1}.
void corrupt_rain(Planes& img, double density, int length, double angle_deg, double opacity, double darken, Rng& rng);

}  // namespace rass::degrade
