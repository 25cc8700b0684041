// The host-side rules that decide which CUDA kernel path a call may take, as plain functions of
// numbers so that the CPU build tests them too (the `path_rule` operator, schemas.cpp).
#pragma once

#include <cstdint>

namespace adain {

// Whether a cluster kernel may be launched: the device schedules thread-block clusters (compute
// capability 9.0 or newer) and the kernel's code was compiled for such a device. `ptx_version` and
// `binary_version` are cudaFuncAttributes' (major * 10 + minor). A binary whose sm_90 code was
// JIT-compiled from an older architecture's PTX (TORCH_CUDA_ARCH_LIST="8.0+PTX" run on an H100)
// has binary version 90 but PTX version 80, and its kernels hold no cluster code.
inline bool cluster_path_allowed(int device_major, int ptx_version, int binary_version) {
  return device_major >= 9 && ptx_version >= 90 && binary_version >= 90;
}

// A style plane at most this many times the content plane's size is reduced inside the fused
// forward kernel, by the thread group sized for the content plane; a larger one gets the general
// multi-block reduction (one warp reducing a 128x128 style plane for a 32x32 content would be
// the whole call's time).
constexpr int64_t kStyleInKernelRatio = 4;

// Whether the fused forward reduces the style's statistics itself: a style batch of 1 or N for
// one content (a broadcast style over several contents would be reduced by every content's
// group), a plane no more than kStyleInKernelRatio times the content's, and not a channels_last
// style for the warp path (one warp would read each plane with a stride of C).
inline bool style_in_fused_kernel(int64_t content_batch, int64_t content_plane, int64_t style_batch,
                                  int64_t style_plane, bool style_channels_last, bool warp_path) {
  if (style_batch != content_batch && content_batch != 1) return false;
  if (style_plane > kStyleInKernelRatio * content_plane) return false;
  return !(warp_path && style_channels_last);
}

}  // namespace adain
