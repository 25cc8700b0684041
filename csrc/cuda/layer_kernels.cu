// CUDA implementations of the feature-map operators (layer_setup.h): 2x2 max pooling and the
// sub-pixel interleave of channels_last maps. Both are pure data movement, so each thread moves
// one 16-byte vector of a pixel's channels (when the channel count and the pointers allow it):
// a warp reads and writes whole 512-byte runs, and a vector's position comes from dividers by
// invariant integers (a multiply and a shift) instead of 64-bit divisions.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>
#include <ATen/cuda/detail/IntegerDivider.cuh>

#include <cstdint>
#include <limits>
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

// Elements a vector: 16 bytes when the channel run is a whole number of them and both maps
// start 16-byte aligned (then every vector is), else one.
template <typename T>
int vector_width(int64_t channels, const at::Tensor& in, const at::Tensor& out) {
  constexpr int kWide = 16 / sizeof(T);
  const bool fits =
      channels % kWide == 0 && aligned16(in.const_data_ptr()) && aligned16(out.const_data_ptr());
  return fits ? kWide : 1;
}

// Calls launch(vec, index) with the vector width as a std::integral_constant and a value of the
// index type: uint32_t while the maps have fewer than 2^31 elements, else uint64_t.
template <typename T, typename Launch>
void with_vector_and_index(int vec, int64_t numel, Launch&& launch) {
  using Wide = std::integral_constant<int, 16 / sizeof(T)>;
  using One = std::integral_constant<int, 1>;
  const bool narrow_index = numel < std::numeric_limits<int32_t>::max();
  if (vec == Wide::value) {
    narrow_index ? launch(Wide{}, uint32_t{}) : launch(Wide{}, uint64_t{});
  } else {
    narrow_index ? launch(One{}, uint32_t{}) : launch(One{}, uint64_t{});
  }
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

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CUDA, m) {
  m.impl("max_pool2x2", &max_pool2x2_cuda);
  m.impl("subpixel_interleave", &subpixel_interleave_cuda);
}

}  // namespace adain
