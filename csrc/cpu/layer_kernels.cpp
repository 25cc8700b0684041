// CPU implementations of the feature-map operators (layer_setup.h): one task per range of output
// pixels, each pixel's channels a contiguous run in both maps.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "../layer_setup.h"

namespace adain {
namespace {

// Output pixels per task: enough work per task to amortize scheduling, small maps in one task.
int64_t pixel_grain(int64_t channels) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(channels, 1));
}

at::Tensor max_pool2x2_cpu(const at::Tensor& x) {
  PoolCall call = setup_max_pool2x2(x);
  const int64_t c = call.c, w = call.w, h2 = call.h / 2, w2 = call.w / 2;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "max_pool2x2_cpu", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const scalar_t* src = call.x.const_data_ptr<scalar_t>();
        scalar_t* dst = call.out.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, call.n * h2 * w2, pixel_grain(c), [&](int64_t begin, int64_t end) {
          for (int64_t pixel = begin; pixel < end; ++pixel) {
            // pixel = (n * h2 + i) * w2 + j reads rows 2(n * h2 + i) + {0, 1} = n * h + 2i + {0, 1}
            const int64_t j = pixel % w2, row = 2 * (pixel / w2);
            const scalar_t* top = src + (row * w + 2 * j) * c;
            const scalar_t* window[4] = {top, top + c, top + w * c, top + w * c + c};
            scalar_t* out = dst + pixel * c;
            for (int64_t k = 0; k < c; ++k) {
              scalar_t best = window[0][k];
              for (int q = 1; q < 4; ++q) {
                if (pool_replaces<acc_t>(best, window[q][k])) best = window[q][k];
              }
              out[k] = best;
            }
          }
        });
      });
  return call.out;
}

at::Tensor subpixel_interleave_cpu(const at::Tensor& y, int64_t out_channels) {
  InterleaveCall call = setup_subpixel_interleave(y, out_channels);
  const int64_t o = call.o, oh = 2 * call.h, ow = 2 * call.w, yw = call.w + 1, yh = call.h + 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, y.scalar_type(), "subpixel_interleave_cpu", [&] {
        const scalar_t* src = call.y.const_data_ptr<scalar_t>();
        scalar_t* dst = call.out.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, call.n * oh * ow, pixel_grain(o), [&](int64_t begin, int64_t end) {
          for (int64_t pixel = begin; pixel < end; ++pixel) {
            const int64_t s = pixel % ow, r = (pixel / ow) % oh, n = pixel / (ow * oh);
            // output (2i + a, 2j + b) <- phase 2a + b at (i + a, j + b) = ((r + 1) / 2, (s + 1) /
            // 2)
            const int64_t phase = 2 * (r & 1) + (s & 1);
            const scalar_t* in =
                src + ((n * yh + (r + 1) / 2) * yw + (s + 1) / 2) * 4 * o + phase * o;
            std::copy(in, in + o, dst + pixel * o);
          }
        });
      });
  return call.out;
}

// Accumulates in float64 whatever the dtypes: the CPU form is the operator's reference (the fast
// path runs it on CUDA only; on the CPU the library convolutions are faster).
at::Tensor conv3x3_reflect_cpu(const at::Tensor& x, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, bool relu,
                               bool channels_last_out) {
  DirectConvCall call = setup_conv3x3_reflect(x, weight, bias, channels_last_out);
  const at::Tensor wd = call.weight.to(at::kDouble), bd = call.bias.to(at::kDouble);
  const double* wp = wd.const_data_ptr<double>();
  const double* bp = bd.const_data_ptr<double>();
  const int64_t cin = call.cin, cout = call.cout, h = call.h, w = call.w;
  const auto xs = call.x.strides(), os = call.out.strides();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "conv3x3_reflect_cpu", [&] {
        const scalar_t* src = call.x.const_data_ptr<scalar_t>();
        scalar_t* dst = call.out.mutable_data_ptr<scalar_t>();
        at::parallel_for(0, call.n * h * w, pixel_grain(cin * cout),
                         [&](int64_t begin, int64_t end) {
                           std::vector<double> window(9 * cin);  // (tap, channel)
                           for (int64_t pixel = begin; pixel < end; ++pixel) {
                             const int64_t s = pixel % w, r = (pixel / w) % h, n = pixel / (w * h);
                             for (int t = 0; t < 9; ++t) {
                               const int64_t rr = reflect_index(r + t / 3 - 1, h),
                                             ss = reflect_index(s + t % 3 - 1, w);
                               const scalar_t* in = src + n * xs[0] + rr * xs[2] + ss * xs[3];
                               for (int64_t c = 0; c < cin; ++c)
                                 window[t * cin + c] = static_cast<double>(in[c * xs[1]]);
                             }
                             scalar_t* out = dst + n * os[0] + r * os[2] + s * os[3];
                             for (int64_t o = 0; o < cout; ++o) {
                               double acc = bp[o];
                               for (int64_t c = 0; c < cin; ++c) {
                                 const double* k = wp + (o * cin + c) * 9;
                                 for (int t = 0; t < 9; ++t) acc += k[t] * window[t * cin + c];
                               }
                               out[o * os[1]] = static_cast<scalar_t>(relu && acc < 0 ? 0.0 : acc);
                             }
                           }
                         });
      });
  return call.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CPU, m) {
  m.impl("max_pool2x2", &max_pool2x2_cpu);
  m.impl("subpixel_interleave", &subpixel_interleave_cpu);
  m.impl("conv3x3_reflect", &conv3x3_reflect_cpu);
}

}  // namespace adain
