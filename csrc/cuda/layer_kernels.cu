// CUDA implementations of the feature-map operators (layer_setup.h). Pooling and the sub-pixel
// interleave of channels_last maps are pure data movement, so each thread moves one 16-byte
// vector of a pixel's channels (when the channel count and the pointers allow it): a warp reads
// and writes whole 512-byte runs, and a vector's position comes from dividers by invariant
// integers (a multiply and a shift) instead of 64-bit divisions. The direct first and last
// layers give each thread an output pixel, with the weights in the launch parameters.
#include <ATen/Dispatch.h>
#include <ATen/Dispatch_v2.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>
#include <ATen/cuda/detail/IntegerDivider.cuh>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

#include "../layer_setup.h"
#include "device_blocks.cuh"
#include "launch_config.cuh"

namespace adain {
namespace {

using namespace cuda;
template <typename Index>
using Divider = at::cuda::detail::IntDivider<Index>;

constexpr int kLayerThreads = 256;

template <typename T, int VEC>
__device__ __forceinline__ Vec<T, VEC> load_vector(const T* __restrict__ src) {
  return *reinterpret_cast<const Vec<T, VEC>*>(src);
}

// Output vector v of pixel (n, i, j): the max over input pixels (n, 2i + {0, 1}, 2j + {0, 1}).
// Index: uint32_t while the map has fewer than 2^31 elements, else uint64_t.
template <typename T, int VEC, typename Index>
__global__ void __launch_bounds__(kLayerThreads)
    max_pool2x2_kernel(const T* __restrict__ x, T* __restrict__ out, Index vectors,
                       Divider<Index> vectors_per_pixel, Divider<Index> pixels_per_row, Index c,
                       Index w) {
  using A = acc_type<T>;
  const Index v = Index(blockIdx.x) * kLayerThreads + threadIdx.x;
  if (v >= vectors) return;
  const auto pixel = vectors_per_pixel.divmod(v);
  const auto col = pixels_per_row.divmod(pixel.div);  // div: n * h/2 + i, mod: j
  // the window's top row is 2 (n * h/2 + i) = n * h + 2i
  const Index top = (2 * col.div * w + 2 * col.mod) * c + pixel.mod * VEC;
  Vec<T, VEC> best = load_vector<T, VEC>(x + top);
  const Vec<T, VEC> rest[3] = {load_vector<T, VEC>(x + top + c),
                               load_vector<T, VEC>(x + top + w * c),
                               load_vector<T, VEC>(x + top + w * c + c)};
#pragma unroll
  for (int q = 0; q < 3; ++q) {
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      if (pool_replaces(static_cast<A>(best.v[j]), static_cast<A>(rest[q].v[j]))) {
        best.v[j] = rest[q].v[j];
      }
    }
  }
  store_vector(out + v * VEC, best);
}

// Output vector v of pixel (n, r, s), r = 2i + a, s = 2j + b: phase block 2a + b of y at pixel
// (n, i + a, j + b) = (n, (r + 1) / 2, (s + 1) / 2).
template <typename T, int VEC, typename Index>
__global__ void __launch_bounds__(kLayerThreads)
    subpixel_interleave_kernel(const T* __restrict__ y, T* __restrict__ out, Index vectors,
                               Divider<Index> vectors_per_pixel, Divider<Index> pixels_per_row,
                               Divider<Index> rows_per_image, Index o, Index yh, Index yw) {
  const Index v = Index(blockIdx.x) * kLayerThreads + threadIdx.x;
  if (v >= vectors) return;
  const auto pixel = vectors_per_pixel.divmod(v);
  const auto col = pixels_per_row.divmod(pixel.div);  // div: n * 2h + r, mod: s
  const auto row = rows_per_image.divmod(col.div);    // div: n, mod: r
  const Index r = row.mod, s = col.mod;
  const Index phase = 2 * (r & 1) + (s & 1);
  const Index src =
      ((row.div * yh + (r + 1) / 2) * yw + (s + 1) / 2) * 4 * o + phase * o + pixel.mod * VEC;
  store_vector(out + v * VEC, load_vector<T, VEC>(y + src));
}

// ------------------------------------------------------- direct first and last layers ----
// The weights (and bias) of a direct convolution as a launch parameter: the loops below are
// unrolled over every tap and channel, so each multiply-add reads its weight straight from the
// parameter bank (no load instruction, no shared memory). 7 KB, within the 32 KB that kernel
// parameters may take on sm_70 and newer with CUDA 12.1+.
template <int CIN, int COUT>
struct DirectConvWeights {
  float w[COUT][9][CIN];  // [out][tap][in], tap = 3 * dy + dx
  float b[COUT];
};

template <int CIN, int COUT>
DirectConvWeights<CIN, COUT> direct_conv_weights(const at::Tensor& weight, const at::Tensor& bias) {
  DirectConvWeights<CIN, COUT> p;
  // contiguous (setup_conv3x3_reflect), float32 or float64
  const at::Tensor wf = weight.to(at::kFloat), bf = bias.to(at::kFloat);
  const float* w = wf.const_data_ptr<float>();
  for (int o = 0; o < COUT; ++o) {
    p.b[o] = bf.const_data_ptr<float>()[o];
    for (int c = 0; c < CIN; ++c) {
      for (int t = 0; t < 9; ++t) p.w[o][t][c] = w[(o * CIN + c) * 9 + t];
    }
  }
  return p;
}

// The (n, r, s) of output pixel v of an (N, H, W) grid.
template <typename Index>
struct PixelOf {
  Index n, r, s;
};

template <typename Index>
__device__ __forceinline__ PixelOf<Index> pixel_of(Index v, const Divider<Index>& per_row,
                                                   const Divider<Index>& per_image) {
  const auto col = per_row.divmod(v);
  const auto row = per_image.divmod(col.div);
  return {row.div, row.mod, col.mod};
}

// The first layer, 3 -> 64: a thread per output pixel reads its 27 inputs (any strides; a
// 3-channel pixel is too small for vectors), then computes the outputs 16 bytes at a time and
// stores them as one vector each (channels_last output).
template <typename T, typename Index, bool RELU>
__global__ void __launch_bounds__(kLayerThreads)
    conv3x3_reflect_first_kernel(const T* __restrict__ x, T* __restrict__ out, Index pixels,
                                 Divider<Index> per_row, Divider<Index> per_image, int64_t sn,
                                 int64_t sc, int64_t sh, int64_t sw, int64_t h, int64_t w,
                                 const DirectConvWeights<3, 64> p) {
  constexpr int VEC = 16 / sizeof(T);
  const Index v = Index(blockIdx.x) * kLayerThreads + threadIdx.x;
  if (v >= pixels) return;
  const PixelOf<Index> px = pixel_of(v, per_row, per_image);
  float in[9][3];
#pragma unroll
  for (int t = 0; t < 9; ++t) {
    const int64_t rr = reflect_index(int64_t(px.r) + t / 3 - 1, h);
    const int64_t ss = reflect_index(int64_t(px.s) + t % 3 - 1, w);
    const T* src = x + int64_t(px.n) * sn + rr * sh + ss * sw;
#pragma unroll
    for (int c = 0; c < 3; ++c) in[t][c] = static_cast<float>(src[c * sc]);
  }
  T* dst = out + int64_t(v) * 64;
#pragma unroll
  for (int g = 0; g < 64 / VEC; ++g) {
    Vec<T, VEC> o;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      float acc = p.b[g * VEC + j];
#pragma unroll
      for (int t = 0; t < 9; ++t) {
#pragma unroll
        for (int c = 0; c < 3; ++c) acc = fmaf(p.w[g * VEC + j][t][c], in[t][c], acc);
      }
      o.v[j] = static_cast<T>(RELU && acc < 0.f ? 0.f : acc);
    }
    store_vector(dst + g * VEC, o);
  }
}

// The last layer, 64 -> 3: a thread per output pixel reads its nine 64-channel input pixels as
// 16-byte vectors (channels_last input) and writes its three outputs to the planes of an NCHW
// image (coalesced along a row).
template <typename T, typename Index, bool RELU>
__global__ void __launch_bounds__(kLayerThreads)
    conv3x3_reflect_last_kernel(const T* __restrict__ x, T* __restrict__ out, Index pixels,
                                Divider<Index> per_row, Divider<Index> per_image, int64_t h,
                                int64_t w, const DirectConvWeights<64, 3> p) {
  constexpr int VEC = 16 / sizeof(T);
  const Index v = Index(blockIdx.x) * kLayerThreads + threadIdx.x;
  if (v >= pixels) return;
  const PixelOf<Index> px = pixel_of(v, per_row, per_image);
  float acc[3] = {p.b[0], p.b[1], p.b[2]};
#pragma unroll
  for (int t = 0; t < 9; ++t) {
    const int64_t rr = reflect_index(int64_t(px.r) + t / 3 - 1, h);
    const int64_t ss = reflect_index(int64_t(px.s) + t % 3 - 1, w);
    const T* src = x + ((int64_t(px.n) * h + rr) * w + ss) * 64;
#pragma unroll
    for (int k = 0; k < 64 / VEC; ++k) {
      const Vec<T, VEC> in = load_vector<T, VEC>(src + k * VEC);
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float f = static_cast<float>(in.v[j]);
#pragma unroll
        for (int o = 0; o < 3; ++o) acc[o] = fmaf(p.w[o][t][k * VEC + j], f, acc[o]);
      }
    }
  }
  const int64_t plane = h * w, at = int64_t(px.r) * w + px.s;
#pragma unroll
  for (int o = 0; o < 3; ++o) {
    const float y = RELU && acc[o] < 0.f ? 0.f : acc[o];
    out[(int64_t(px.n) * 3 + o) * plane + at] = static_cast<T>(y);
  }
}

// Elements a vector: 16 bytes when the channel run is a whole number of them and both maps
// start 16-byte aligned (then every vector is), else one.
template <typename T>
int vector_width(int64_t channels, const at::Tensor& in, const at::Tensor& out) {
  constexpr int kWide = 16 / sizeof(T);
  const bool fits =
      channels % kWide == 0 && aligned16(in.const_data_ptr()) && aligned16(out.const_data_ptr());
  return fits ? kWide : 1;
}

// Calls launch(index) with a value of the index type: uint32_t while the maps have fewer than 2^31
// elements, else uint64_t.
template <typename Launch>
void with_index(int64_t numel, Launch&& launch) {
  numel < std::numeric_limits<int32_t>::max() ? launch(uint32_t{}) : launch(uint64_t{});
}

// Calls launch(vec, index) with the vector width as a std::integral_constant and an index value
// (with_index).
template <typename T, typename Launch>
void with_vector_and_index(int vec, int64_t numel, Launch&& launch) {
  using Wide = std::integral_constant<int, 16 / sizeof(T)>;
  using One = std::integral_constant<int, 1>;
  with_index(numel, [&](auto index) {
    vec == Wide::value ? launch(Wide{}, index) : launch(One{}, index);
  });
}

int64_t layer_blocks(int64_t vectors) { return ceil_div(vectors, kLayerThreads); }

at::Tensor max_pool2x2_cuda(const at::Tensor& x) {
  PoolCall call = setup_max_pool2x2(x);
  if (call.out.numel() == 0) return call.out;
  const c10::cuda::CUDAGuard guard(x.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "max_pool2x2_cuda", [&] {
        const int vec = vector_width<scalar_t>(call.c, call.x, call.out);
        with_vector_and_index<scalar_t>(vec, call.x.numel(), [&](auto vec_width, auto index) {
          constexpr int VEC = decltype(vec_width)::value;
          using Index = decltype(index);
          const int64_t vectors = call.out.numel() / VEC;
          max_pool2x2_kernel<scalar_t, VEC, Index>
              <<<layer_blocks(vectors), kLayerThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                  call.x.const_data_ptr<scalar_t>(), call.out.mutable_data_ptr<scalar_t>(),
                  Index(vectors), Divider<Index>(Index(call.c / VEC)),
                  Divider<Index>(Index(call.w / 2)), Index(call.c), Index(call.w));
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return call.out;
}

at::Tensor subpixel_interleave_cuda(const at::Tensor& y, int64_t out_channels) {
  InterleaveCall call = setup_subpixel_interleave(y, out_channels);
  if (call.out.numel() == 0) return call.out;
  const c10::cuda::CUDAGuard guard(y.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, y.scalar_type(), "subpixel_interleave_cuda", [&] {
        const int vec = vector_width<scalar_t>(call.o, call.y, call.out);
        const int64_t numel = std::max(call.y.numel(), call.out.numel());
        with_vector_and_index<scalar_t>(vec, numel, [&](auto vec_width, auto index) {
          constexpr int VEC = decltype(vec_width)::value;
          using Index = decltype(index);
          const int64_t vectors = call.out.numel() / VEC;
          subpixel_interleave_kernel<scalar_t, VEC, Index>
              <<<layer_blocks(vectors), kLayerThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                  call.y.const_data_ptr<scalar_t>(), call.out.mutable_data_ptr<scalar_t>(),
                  Index(vectors), Divider<Index>(Index(call.o / VEC)),
                  Divider<Index>(Index(2 * call.w)), Divider<Index>(Index(2 * call.h)),
                  Index(call.o), Index(call.h + 1), Index(call.w + 1));
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
  return call.out;
}

at::Tensor conv3x3_reflect_cuda(const at::Tensor& x, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, bool relu,
                                bool channels_last_out) {
  DirectConvCall call = setup_conv3x3_reflect(x, weight, bias, channels_last_out);
  const bool first = call.cin == 3 && call.cout == 64, last = call.cin == 64 && call.cout == 3;
  TORCH_CHECK_VALUE(first || last,
                    "conv3x3_reflect on CUDA computes the 3 -> 64 and 64 -> 3 layers only, got ",
                    call.cin, " -> ", call.cout, "; use a reflection-padded conv2d");
  TORCH_CHECK_VALUE(x.scalar_type() != at::kDouble,
                    "conv3x3_reflect on CUDA takes float32, float16 or bfloat16 maps, got float64");
  TORCH_CHECK_VALUE(
      channels_last_out == first,
      "conv3x3_reflect on CUDA writes the 3 -> 64 layer channels_last and the 64 -> 3 "
      "layer NCHW (channels_last_out=",
      first, ")");
  TORCH_CHECK_VALUE(
      first || (x.is_contiguous(at::MemoryFormat::ChannelsLast) && aligned16(x.const_data_ptr())),
      "conv3x3_reflect on CUDA reads a 64-channel map channels_last-contiguous and "
      "16-byte aligned");
  if (call.out.numel() == 0) return call.out;
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t pixels = call.n * call.h * call.w;
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto launch = [&](auto element, auto index, auto with_relu) {
    using T = decltype(element);
    using Index = decltype(index);
    constexpr bool RELU = decltype(with_relu)::value;
    const Divider<Index> per_row(Index(call.w)), per_image(Index(call.h));
    const T* src = call.x.const_data_ptr<T>();
    T* dst = call.out.mutable_data_ptr<T>();
    if (first) {
      const auto s = call.x.strides();
      conv3x3_reflect_first_kernel<T, Index, RELU>
          <<<layer_blocks(pixels), kLayerThreads, 0, stream>>>(
              src, dst, Index(pixels), per_row, per_image, s[0], s[1], s[2], s[3], call.h, call.w,
              direct_conv_weights<3, 64>(call.weight, call.bias));
    } else {
      conv3x3_reflect_last_kernel<T, Index, RELU>
          <<<layer_blocks(pixels), kLayerThreads, 0, stream>>>(
              src, dst, Index(pixels), per_row, per_image, call.h, call.w,
              direct_conv_weights<64, 3>(call.weight, call.bias));
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  };
  // float64 is refused above: no kernel is built for it
  AT_DISPATCH_V2(x.scalar_type(), "conv3x3_reflect_cuda", AT_WRAP([&] {
                   const int64_t numel = std::max(call.x.numel(), call.out.numel());
                   with_index(numel, [&](auto index) {
                     relu ? launch(scalar_t{}, index, std::true_type{})
                          : launch(scalar_t{}, index, std::false_type{});
                   });
                 }),
                 at::kFloat, at::kHalf, at::kBFloat16);
  return call.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CUDA, m) {
  m.impl("max_pool2x2", &max_pool2x2_cuda);
  m.impl("subpixel_interleave", &subpixel_interleave_cuda);
  m.impl("conv3x3_reflect", &conv3x3_reflect_cuda);
}

}  // namespace adain
