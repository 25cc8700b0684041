// Launch configuration of the CUDA kernels: thread counts, register budgets, how a plane is cut
// into vectors, blocks and thread-block clusters, and how many chunks a reduction uses. Host side,
// except for the constants the kernels use in their launch bounds.
#pragma once

#include <ATen/cuda/CUDAContext.h>

#include <c10/cuda/CUDAFunctions.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "../path_rules.h"
#include "../plane.h"

namespace adain::cuda {

constexpr int kMaxThreads = 1024;
constexpr int kReduceThreads = 256;
constexpr int kFwdMaxPerThread = 32;  // register budget per thread, forward
constexpr int kBwdMaxPerThread = 16;  // backward holds x and grad_out
// A cluster kernel also keeps its cluster's state live: at most 64 bytes of a plane per thread
// (ptxas spilled the float32 forward with 32 elements a thread; check_sass.py watches this).
constexpr int kClusterMaxBytesPerThread = 64;

template <typename T>
constexpr bool cluster_fits(int vec, int items) {
  return vec * items * int(sizeof(T)) <= kClusterMaxBytesPerThread;
}

// Partial-sum blocks of kReduceThreads threads. A tensor is cut into blocks as follows:
//  NCHW: block b covers chunk (b % chunks) of plane (b / chunks), threads along H*W (coalesced).
//  channels_last: block b covers chunk (b % chunks) of the rows of channel tile
//  ((b / chunks) % tiles) of image b / (chunks * tiles), as 32 channel lanes x 8 row groups
//  (a warp reads 32 consecutive channels).
constexpr int kTileC = 32, kTileRows = kReduceThreads / kTileC;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline int64_t sum_blocks(const PlaneShape& g, int64_t chunks) {
  return g.layout == Layout::kNCHW ? g.planes() * chunks : g.n * ceil_div(g.c, kTileC) * chunks;
}

inline int num_sms() { return at::cuda::getCurrentDeviceProperties()->multiProcessorCount; }

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Chunks per plane (or per row range for channels_last) so that a launch has about four blocks
// per multiprocessor even when there are few planes.
inline int64_t chunks_for(const PlaneShape& g) {
  if (g.planes() == 0 || g.p == 0) return 1;  // nothing to split (and no division by zero)
  const int64_t target_blocks = 4 * int64_t(num_sms());
  if (g.layout == Layout::kNCHW) {
    return std::clamp<int64_t>(ceil_div(target_blocks, g.planes()), 1, ceil_div(g.p, 4096));
  }
  return std::clamp<int64_t>(ceil_div(target_blocks, g.n * ceil_div(g.c, kTileC)), 1,
                             ceil_div(g.p, 256));
}

// Elements a register vector of the fused kernels holds for an NCHW plane: 16 bytes when the
// plane's size allows it and the pointers are aligned, else one.
template <typename T>
int plane_vec(const PlaneShape& g, bool aligned) {
  constexpr int kVec = 16 / sizeof(T);
  return (aligned && g.p % kVec == 0) ? kVec : 1;
}

// The vector width of the chunk-moments kernels: 16-byte loads for NCHW planes whose size is a
// multiple of the vector and whose pointers are aligned, else scalar loads.
template <typename T>
int moments_vec(const PlaneShape& g, std::initializer_list<const void*> ptrs) {
  bool aligned = true;
  for (const void* p : ptrs) aligned = aligned && (p == nullptr || aligned16(p));
  return g.layout == Layout::kNCHW ? plane_vec<T>(g, aligned) : 1;
}

// Elements per chunk: the plane split in `chunks`, rounded up to whole vectors.
inline int64_t chunk_length(const PlaneShape& g, int64_t chunks, int vec) {
  return ceil_div(ceil_div(g.p, chunks), vec) * vec;
}

// 16 bytes per access when every pointer is aligned and VEC divides the vector dimension.
template <typename T>
bool can_vectorize(const PlaneShape& g, std::initializer_list<const void*> ptrs) {
  constexpr int kVec = 16 / sizeof(T);
  if ((g.layout == Layout::kNCHW ? g.p : g.c) % kVec != 0) return false;
  for (const void* p : ptrs)
    if (p != nullptr && !aligned16(p)) return false;
  return true;
}

inline int64_t per_plane_blocks(const PlaneShape& g) {
  return ceil_div(g.planes(), kReduceThreads);
}

// How a fused kernel holds a plane in registers: VEC elements a vector, ITEMS vectors a thread,
// `threads` threads a block.
struct FusedShape {
  int vec, items, threads;
  int cluster = 1;    // blocks per plane (a thread-block cluster when > 1)
  int64_t slice = 0;  // elements per block
  bool warp = false;  // a warp per plane, kWarpPlanesPerBlock planes a block of `threads`
};

// Planes a block of the warp-per-plane kernels holds, one per warp.
constexpr int kWarpPlanesPerBlock = 8;

// A plane small enough for one warp's registers (32 lanes x VEC x ITEMS elements): the fewest
// elements per lane that hold it. No block-wide synchronization, many planes per wave.
template <typename T>
bool warp_shape(const PlaneShape& g, bool aligned, int max_per_thread, FusedShape& out) {
  if (g.layout != Layout::kNCHW) return false;
  const int vec = plane_vec<T>(g, aligned);
  for (int items = 1; items <= 8 && items * vec <= max_per_thread; items *= 2) {
    if (int64_t(32) * items * vec >= g.p) {
      out = FusedShape{vec, items, 32 * kWarpPlanesPerBlock, 1, g.p, true};
      return true;
    }
  }
  return false;
}

// A block per plane: the fewest elements per thread that fit the plane in 512 threads, else in
// 1024, within the register budget; false when the plane is too large. 512 threads first: with
// 64 registers a thread two such blocks fit a multiprocessor, so one block's reductions overlap
// another's loads.
constexpr int kPreferredThreads = 512;

template <typename T>
bool fused_shape(const PlaneShape& g, bool aligned, int max_per_thread, FusedShape& out) {
  if (g.layout != Layout::kNCHW) return false;
  const int vec = plane_vec<T>(g, aligned);
  for (const int64_t limit : {kPreferredThreads, kMaxThreads}) {
    for (int items = 1; items <= 8 && items * vec <= max_per_thread; items *= 2) {
      const int64_t threads = ceil_div(g.p, int64_t(items) * vec);
      if (threads <= limit) {
        out =
            FusedShape{vec, items, int(std::max<int64_t>(32, ceil_div(threads, 32) * 32)), 1, g.p};
        return true;
      }
    }
  }
  return false;
}

// A plane too large for one block, split over a cluster of 2..8 blocks (portable cluster sizes;
// sm_90 and newer), each holding `slice` elements (a multiple of VEC) in registers.
constexpr int kMaxCluster = 8;

template <typename T>
bool cluster_shape(const PlaneShape& g, bool aligned, int max_per_thread, FusedShape& out) {
  if (g.layout != Layout::kNCHW || at::cuda::getCurrentDeviceProperties()->major < 9) return false;
  const int vec = plane_vec<T>(g, aligned);
  for (int cluster = 2; cluster <= kMaxCluster; ++cluster) {
    const int64_t slice = ceil_div(ceil_div(g.p, cluster), vec) * vec;
    for (int items = 1; items <= 8 && items * vec <= max_per_thread && cluster_fits<T>(vec, items);
         items *= 2) {
      const int64_t threads = ceil_div(slice, int64_t(items) * vec);
      if (threads <= kMaxThreads) {
        out = FusedShape{vec, items, int(std::max<int64_t>(32, ceil_div(threads, 32) * 32)),
                         cluster, slice};
        return true;
      }
    }
  }
  return false;
}

// Launch configuration of `blocks` blocks in clusters of `cluster`.
struct ClusterLaunch {
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute attribute{};
  ClusterLaunch(int64_t blocks, int threads, int cluster, cudaStream_t stream) {
    config.gridDim = dim3(static_cast<unsigned>(blocks));
    config.blockDim = dim3(threads);
    config.stream = stream;
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = cluster;
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  // Whether the current GPU can co-schedule a cluster of this kernel (some cannot, for large
  // clusters of big blocks) and the kernel, as loaded, was compiled with cluster code
  // (cluster_path_allowed). Asked once per kernel, block size, cluster size and device: the
  // queries cost microseconds, a call's whole budget on small maps.
  template <typename Kernel>
  bool schedulable(Kernel kernel) {
    using Key = std::tuple<const void*, unsigned, unsigned, int>;
    static std::mutex mutex;
    static std::map<Key, bool> known;
    const Key key{reinterpret_cast<const void*>(kernel), config.blockDim.x,
                  attribute.val.clusterDim.x, c10::cuda::current_device()};
    const std::lock_guard<std::mutex> lock(mutex);
    const auto found = known.find(key);
    if (found != known.end()) return found->second;
    cudaFuncAttributes attributes{};
    int clusters = 0;
    const bool ok = cudaFuncGetAttributes(&attributes, kernel) == cudaSuccess &&
                    cluster_path_allowed(at::cuda::getCurrentDeviceProperties()->major,
                                         attributes.ptxVersion, attributes.binaryVersion) &&
                    cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) == cudaSuccess &&
                    clusters > 0;
    (void)cudaGetLastError();  // a refused query leaves no sticky error for the next launch
    known.emplace(key, ok);
    return ok;
  }
};

// Calls f(vec, items) with both as std::integral_constant for the chosen shape (generic
// lambdas keep this C++17, which older torch builds compile extensions with).
template <typename T, typename F>
void with_fused_shape(const FusedShape& s, F&& f) {
  constexpr int kVec = 16 / sizeof(T);
  auto by_items = [&](auto vec) {
    constexpr int V = decltype(vec)::value;
    switch (s.items) {
      case 1:
        f(vec, std::integral_constant<int, 1>{});
        break;
      case 2:
        f(vec, std::integral_constant<int, 2>{});
        break;
      case 4:
        if constexpr (4 * V <= kFwdMaxPerThread) f(vec, std::integral_constant<int, 4>{});
        break;
      default:
        if constexpr (8 * V <= kFwdMaxPerThread) f(vec, std::integral_constant<int, 8>{});
        break;
    }
  };
  if (s.vec == 1) {
    by_items(std::integral_constant<int, 1>{});
  } else {
    by_items(std::integral_constant<int, kVec>{});
  }
}

}  // namespace adain::cuda
