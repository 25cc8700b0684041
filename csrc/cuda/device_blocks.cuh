// Device building blocks shared by the CUDA kernels of the AdaIN and loss operators: block and
// thread-block-cluster reductions, 16-byte vectors, chunked per-plane partial sums for NCHW and
// channels_last, and the pointwise form out = a*u + b*(v - m) + k that every op reduces to.
// How many threads and blocks run them is decided in launch_config.cuh.
#pragma once

#include <ATen/AccumulateType.h>
#include <ATen/cuda/CUDAContext.h>
#include <cooperative_groups.h>
#include <ATen/cuda/detail/IntegerDivider.cuh>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "../plane.h"
#include "launch_config.cuh"

namespace adain::cuda {

template <typename T>
using acc_type = at::acc_type<T, /*is_cuda=*/true>;

// ------------------------------------------------------------------ reductions ----
template <typename A>
__device__ __forceinline__ A warp_sum(A a) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) a += __shfl_down_sync(0xffffffffu, a, offset);
  return a;
}

// Sums K values over the block (blockDim.x a multiple of 32) and returns them to every thread.
// The order of additions is fixed, so results are bit-identical from run to run.
template <int K, typename A>
__device__ __forceinline__ void block_sum(A (&v)[K]) {
  __shared__ A shared[K][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
#pragma unroll
  for (int j = 0; j < K; ++j) v[j] = warp_sum(v[j]);
  __syncthreads();  // a previous call's readers are done with `shared`
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < K; ++j) shared[j][warp] = v[j];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      v[j] = warp_sum(lane < warps ? shared[j][lane] : A(0));
      if (lane == 0) shared[j][0] = v[j];
    }
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < K; ++j) v[j] = shared[j][0];
}

template <typename A>
__device__ __forceinline__ void block_sum2(A& a, A& b) {
  A v[2] = {a, b};
  block_sum<2>(v);
  a = v[0];
  b = v[1];
}

// Merges every thread's Moments over the block (blockDim.x a multiple of 32) and returns the
// total to every thread; the merge order is fixed (lane, then warp order).
template <typename A>
__device__ __forceinline__ Moments<A> warp_merge(Moments<A> m) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    Moments<A> o;
    o.n = __shfl_down_sync(0xffffffffu, m.n, offset);
    o.mean = __shfl_down_sync(0xffffffffu, m.mean, offset);
    o.m2 = __shfl_down_sync(0xffffffffu, m.m2, offset);
    m.merge(o);
  }
  return m;
}

template <typename A>
__device__ __forceinline__ Moments<A> block_merge(Moments<A> m) {
  __shared__ A shared[3][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  m = warp_merge(m);
  __syncthreads();  // a previous call's readers are done with `shared`
  if (lane == 0) shared[0][warp] = m.n, shared[1][warp] = m.mean, shared[2][warp] = m.m2;
  __syncthreads();
  if (warp == 0) {
    Moments<A> w;
    if (lane < warps) w.n = shared[0][lane], w.mean = shared[1][lane], w.m2 = shared[2][lane];
    w = warp_merge(w);
    if (lane == 0) shared[0][0] = w.n, shared[1][0] = w.mean, shared[2][0] = w.m2;
  }
  __syncthreads();
  Moments<A> total;
  total.n = shared[0][0], total.mean = shared[1][0], total.m2 = shared[2][0];
  return total;
}

// The moments of the first `count` of K values held in registers (the rest zero), exactly:
// their mean, then the squared deviations from it.
template <int K, typename A>
__device__ __forceinline__ Moments<A> batch_moments(const A (&v)[K], int count = K) {
  A sum = 0;
#pragma unroll
  for (int j = 0; j < K; ++j) sum += v[j];
  Moments<A> batch;
  batch.n = A(count);
  batch.mean = count == K ? sum * (A(1) / A(K)) : sum / A(count);  // 1/K is exact: K = 2^k
#pragma unroll
  for (int j = 0; j < K; ++j) {
    const A d = v[j] - batch.mean;
    if (j < count) batch.m2 += d * d;
  }
  return batch;
}

// Adds the values at(i), i = first, first + stride, ... < end, to m in batches of K, each reduced
// exactly (batch_moments) and merged into m: one division per batch instead of Welford's one
// per value.
template <int K, typename A, typename F>
__device__ __forceinline__ void add_strided(Moments<A>& m, int64_t first, int64_t end,
                                            int64_t stride, F&& at) {
  for (int64_t i = first; i < end; i += K * stride) {
    A v[K];
    int count = 0;
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const int64_t idx = i + j * stride;
      v[j] = idx < end ? at(idx) : A(0);
      count += idx < end;
    }
    m.merge(batch_moments(v, count));
  }
}

// Values per batch of add_strided.
constexpr int kMomentBatch = 8;

// Rounding can leave a sum of squared deviations a little below zero: clamp it to zero, but keep
// NaN (a plane holding NaN has NaN statistics on every backend; max/fmaxf would drop it).
template <typename A>
__device__ __forceinline__ A nonnegative(A m2) {
  return m2 < A(0) ? A(0) : m2;
}

template <typename A>
__device__ __forceinline__ A variance_of(const Moments<A>& m, int64_t p, bool unbiased) {
  return nonnegative(m.m2) / A(dof(p, unbiased));
}

template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

// ------------------------------------------------ the threads that share a plane ----
// The fused kernels give each plane to a block (kBlock), to the blocks of a thread-block cluster
// (kCluster, each block a slice), or to one warp (kWarp: small planes, kWarpPlanesPerBlock of them
// per block, reduced with shuffles alone). lane and width: a thread's index among the threads of
// its plane (within its block) and their number.
enum class Group { kBlock, kCluster, kWarp };

template <Group G>
__device__ __forceinline__ int group_lane() {
  return G == Group::kWarp ? int(threadIdx.x & 31) : int(threadIdx.x);
}

template <Group G>
__device__ __forceinline__ int group_width() {
  return G == Group::kWarp ? 32 : int(blockDim.x);
}

// The sums of (a, b) over the threads of a plane (within a block), in every one of them. A warp
// reduces in lane order and broadcasts lane 0's result, so every lane holds the same value.
template <Group G, typename A>
__device__ __forceinline__ void group_sum2(A& a, A& b) {
  if constexpr (G == Group::kWarp) {
    a = __shfl_sync(0xffffffffu, warp_sum(a), 0);
    b = __shfl_sync(0xffffffffu, warp_sum(b), 0);
  } else {
    block_sum2(a, b);
  }
}

template <Group G, typename A>
__device__ __forceinline__ Moments<A> group_merge(Moments<A> m) {
  if constexpr (G == Group::kWarp) {
    m = warp_merge(m);
    m.n = __shfl_sync(0xffffffffu, m.n, 0);
    m.mean = __shfl_sync(0xffffffffu, m.mean, 0);
    m.m2 = __shfl_sync(0xffffffffu, m.m2, 0);
    return m;
  } else {
    return block_merge(m);
  }
}

// ----------------------------------------------- a group's slice of a plane in registers ----
// The fused kernels hold their group's slice [begin, end) of a plane in registers, VEC elements
// per vector and ITEMS vectors per thread: vector k of a thread starts at element
// begin + (k * width + lane) * VEC. The loops below are all unrolled, so v[k][j] stays in
// registers.

// f(k, e) for each of this thread's vectors in the slice (e: the vector's first element).
template <Group G, int VEC, int ITEMS, typename F>
__device__ __forceinline__ void for_each_vector(int64_t begin, int64_t end, F&& f) {
  const int lane = group_lane<G>(), width = group_width<G>();
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t e = begin + (int64_t(k) * width + lane) * VEC;
    if (e < end) f(k, e);
  }
}

// f(k, j) for each of this thread's elements in the slice.
template <Group G, int VEC, int ITEMS, typename F>
__device__ __forceinline__ void for_each_element(int64_t begin, int64_t end, F&& f) {
  for_each_vector<G, VEC, ITEMS>(begin, end, [&](int k, int64_t) {
#pragma unroll
    for (int j = 0; j < VEC; ++j) f(k, j);
  });
}

// v[k][j] = src[e + j] widened to A, one VEC-wide load per vector.
template <Group G, int VEC, int ITEMS, typename T, typename A>
__device__ __forceinline__ void load_slice(const T* __restrict__ src, int64_t begin, int64_t end,
                                           A (&v)[ITEMS][VEC]) {
  for_each_vector<G, VEC, ITEMS>(begin, end, [&](int k, int64_t e) {
    const Vec<T, VEC> in = *reinterpret_cast<const Vec<T, VEC>*>(src + e);
#pragma unroll
    for (int j = 0; j < VEC; ++j) v[k][j] = static_cast<A>(in.v[j]);
  });
}

// *dst = v as one 128-bit store when the vector is 16 bytes. A plain struct store is split by the
// compiler into 32-bit (or 16-bit) stores once registers are tight (eight vectors per thread in
// the fused kernels): the PTX vector store keeps it one instruction.
template <typename T, int VEC>
__device__ __forceinline__ void store_vector(T* dst, const Vec<T, VEC>& v) {
  if constexpr (sizeof(Vec<T, VEC>) == 16) {
    uint32_t w[4];
    memcpy(w, &v, sizeof(w));
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(dst), "r"(w[0]), "r"(w[1]),
                 "r"(w[2]), "r"(w[3])
                 : "memory");
  } else {
    *reinterpret_cast<Vec<T, VEC>*>(dst) = v;
  }
}

// dst[e + j] = value(k, j) narrowed to T, one VEC-wide store per vector: the one per-element
// output loop of the fused forward and backward kernels.
template <Group G, int VEC, int ITEMS, typename T, typename F>
__device__ __forceinline__ void store_slice(T* __restrict__ dst, int64_t begin, int64_t end,
                                            F&& value) {
  for_each_vector<G, VEC, ITEMS>(begin, end, [&](int k, int64_t e) {
    Vec<T, VEC> out;
#pragma unroll
    for (int j = 0; j < VEC; ++j) out.v[j] = static_cast<T>(value(k, j));
    store_vector(dst + e, out);
  });
}

// Offset of a plane's first element, for either layout.
__device__ __forceinline__ int64_t first_offset(int64_t plane, const PlaneShape& g) {
  return g.layout == Layout::kNCHW ? plane * g.p : (plane / g.c) * g.p * g.c + plane % g.c;
}

// -------------------------------------------------------- thread-block clusters ----
// Thread-block clusters (sm_90): a plane too large for one block's registers is split over the
// blocks of a cluster, which merge their partial results through distributed shared memory, so
// the plane is still read once and written once. Every block merges the partials in rank order:
// the totals are identical in every block and from run to run.
__device__ __forceinline__ unsigned cluster_rank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().block_rank();
#else
  return 0;
#endif
}

__device__ __forceinline__ unsigned cluster_blocks() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().num_blocks();
#else
  return 1;
#endif
}

// One round of cluster-wide reduction of N values that every thread of every block holds (its
// block's reduction): thread 0 publishes them in `slots` (the block's shared memory), the cluster
// synchronizes once, thread 0 of each block folds all blocks' values in rank order with
// fold(total, part) (the same order everywhere: every block gets the same bits), and the block
// shares the total. The block then signals that it is done reading the others' slots, without
// waiting: cluster_wait_for_readers(), at the kernel's end, waits for the others' signals before
// the block (and its slots) may go away, so nothing waits on, or fences, the output stores.
template <int N, typename A, typename Fold>
__device__ __forceinline__ void cluster_fold(A (&v)[N], A (&slots)[N], Fold&& fold) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  auto cluster = cooperative_groups::this_cluster();
  __shared__ A total[N];
  if (threadIdx.x == 0) {
#pragma unroll
    for (int j = 0; j < N; ++j) slots[j] = v[j];
  }
  cluster.sync();
  if (threadIdx.x == 0) {
    A acc[N];
    for (unsigned r = 0; r < cluster.num_blocks(); ++r) {
      const A* remote = cluster.map_shared_rank(&slots[0], r);
      A part[N];
#pragma unroll
      for (int j = 0; j < N; ++j) part[j] = remote[j];
      if (r == 0) {
#pragma unroll
        for (int j = 0; j < N; ++j) acc[j] = part[j];
      } else {
        fold(acc, part);
      }
    }
#pragma unroll
    for (int j = 0; j < N; ++j) total[j] = acc[j];
  }
  __syncthreads();
  // Relaxed: the remote reads are complete (their values are in `total`, past the barrier above),
  // so nothing needs ordering, and no fence is paid.
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#pragma unroll
  for (int j = 0; j < N; ++j) v[j] = total[j];
#else
  __trap();  // launched only on sm_90 and newer
#endif
}

__device__ __forceinline__ void cluster_wait_for_readers() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}

template <typename A, int N>
__device__ __forceinline__ void add_into(A (&acc)[N], const A (&part)[N]) {
#pragma unroll
  for (int j = 0; j < N; ++j) acc[j] += part[j];
}

// Chan's merge of Moments stored as K (n, mean, M2) triples.
template <typename A, int N>
__device__ __forceinline__ void merge_into(A (&acc)[N], const A (&part)[N]) {
  static_assert(N % 3 == 0, "moments come in (n, mean, M2) triples");
#pragma unroll
  for (int j = 0; j < N; j += 3) {
    Moments<A> a{acc[j], acc[j + 1], acc[j + 2]};
    a.merge(Moments<A>{part[j], part[j + 1], part[j + 2]});
    acc[j] = a.n, acc[j + 1] = a.mean, acc[j + 2] = a.m2;
  }
}

// ------------------------------------------------------------- partial sums ----
// The blocks' layout over a tensor is described in launch_config.cuh (sum_blocks): block b covers
// chunk (b % chunks) of a plane's elements (NCHW), or of the rows of a channel tile (NHWC).

// Where thread (tx, ty) of channels_last block b works: image n, channel c (possibly >= C in the
// last tile), rows ty, ty + kTileRows, ... of the block's chunk.
struct ChannelTile {
  int tx, ty;
  int64_t n, c;
};

__device__ __forceinline__ ChannelTile channel_tile(const PlaneShape& g, int64_t chunks,
                                                    int64_t b) {
  const int tx = threadIdx.x % kTileC, ty = threadIdx.x / kTileC;
  const int64_t tiles = ceil_div(g.c, kTileC);
  return {tx, ty, b / (chunks * tiles), ((b / chunks) % tiles) * kTileC + tx};
}

// Elements of a plane in chunk `chunk`.
__device__ __forceinline__ int64_t chunk_count(int64_t p, int64_t chunk, int64_t chunk_len) {
  const int64_t begin = chunk * chunk_len, end = min(p, begin + chunk_len);
  return end > begin ? end - begin : 0;
}

// Statistics mode: writes moments[(plane * chunks + chunk) * 2 + {0, 1}] = mean and M2 of the
// chunk's elements of each plane of block b (the count follows from the chunk: chunk_count).
// With HAS_T it also returns, in thread 0, the block's sum of (v - t)^2 (the content loss).
// VEC > 1 (NCHW only): P, chunk_len and the pointers are multiples of VEC elements (16 bytes;
// launch_config.cuh, moments_vec), so each thread reads whole vectors, one exact batch each.
template <typename T, bool HAS_T, int VEC = 1>
__device__ acc_type<T> plane_chunk_moments(const T* __restrict__ v, const T* __restrict__ t,
                                           const PlaneShape& g, int64_t chunks, int64_t chunk_len,
                                           int64_t b, acc_type<T>* __restrict__ moments) {
  using A = acc_type<T>;
  Moments<A> m;
  A sq = 0;
  auto at = [&](int64_t idx) {
    const A x = static_cast<A>(v[idx]);
    if constexpr (HAS_T) {
      const A e = x - static_cast<A>(t[idx]);
      sq += e * e;
    }
    return x;
  };
  const int64_t chunk = b % chunks;
  const int64_t begin = chunk * chunk_len, end = min(g.p, begin + chunk_len);
  if (g.layout == Layout::kNCHW) {
    const int64_t plane = b / chunks, base = plane * g.p;
    if constexpr (VEC > 1) {
      for (int64_t e = begin + int64_t(threadIdx.x) * VEC; e < end;
           e += int64_t(blockDim.x) * VEC) {
        const Vec<T, VEC> in = *reinterpret_cast<const Vec<T, VEC>*>(v + base + e);
        Vec<T, VEC> tin;
        if constexpr (HAS_T) tin = *reinterpret_cast<const Vec<T, VEC>*>(t + base + e);
        A x[VEC];
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
          x[j] = static_cast<A>(in.v[j]);
          if constexpr (HAS_T) {
            const A diff = x[j] - static_cast<A>(tin.v[j]);
            sq += diff * diff;
          }
        }
        m.merge(batch_moments(x));
      }
    } else {
      add_strided<kMomentBatch>(m, begin + threadIdx.x, end, blockDim.x,
                                [&](int64_t i) { return at(base + i); });
    }
    m = block_merge(m);
    if constexpr (HAS_T) {
      A unused = 0;
      block_sum2(sq, unused);
    }
    if (threadIdx.x == 0) moments[b * 2] = m.mean, moments[b * 2 + 1] = m.m2;
    return sq;
  }
  __shared__ A part[4][kTileRows][kTileC];
  const auto [tx, ty, n, c] = channel_tile(g, chunks, b);
  if (c < g.c) {
    const int64_t base = n * g.p * g.c + c;
    add_strided<kMomentBatch>(m, begin + ty, end, kTileRows,
                              [&](int64_t row) { return at(base + row * g.c); });
  }
  part[0][ty][tx] = m.n, part[1][ty][tx] = m.mean, part[2][ty][tx] = m.m2, part[3][ty][tx] = sq;
  __syncthreads();
  if (ty == 0 && c < g.c) {
    for (int r = 1; r < kTileRows; ++r) {
      Moments<A> o;
      o.n = part[0][r][tx], o.mean = part[1][r][tx], o.m2 = part[2][r][tx];
      m.merge(o);
    }
    const int64_t slot = (n * g.c + c) * chunks + chunk;
    moments[slot * 2] = m.mean, moments[slot * 2 + 1] = m.m2;
  }
  A total_sq = 0;
  if (HAS_T && threadIdx.x == 0) {
    for (int r = 0; r < kTileRows; ++r)
      for (int l = 0; l < kTileC; ++l) total_sq += part[3][r][l];
  }
  return total_sq;
}

// A plane's moments from its chunks' (plane_chunk_moments), merged in chunk order.
template <typename A>
__device__ __forceinline__ Moments<A> total_moments(const A* moments, int64_t plane, int64_t chunks,
                                                    int64_t chunk_len, int64_t p) {
  Moments<A> total;
  for (int64_t k = 0; k < chunks; ++k) {
    Moments<A> part;
    part.n = A(chunk_count(p, k, chunk_len));
    part.mean = moments[(plane * chunks + k) * 2];
    part.m2 = moments[(plane * chunks + k) * 2 + 1];
    total.merge(part);
  }
  return total;
}

// Backward mode: writes sums[(plane * chunks + chunk) * 2 + {0, 1}] = sum(u), sum(u * (v - center))
// over the chunk's elements of each plane of block b, center being the plane's saved mean.
template <typename T>
__device__ void plane_chunk_sums(const T* __restrict__ u, const T* __restrict__ v,
                                 const acc_type<T>* __restrict__ center, const PlaneShape& g,
                                 int64_t chunks, int64_t chunk_len, int64_t b,
                                 acc_type<T>* __restrict__ sums) {
  using A = acc_type<T>;
  A q[2] = {0, 0};
  auto add = [&](int64_t idx, A m) {
    const A w = static_cast<A>(u[idx]);
    q[0] += w;
    q[1] += w * (static_cast<A>(v[idx]) - m);
  };
  const int64_t chunk = b % chunks;
  const int64_t begin = chunk * chunk_len, end = min(g.p, begin + chunk_len);
  if (g.layout == Layout::kNCHW) {
    const int64_t plane = b / chunks, base = plane * g.p;
    const A m = center[plane];
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) add(base + i, m);
    block_sum<2>(q);
    if (threadIdx.x == 0) sums[b * 2] = q[0], sums[b * 2 + 1] = q[1];
    return;
  }
  __shared__ A part[2][kTileRows][kTileC];
  const auto [tx, ty, n, c] = channel_tile(g, chunks, b);
  if (c < g.c) {
    const int64_t base = n * g.p * g.c + c;
    const A m = center[n * g.c + c];
    for (int64_t row = begin + ty; row < end; row += kTileRows) add(base + row * g.c, m);
  }
  part[0][ty][tx] = q[0], part[1][ty][tx] = q[1];
  __syncthreads();
  if (ty == 0 && c < g.c) {
    for (int r = 1; r < kTileRows; ++r) q[0] += part[0][r][tx], q[1] += part[1][r][tx];
    const int64_t slot = (n * g.c + c) * chunks + chunk;
    sums[slot * 2] = q[0], sums[slot * 2 + 1] = q[1];
  }
}

// Total of a plane's chunk sums (plane_chunk_sums).
template <typename A>
__device__ __forceinline__ void total_sums(const A* sums, int64_t plane, int64_t chunks, A& q1,
                                           A& q2) {
  q1 = 0, q2 = 0;
  for (int64_t k = 0; k < chunks; ++k)
    q1 += sums[(plane * chunks + k) * 2], q2 += sums[(plane * chunks + k) * 2 + 1];
}

// The first plane of each vector of a map, without a 64-bit division per vector: dividers by
// invariant integers (a multiply and a shift), made on the host once per launch. Maps of more
// than 2^31 vectors, which those dividers cannot index, take plain division.
struct VectorPlanes {
  at::cuda::detail::IntDivider<uint32_t> per_plane;  // NCHW: vectors a plane
  at::cuda::detail::IntDivider<uint32_t> per_image;  // channels_last: vectors an image (P*C/VEC)
  at::cuda::detail::IntDivider<uint32_t> per_row;    // channels_last: vectors a row (C/VEC)
  PlaneShape g{};
  int vec = 1;
  bool wide = true;

  VectorPlanes() = default;
  VectorPlanes(const PlaneShape& shape, int vec_, int64_t vectors)
      : g(shape), vec(vec_), wide(vectors > INT32_MAX || shape.p * shape.c > INT32_MAX) {
    if (wide) return;
    if (g.layout == Layout::kNCHW) {
      per_plane = at::cuda::detail::IntDivider<uint32_t>(uint32_t(g.p / vec));
    } else {
      per_image = at::cuda::detail::IntDivider<uint32_t>(uint32_t(g.p * g.c / vec));
      per_row = at::cuda::detail::IntDivider<uint32_t>(uint32_t(g.c / vec));
    }
  }

  // NCHW: the plane of vector i; channels_last: the first of its VEC consecutive planes.
  __device__ __forceinline__ int64_t first_plane(int64_t i) const {
    const bool nchw = g.layout == Layout::kNCHW;
    if (wide) {
      const int64_t e = i * vec;
      return nchw ? e / g.p : (e / (g.p * g.c)) * g.c + e % g.c;
    }
    if (nchw) return per_plane.div(uint32_t(i));
    const auto image = per_image.divmod(uint32_t(i));
    return int64_t(image.div) * g.c + int64_t(per_row.mod(image.mod)) * vec;
  }
};

// 1/x correctly rounded, without the division's slow-path subroutine (float32).
template <typename A>
__device__ __forceinline__ A reciprocal(A x) {
  if constexpr (std::is_same_v<A, float>) {
    return __frcp_rn(x);
  } else {
    return A(1) / x;
  }
}

// out = a * u + b * (v - m) + k for the VEC elements of vector i, with coef_of(plane) the
// plane's coefficients. VEC divides P (NCHW) or C (channels_last), so a vector lies in one plane
// (NCHW) or covers consecutive planes (NHWC).
template <typename T, int VEC, bool HAS_U, typename CoefOf>
__device__ __forceinline__ void apply_vector(const T* __restrict__ u, const T* __restrict__ v,
                                             T* __restrict__ out, CoefOf&& coef_of,
                                             const VectorPlanes& planes, int64_t i) {
  using A = acc_type<T>;
  const int64_t e = i * VEC;
  const Vec<T, VEC> vin = *reinterpret_cast<const Vec<T, VEC>*>(v + e);
  Vec<T, VEC> uin;
  if constexpr (HAS_U) uin = *reinterpret_cast<const Vec<T, VEC>*>(u + e);
  const bool nchw = planes.g.layout == Layout::kNCHW;
  const int64_t plane0 = planes.first_plane(i);
  Coef<A> cf = coef_of(plane0);
  Vec<T, VEC> o;
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    if (!nchw && j > 0) cf = coef_of(plane0 + j);
    A r = cf.b * (static_cast<A>(vin.v[j]) - cf.m) + cf.k;
    if constexpr (HAS_U) r += cf.a * static_cast<A>(uin.v[j]);
    o.v[j] = static_cast<T>(r);
  }
  store_vector(out + e, o);
}

}  // namespace adain::cuda
