// The feature-map operators the fast networks run around their convolutions (inference only:
// they carry no autograd formula): 2x2 max pooling and the sub-pixel interleave, which read and
// write channels_last (NHWC) maps, where each pixel's channels are one contiguous run, and the
// direct first and last layers. Argument checks and output allocation are shared by the CPU and
// CUDA entry points.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

namespace adain {

// max_pool2x2: out[n, i, j, c] = max of x[n, 2i + {0, 1}, 2j + {0, 1}, c], in that row-major
// order with max_pool2d's comparison (a later value wins only when greater, NaN propagates).
struct PoolCall {
  at::Tensor x, out;  // NHWC-contiguous (N, C, H, W) and (N, C, H/2, W/2)
  int64_t n, c, h, w;
};
PoolCall setup_max_pool2x2(const at::Tensor& x);

// subpixel_interleave: y holds the four phase maps of an upsampling convolution as channel
// blocks, (N, 4 * O, H + 1, W + 1); output pixel (2i + a, 2j + b) is phase block 2a + b of y at
// pixel (i + a, j + b): out (N, O, 2H, 2W).
struct InterleaveCall {
  at::Tensor y, out;   // NHWC-contiguous
  int64_t n, o, h, w;  // h, w: the small map's size (y is (h + 1) x (w + 1))
};
InterleaveCall setup_subpixel_interleave(const at::Tensor& y, int64_t out_channels);

// conv3x3_reflect: ReflectionPad2d(1) + 3x3 convolution (+ ReLU) computed directly, the padding
// read through reflected indices: the networks' first (3 -> 64) and last (64 -> 3) layers, whose
// few channels leave cuDNN memory-bound around a tiny reduction. The weights are host (CPU)
// tensors: the CUDA kernel takes them as launch parameters (constant memory, read as operands of
// the multiply-adds), so a launch needs no copy and a CUDA graph captures them.
struct DirectConvCall {
  at::Tensor x, out;        // x: any strides; out: channels_last or NCHW-contiguous
  at::Tensor weight, bias;  // CPU, contiguous (out, in, 3, 3) and (out,) (zeros when not given)
  int64_t n, cin, cout, h, w;
};
DirectConvCall setup_conv3x3_reflect(const at::Tensor& x, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias, bool channels_last_out);

// winograd_conv3x3_reflect (CPU): ReflectionPad2d(1) + 3x3 convolution + bias (+ ReLU) of a
// float32 channels_last map as Winograd F(2x2, 3x3): each 2x2 output block is A^T [(G g G^T) .
// (B^T d B)] A, so the 9 multiply-adds per output pixel and channel pair become 4, done as 16
// GEMMs (one per position of the 4x4 transformed tile) over blocks of tiles small enough to stay
// in cache. The padding is read through reflected indices in the input transform, the bias and
// ReLU applied in the output transform. `weights` is the transformed kernel G g G^T laid out as
// (16, in, out): position 4i + j of the 4x4 tile, then a GEMM-ready (in, out) matrix.
struct WinogradCall {
  at::Tensor x, weights, bias, out;  // x and out channels_last; weights and bias contiguous
  int64_t n, cin, cout, h, w;
};
WinogradCall setup_winograd_conv3x3_reflect(const at::Tensor& x, const at::Tensor& weights,
                                            const at::Tensor& bias);

// Source row or column of tap position i (one before, at or one after the output's) under
// reflection padding by 1 of a size-n axis: -1 -> 1, n -> n - 2.
C10_HOST_DEVICE inline int64_t reflect_index(int64_t i, int64_t n) {
  return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

// Whether value v of a pooling window replaces the best so far: max_pool2d's rule (greater, or
// NaN, which then propagates), so that the results are bit-identical to it. On widened values.
template <typename A>
C10_HOST_DEVICE inline bool pool_replaces(A best, A v) {
  return v > best || v != v;
}

}  // namespace adain
