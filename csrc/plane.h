// Planes, the one pointwise form and the statistics conventions shared by every kernel.
//
// Every op works on "planes": the H*W elements of one (n, c) pair of an (N, C, H, W) map. The
// kernels read two memory layouts directly, contiguous NCHW and channels_last (NHWC); any other
// strided tensor is copied to NCHW first (see to_kernel_layout in op_setup.h).
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace adain {

enum class Layout { kNCHW, kNHWC };

struct PlaneShape {
  int64_t n;  // batch
  int64_t c;  // channels
  int64_t p;  // elements per plane (H * W)
  Layout layout;
  C10_HOST_DEVICE int64_t planes() const { return n * c; }
};

// Per-plane coefficients of the one pointwise form every op reduces to:
//   out = a * u + b * (v - m) + k
// Forward AdaIN: v = content, a = 0. Backward: u = grad_out, v = content. Statistics
// backward: v = input, a = 0. Keeping (v - m) instead of folding m into k avoids cancellation
// when a plane's mean is large compared with its spread.
template <typename acc_t>
struct alignas(4 * sizeof(acc_t)) Coef {
  acc_t a, b, m, k;
};

// Degrees of freedom of the variance: P - 1 (unbiased) or P (biased), at least 1, so that a
// plane of one element has variance 0 under either convention instead of NaN.
C10_HOST_DEVICE inline int64_t dof(int64_t p, bool unbiased) {
  const int64_t d = p - (unbiased ? 1 : 0);
  return d > 1 ? d : 1;
}

// Count, mean and sum of squared deviations (M2) of a set of values, and Chan's merge of two
// sets. Unlike a one-pass sum of squares, merging never subtracts large sums from each other: a
// plane far from zero, or with one element far from the rest, keeps its variance digits. Merges
// happen in a fixed order, so results are bit-identical from run to run.
template <typename A>
struct Moments {
  A n = 0, mean = 0, m2 = 0;

  C10_HOST_DEVICE void merge(const Moments& o) {
    const A total = n + o.n;
    if (o.n == A(0)) return;
    const A d = o.mean - mean, f = o.n / total;
    mean += d * f;
    m2 += o.m2 + d * d * n * f;
    n = total;
  }
};

// float64 maps keep float64 statistics (for gradcheck); every other dtype gets float32.
inline at::ScalarType stats_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

PlaneShape plane_shape(const at::Tensor& x);  // x must be in a kernel layout (op_setup.h)

// The CUDA kernel paths of the AdaIN forward and backward (csrc/cuda/adain_kernels.cu), by plane
// size: a warp per plane (several planes a block), a block per plane, a plane over a
// thread-block cluster (sm_90), all holding the plane in registers, or the general chunked path.
// kAuto picks the first that applies; forcing one (set_kernel_path, for tests and benchmarks)
// falls back to the general path where it cannot run.
enum class KernelPath : int { kAuto = 0, kWarp, kBlock, kCluster, kGeneral };

inline std::atomic<KernelPath>& forced_kernel_path() {
  static std::atomic<KernelPath> path{KernelPath::kAuto};
  return path;
}

// The paths' names, in KernelPath order (kernel_path / set_kernel_path in schemas.cpp).
inline constexpr const char* kKernelPathNames[] = {"auto", "warp", "block", "cluster", "general"};

inline const char* kernel_path_name(KernelPath path) {
  return kKernelPathNames[static_cast<int>(path)];
}

}  // namespace adain
