// CUDA kernels for the adain_cuda operators.
//
// Paths, chosen per call by plane size (choose_path; docs/kernels.md):
//  * Fused plane kernels, for NCHW content whose plane fits in registers: a warp per plane (up to
//    1024 elements, eight planes a block), a block per plane (up to 32768 forward / 16384
//    backward), or, on sm_90, a thread-block cluster per plane (up to 8x larger: relu4_1 of a 4K
//    frame). The plane is loaded once into registers, reduced exactly (the slice's mean, then the
//    squared deviations from it), and written once; the forward reduces the style plane in the
//    same kernel, so the op reads content and style once and writes the output once: the byte
//    floor. A cluster's blocks merge their moments (content and style together) in one exchange
//    through distributed shared memory.
//  * General path (channels_last, larger planes, broadcast styles): a chunked moments (or, for the
//    backward, sums) kernel (coalesced along H*W for NCHW, along C for channels_last), a tiny
//    per-plane finalize kernel that turns them into coefficients, and one vectorized pointwise
//    kernel.
// Every reduction has a fixed order (no atomics), so results are bit-identical run to run.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <string>
#include <tuple>
#include <type_traits>

#include "../op_setup.h"
#include "../plane.h"
#include "device_blocks.cuh"

namespace adain {
namespace {

using namespace cuda;

// ------------------------------------------------------------ fused plane kernels ----
// 1/P and 1/dof of the content planes, divided on the host: a device division brings a
// slow-path subroutine whose register saves went to local memory in the fused kernels.
template <typename A>
struct PlaneScale {
  A inv_p, inv_dof;
};

// 1/sqrt(x) correctly rounded, without the division's slow-path subroutine (float32).
template <typename A>
__device__ __forceinline__ A reciprocal_sqrt(A x) {
  if constexpr (std::is_same_v<A, float>) {
    return __frsqrt_rn(x);
  } else {
    return A(1) / sqrt(x);
  }
}

template <typename A>
PlaneScale<A> plane_scale(const PlaneShape& g, bool unbiased) {
  return {A(1.0 / double(g.p)), A(1.0 / double(dof(g.p, unbiased)))};
}

// Which plane this thread works on, its slice [begin, end) of it, and whether it is the one thread
// that writes the plane's statistics. kCluster: `slice` elements per block of the cluster; kWarp:
// one plane per warp, kWarpPlanesPerBlock per block; kBlock: a block per plane.
template <Group G>
struct PlaneSlice {
  int64_t plane, begin, end;
  bool writer;
  __device__ PlaneSlice(const PlaneShape& g, int64_t slice) {
    const unsigned rank = G == Group::kCluster ? cluster_rank() : 0;
    if constexpr (G == Group::kWarp) {
      plane = int64_t(blockIdx.x) * kWarpPlanesPerBlock + (threadIdx.x >> 5);
    } else if constexpr (G == Group::kCluster) {
      plane = blockIdx.x / cluster_blocks();
    } else {
      plane = blockIdx.x;
    }
    begin = rank * slice;
    end = min(g.p, begin + slice);
    writer = group_lane<G>() == 0 && rank == 0;
  }
};

// A warp kernel runs kWarpPlanesPerBlock warps a block, the others up to kMaxThreads threads.
template <Group G>
constexpr int kGroupMaxThreads = G == Group::kWarp ? 32 * kWarpPlanesPerBlock : kMaxThreads;

template <typename T, int VEC, int ITEMS, Group G>
__global__ void __launch_bounds__(kGroupMaxThreads<G>)
    adain_fused_forward_kernel(const T* __restrict__ x, T* __restrict__ y, PlaneShape g,
                               const T* __restrict__ style,
                               PlaneShape sg,  // style == nullptr: use s_mean/s_std
                               acc_type<T>* __restrict__ s_mean,
                               acc_type<T>* __restrict__ s_std,  // out or in
                               acc_type<T>* __restrict__ c_mean, acc_type<T>* __restrict__ c_rstd,
                               acc_type<T> alpha, acc_type<T> eps, bool unbiased,
                               PlaneScale<acc_type<T>> scale, int64_t slice) {
  using A = acc_type<T>;
  __shared__ A exchange[6];  // this block's content and style moments, for the cluster
  const PlaneSlice<G> s(g, slice);
  if (G == Group::kWarp && s.plane >= g.planes()) return;  // whole warps: the last block's spares
  const int64_t plane = s.plane, begin = s.begin, end = s.end;
  const int64_t c = plane % g.c;
  const int64_t s_plane = (sg.n == 1 ? 0 : plane / g.c) * g.c + c;

  // This group's part of the plane, held in registers (device_blocks.cuh, "a group's slice"),
  // loaded before anything waits on a reduction where the registers allow: with more than 64
  // bytes a thread live, the style loop beside it spilled (float32, 32 elements a thread: the
  // relu4_1 planes of 1080p frames), so those load after the style's reduction.
  constexpr bool kLoadFirst = VEC * ITEMS * sizeof(T) <= 64;
  A v[ITEMS][VEC] = {};
  if constexpr (kLoadFirst) load_slice<G, VEC, ITEMS>(x + plane * g.p, begin, end, v);

  // The style plane's statistics; the blocks of a cluster each take a share of it and merge
  // their moments with the content's below. Outside a cluster they are final here, so only two
  // values stay live beside the content.
  Moments<A> style_m;
  A mu_s, sigma_s;
  const auto style_stats = [&] {
    mu_s = style_m.mean;
    sigma_s = sqrt(variance_of(style_m, sg.p, unbiased) + eps);
    if (s.writer) s_mean[s_plane] = mu_s, s_std[s_plane] = sigma_s;
  };
  if (style != nullptr) {
    const int64_t base = first_offset(s_plane, sg);
    const int64_t step = sg.layout == Layout::kNCHW ? 1 : sg.c;
    const int64_t share = G == Group::kCluster ? ceil_div(sg.p, cluster_blocks()) : sg.p;
    const int64_t s_begin = G == Group::kCluster ? cluster_rank() * share : 0;
    // Batches of 4: the content slice is live in registers meanwhile.
    add_strided<4>(style_m, s_begin + group_lane<G>(), min(sg.p, s_begin + share), group_width<G>(),
                   [&](int64_t i) { return static_cast<A>(style[base + i * step]); });
    style_m = group_merge<G>(style_m);
    if constexpr (G != Group::kCluster) style_stats();
  } else {
    mu_s = s_mean[s_plane];
    sigma_s = s_std[s_plane];
  }
  if constexpr (!kLoadFirst) load_slice<G, VEC, ITEMS>(x + plane * g.p, begin, end, v);

  // The slice's moments, exactly: its mean, then the squared deviations from it in registers.
  const int64_t count = end > begin ? end - begin : 0;
  A sum = 0, unused = 0;
  for_each_element<G, VEC, ITEMS>(begin, end, [&](int k, int j) { sum += v[k][j]; });
  group_sum2<G>(sum, unused);
  const A slice_mean =
      G != Group::kCluster ? sum * scale.inv_p : (count > 0 ? sum / A(count) : A(0));
  A sq = 0;
  unused = 0;
  for_each_element<G, VEC, ITEMS>(
      begin, end, [&](int k, int j) { sq += (v[k][j] - slice_mean) * (v[k][j] - slice_mean); });
  group_sum2<G>(sq, unused);
  Moments<A> content_m{A(count), slice_mean, sq};
  if constexpr (G == Group::kCluster) {  // one exchange merges the blocks' content and style
    A m[6] = {content_m.n, content_m.mean, content_m.m2, style_m.n, style_m.mean, style_m.m2};
    cluster_fold(m, exchange, [](A(&acc)[6], const A(&part)[6]) { merge_into(acc, part); });
    content_m = Moments<A>{m[0], m[1], m[2]};
    style_m = Moments<A>{m[3], m[4], m[5]};
    if (style != nullptr) style_stats();
  }

  const A mu = content_m.mean;
  const A rstd = reciprocal_sqrt(nonnegative(content_m.m2) * scale.inv_dof + eps);
  // y = alpha * (sigma_s * (x - mu) * rstd + mu_s) + (1 - alpha) * x
  const A a = alpha * sigma_s * rstd + (A(1) - alpha);
  const A k0 = alpha * mu_s + (A(1) - alpha) * mu;
  store_slice<G, VEC, ITEMS>(y + plane * g.p, begin, end,
                             [&](int k, int j) { return a * (v[k][j] - mu) + k0; });
  if (s.writer) c_mean[plane] = mu, c_rstd[plane] = rstd;
  if constexpr (G == Group::kCluster) cluster_wait_for_readers();
}

// dx = a * dy + b * (x - mu) + k with S1 = sum(dy), S2 = sum(dy * xhat) (docs/numerics.md,
// "Backward"); planes shared out among threads as for the forward.
template <typename T, int VEC, int ITEMS, Group G>
__global__ void __launch_bounds__(kGroupMaxThreads<G>)
    adain_fused_backward_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                T* __restrict__ dx, PlaneShape g,
                                const acc_type<T>* __restrict__ c_mean,
                                const acc_type<T>* __restrict__ c_rstd,
                                const acc_type<T>* __restrict__ s_std, int64_t style_batch,
                                acc_type<T> alpha, PlaneScale<acc_type<T>> scale,
                                acc_type<T>* __restrict__ g_mean, acc_type<T>* __restrict__ g_std,
                                int64_t slice) {
  using A = acc_type<T>;
  __shared__ A exchange[2];
  const PlaneSlice<G> s(g, slice);
  if (G == Group::kWarp && s.plane >= g.planes()) return;
  const int64_t plane = s.plane, begin = s.begin, end = s.end;
  const A mu = c_mean[plane], r = c_rstd[plane];
  const A sigma_s = s_std[style_batch == 1 ? plane % g.c : plane];
  // Zero-initialized: a slice's vectors past its end are never loaded, and arrays the compiler
  // sees partly undefined were kept in local memory.
  A xv[ITEMS][VEC] = {}, gv[ITEMS][VEC] = {};
  load_slice<G, VEC, ITEMS>(x + plane * g.p, begin, end, xv);
  load_slice<G, VEC, ITEMS>(dy + plane * g.p, begin, end, gv);
  A s1 = 0, s2 = 0;
  for_each_element<G, VEC, ITEMS>(begin, end, [&](int k, int j) {
    xv[k][j] -= mu;
    s1 += gv[k][j];
    s2 += gv[k][j] * xv[k][j];
  });
  group_sum2<G>(s1, s2);
  if constexpr (G == Group::kCluster) {
    A sums[2] = {s1, s2};
    cluster_fold(sums, exchange, [](A(&acc)[2], const A(&part)[2]) { add_into(acc, part); });
    s1 = sums[0], s2 = sums[1];
  }
  s2 *= r;
  const A big_a = sigma_s * r;
  const A a = alpha * big_a + (A(1) - alpha);
  const A b = -alpha * big_a * r * s2 * scale.inv_dof;
  const A k0 = -alpha * big_a * s1 * scale.inv_p;
  store_slice<G, VEC, ITEMS>(dx + plane * g.p, begin, end,
                             [&](int k, int j) { return a * gv[k][j] + b * xv[k][j] + k0; });
  if (s.writer) g_mean[plane] = alpha * s1, g_std[plane] = alpha * s2;
  if constexpr (G == Group::kCluster) cluster_wait_for_readers();
}

// --------------------------------------------------------------- general path ----
template <typename T, int VEC>
__global__ void __launch_bounds__(kReduceThreads)
    chunk_moments_kernel(const T* __restrict__ v, PlaneShape g, int64_t chunks, int64_t chunk_len,
                         acc_type<T>* __restrict__ moments) {
  plane_chunk_moments<T, false, VEC>(v, nullptr, g, chunks, chunk_len, blockIdx.x, moments);
}

template <typename T>
__global__ void __launch_bounds__(kReduceThreads)
    partial_sums_kernel(const T* __restrict__ u, const T* __restrict__ v,
                        const acc_type<T>* __restrict__ center, PlaneShape g, int64_t chunks,
                        int64_t chunk_len, acc_type<T>* __restrict__ sums) {
  plane_chunk_sums<T>(u, v, center, g, chunks, chunk_len, blockIdx.x, sums);
}

// Statistics of every plane from its chunks' moments.
template <typename A>
__global__ void finalize_stats_kernel(const A* __restrict__ moments, int64_t chunks,
                                      int64_t chunk_len, PlaneShape g, A eps, bool unbiased,
                                      A* __restrict__ mean, A* __restrict__ std_or_rstd,
                                      bool want_rstd) {
  const int64_t plane = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (plane >= g.planes()) return;
  const Moments<A> m = total_moments(moments, plane, chunks, chunk_len, g.p);
  const A sigma = sqrt(variance_of(m, g.p, unbiased) + eps);
  mean[plane] = m.mean;
  std_or_rstd[plane] = want_rstd ? A(1) / sigma : sigma;
}

// Forward coefficients from the content statistics and the style statistics.
template <typename A>
__global__ void adain_coef_kernel(const A* __restrict__ c_mean, const A* __restrict__ c_rstd,
                                  const A* __restrict__ s_mean, const A* __restrict__ s_std,
                                  int64_t style_batch, PlaneShape g, A alpha,
                                  Coef<A>* __restrict__ coef) {
  const int64_t plane = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (plane >= g.planes()) return;
  const int64_t sp = style_batch == 1 ? plane % g.c : plane;
  const A mu = c_mean[plane];
  coef[plane] = Coef<A>{A(0), alpha * s_std[sp] * c_rstd[plane] + (A(1) - alpha), mu,
                        alpha * s_mean[sp] + (A(1) - alpha) * mu};
}

template <typename A>
__global__ void adain_backward_coef_kernel(const A* __restrict__ sums, int64_t chunks,
                                           const A* __restrict__ c_mean,
                                           const A* __restrict__ c_rstd,
                                           const A* __restrict__ s_std, int64_t style_batch,
                                           PlaneShape g, A alpha, bool unbiased,
                                           Coef<A>* __restrict__ coef, A* __restrict__ g_mean,
                                           A* __restrict__ g_std) {
  const int64_t plane = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (plane >= g.planes()) return;
  A s1, s2;
  total_sums(sums, plane, chunks, s1, s2);
  const A r = c_rstd[plane];
  s2 *= r;
  const A big_a = s_std[style_batch == 1 ? plane % g.c : plane] * r;
  coef[plane] =
      Coef<A>{alpha * big_a + (A(1) - alpha), -alpha * big_a * r * s2 / A(dof(g.p, unbiased)),
              c_mean[plane], -alpha * big_a * s1 / A(g.p)};
  g_mean[plane] = alpha * s1;
  g_std[plane] = alpha * s2;
}

template <typename A>
__global__ void stats_backward_coef_kernel(const A* __restrict__ g_mean,
                                           const A* __restrict__ g_std, const A* __restrict__ mean,
                                           const A* __restrict__ std_, PlaneShape g, bool unbiased,
                                           Coef<A>* __restrict__ coef) {
  const int64_t plane = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (plane >= g.planes()) return;
  coef[plane] = Coef<A>{A(0), g_std[plane] / (A(dof(g.p, unbiased)) * std_[plane]), mean[plane],
                        g_mean[plane] / A(g.p)};
}

template <typename T, int VEC, bool HAS_U>
__global__ void apply_kernel(const T* __restrict__ u, const T* __restrict__ v, T* __restrict__ out,
                             const Coef<acc_type<T>>* __restrict__ coef, VectorPlanes planes,
                             int64_t vectors) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < vectors;
       i += int64_t(gridDim.x) * blockDim.x) {
    apply_vector<T, VEC, HAS_U>(u, v, out, [&](int64_t plane) { return coef[plane]; }, planes, i);
  }
}

// ----------------------------------------------------------------- path choice ----
// The first path that applies, smallest planes first: a warp per plane, a block per plane, a
// cluster per plane where the GPU can schedule it, else the general path; forced_kernel_path()
// (plane.h) restricts the choice. The fused kernels' shape goes to `fs`.
template <typename T, bool BACKWARD>
KernelPath choose_path(const PlaneShape& g, bool aligned, FusedShape& fs) {
  constexpr int kBudget = BACKWARD ? kBwdMaxPerThread : kFwdMaxPerThread;
  const KernelPath forced = forced_kernel_path().load(std::memory_order_relaxed);
  const auto allowed = [&](KernelPath p) { return forced == KernelPath::kAuto || forced == p; };
  if (allowed(KernelPath::kWarp) && warp_shape<T>(g, aligned, kBudget, fs))
    return KernelPath::kWarp;
  if (allowed(KernelPath::kBlock) && fused_shape<T>(g, aligned, kBudget, fs))
    return KernelPath::kBlock;
  if (!allowed(KernelPath::kCluster) || !cluster_shape<T>(g, aligned, kBudget, fs))
    return KernelPath::kGeneral;
  bool schedulable = false;
  with_fused_shape<T>(fs, [&](auto vec, auto items) {
    constexpr int V = decltype(vec)::value, I = decltype(items)::value;
    if constexpr (V * I <= kBudget && cluster_fits<T>(V, I)) {
      ClusterLaunch launch(g.planes() * fs.cluster, fs.threads, fs.cluster, nullptr);
      if constexpr (BACKWARD) {
        schedulable = launch.schedulable(adain_fused_backward_kernel<T, V, I, Group::kCluster>);
      } else {
        schedulable = launch.schedulable(adain_fused_forward_kernel<T, V, I, Group::kCluster>);
      }
    }
  });
  return schedulable ? KernelPath::kCluster : KernelPath::kGeneral;
}

// ------------------------------------------------------------------- launchers ----
// Per-chunk results of every plane, two values per (plane, chunk): each plane is split in chunks
// so that the grid fills the GPU even when there are few planes.
struct Chunked {
  at::Tensor values;
  int64_t chunks, chunk_len;
};

inline Chunked new_chunked(const PlaneShape& g, const at::Tensor& like, int vec = 1) {
  const int64_t chunks = chunks_for(g);
  return {
      at::empty({g.planes() * chunks * 2}, like.options().dtype(stats_dtype(like.scalar_type()))),
      chunks, chunk_length(g, chunks, vec)};
}

// Mean and M2 of every chunk of every plane of v.
template <typename T>
Chunked chunk_moments(const T* v, const PlaneShape& g, const at::Tensor& like) {
  using A = acc_type<T>;
  constexpr int kVec = 16 / sizeof(T);
  const int vec = moments_vec<T>(g, {v});
  Chunked r = new_chunked(g, like, vec);
  const auto stream = at::cuda::getCurrentCUDAStream();
  A* out = r.values.mutable_data_ptr<A>();
  if (vec == kVec) {
    chunk_moments_kernel<T, kVec>
        <<<sum_blocks(g, r.chunks), kReduceThreads, 0, stream>>>(v, g, r.chunks, r.chunk_len, out);
  } else {
    chunk_moments_kernel<T, 1>
        <<<sum_blocks(g, r.chunks), kReduceThreads, 0, stream>>>(v, g, r.chunks, r.chunk_len, out);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return r;
}

// sum(u) and sum(u * (v - center)) of every chunk of every plane (the backward's reductions).
template <typename T>
Chunked partial_sums(const T* u, const T* v, const acc_type<T>* center, const PlaneShape& g,
                     const at::Tensor& like) {
  Chunked r = new_chunked(g, like);
  partial_sums_kernel<T>
      <<<sum_blocks(g, r.chunks), kReduceThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          u, v, center, g, r.chunks, r.chunk_len, r.values.mutable_data_ptr<acc_type<T>>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return r;
}

template <typename T, bool HAS_U>
void launch_apply(const T* u, const T* v, T* out, const at::Tensor& coef, const PlaneShape& g) {
  using A = acc_type<T>;
  constexpr int kVec = 16 / sizeof(T);
  const bool vec_ok = can_vectorize<T>(g, {u, v, out});
  const int64_t vectors = g.planes() * g.p / (vec_ok ? kVec : 1);
  const int64_t blocks =
      std::min<int64_t>(ceil_div(vectors, kReduceThreads), int64_t(num_sms()) * 16);
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto* cf = reinterpret_cast<const Coef<A>*>(coef.const_data_ptr<A>());
  const VectorPlanes planes(g, vec_ok ? kVec : 1, vectors);
  if (vec_ok) {
    apply_kernel<T, kVec, HAS_U>
        <<<blocks, kReduceThreads, 0, stream>>>(u, v, out, cf, planes, vectors);
  } else {
    apply_kernel<T, 1, HAS_U>
        <<<blocks, kReduceThreads, 0, stream>>>(u, v, out, cf, planes, vectors);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor new_coefs(const PlaneShape& g, const at::Tensor& like) {
  return at::empty({g.planes() * 4}, like.options().dtype(stats_dtype(like.scalar_type())));
}

// Style statistics through the general path: (mean, std) of every plane of s.
template <typename T>
void stats_general(const at::Tensor& s, double eps, bool unbiased, at::Tensor& mean,
                   at::Tensor& out, bool want_rstd) {
  using A = acc_type<T>;
  const PlaneShape g = plane_shape(s);
  const Chunked m = chunk_moments<T>(s.const_data_ptr<T>(), g, s);
  finalize_stats_kernel<A>
      <<<per_plane_blocks(g), kReduceThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          m.values.const_data_ptr<A>(), m.chunks, m.chunk_len, g, A(eps), unbiased,
          mean.mutable_data_ptr<A>(), out.mutable_data_ptr<A>(), want_rstd);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Forward AdaIN. `style` defined: its statistics are computed (into s_mean / s_std); else
// s_mean / s_std hold the given statistics.
template <typename T>
void adain_forward(const at::Tensor& x, const at::Tensor& style, at::Tensor& s_mean,
                   at::Tensor& s_std, double alpha, double eps, bool unbiased, at::Tensor& out,
                   at::Tensor& c_mean, at::Tensor& c_rstd) {
  using A = acc_type<T>;
  const PlaneShape g = plane_shape(x);
  const auto stream = at::cuda::getCurrentCUDAStream();
  const T* xp = x.const_data_ptr<T>();
  T* yp = out.mutable_data_ptr<T>();
  FusedShape fs;
  const bool fused =
      choose_path<T, false>(g, aligned16(xp) && aligned16(yp), fs) != KernelPath::kGeneral;
  const int64_t style_batch = s_mean.size(0);
  const bool style_in_kernel =
      style.defined() && fused &&
      style_in_fused_kernel(g.n, g.p, style_batch, style.size(2) * style.size(3),
                            plane_shape(style).layout == Layout::kNHWC, fs.warp);
  if (style.defined() && !style_in_kernel)
    stats_general<T>(style, eps, unbiased, s_mean, s_std, false);

  if (fused) {
    const T* sp = style_in_kernel ? style.const_data_ptr<T>() : nullptr;
    const PlaneShape sg =
        style_in_kernel ? plane_shape(style) : PlaneShape{style_batch, g.c, 0, Layout::kNCHW};
    A *sm = s_mean.mutable_data_ptr<A>(), *ss = s_std.mutable_data_ptr<A>();
    A *cm = c_mean.mutable_data_ptr<A>(), *cr = c_rstd.mutable_data_ptr<A>();
    const PlaneScale<A> scale = plane_scale<A>(g, unbiased);
    with_fused_shape<T>(fs, [&](auto vec, auto items) {
      constexpr int V = decltype(vec)::value, I = decltype(items)::value;
      if (fs.warp) {
        adain_fused_forward_kernel<T, V, I, Group::kWarp>
            <<<ceil_div(g.planes(), kWarpPlanesPerBlock), fs.threads, 0, stream>>>(
                xp, yp, g, sp, sg, sm, ss, cm, cr, A(alpha), A(eps), unbiased, scale, fs.slice);
      } else if (fs.cluster == 1) {
        adain_fused_forward_kernel<T, V, I, Group::kBlock><<<g.planes(), fs.threads, 0, stream>>>(
            xp, yp, g, sp, sg, sm, ss, cm, cr, A(alpha), A(eps), unbiased, scale, fs.slice);
      } else if constexpr (cluster_fits<T>(V, I)) {  // cluster_shape picks no other
        ClusterLaunch launch(g.planes() * fs.cluster, fs.threads, fs.cluster, stream);
        C10_CUDA_CHECK(cudaLaunchKernelEx(
            &launch.config, adain_fused_forward_kernel<T, V, I, Group::kCluster>, xp, yp, g, sp, sg,
            sm, ss, cm, cr, A(alpha), A(eps), unbiased, scale, fs.slice));
      }
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const Chunked m = chunk_moments<T>(xp, g, x);
  finalize_stats_kernel<A><<<per_plane_blocks(g), kReduceThreads, 0, stream>>>(
      m.values.const_data_ptr<A>(), m.chunks, m.chunk_len, g, A(eps), unbiased,
      c_mean.mutable_data_ptr<A>(), c_rstd.mutable_data_ptr<A>(), true);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor coef = new_coefs(g, x);
  adain_coef_kernel<A><<<per_plane_blocks(g), kReduceThreads, 0, stream>>>(
      c_mean.const_data_ptr<A>(), c_rstd.const_data_ptr<A>(), s_mean.const_data_ptr<A>(),
      s_std.const_data_ptr<A>(), style_batch, g, A(alpha),
      reinterpret_cast<Coef<A>*>(coef.mutable_data_ptr<A>()));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  launch_apply<T, false>(nullptr, xp, yp, coef, g);
}

// ------------------------------------------------------------------ op entries ----
// (mean, std) of every plane of x (kernel layout) into two (N, C) rows of the packed statistics.
void stats_cuda(const at::Tensor& x, double eps, bool unbiased, at::Tensor& mean,
                at::Tensor& std_) {
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "channel_stats_cuda",
      [&] { stats_general<scalar_t>(x, eps, unbiased, mean, std_, false); });
}

at::Tensor channel_stats_cuda(const at::Tensor& x, double eps, bool unbiased) {
  const c10::cuda::CUDAGuard guard(x.device());
  StatsCall call = setup_channel_stats(x, eps);
  if (!call.empty) stats_cuda(call.x, eps, unbiased, call.mean, call.std_);
  return call.stats;
}

at::Tensor channel_stats_backward_cuda(const at::Tensor& grad_stats, const at::Tensor& x,
                                       const at::Tensor& stats, bool unbiased) {
  const c10::cuda::CUDAGuard guard(x.device());
  StatsBackwardCall call = setup_channel_stats_backward(grad_stats, x, stats);
  if (call.empty) return call.grad_x;
  const PlaneShape g = plane_shape(call.x);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, call.x.scalar_type(), "stats_backward_cuda", [&] {
        using A = acc_type<scalar_t>;
        at::Tensor coef = new_coefs(g, call.x);
        stats_backward_coef_kernel<A>
            <<<per_plane_blocks(g), kReduceThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
                call.grad_mean.const_data_ptr<A>(), call.grad_std.const_data_ptr<A>(),
                call.mean.const_data_ptr<A>(), call.std_.const_data_ptr<A>(), g, unbiased,
                reinterpret_cast<Coef<A>*>(coef.mutable_data_ptr<A>()));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        launch_apply<scalar_t, false>(nullptr, call.x.const_data_ptr<scalar_t>(),
                                      call.grad_x.mutable_data_ptr<scalar_t>(), coef, g);
      });
  return call.grad_x;
}

// The forward kernels once the set-up is done (adain_forward computes the style statistics too).
void adain_forward_cuda(ForwardCall& call, double alpha, double eps, bool unbiased) {
  if (call.empty) {
    if (call.style.defined() && call.style.numel() > 0) {
      stats_cuda(call.style, eps, unbiased, call.style_mean, call.style_std);
    }
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, call.x.scalar_type(), "adain_cuda", [&] {
        adain_forward<scalar_t>(call.x, call.style, call.style_mean, call.style_std, alpha, eps,
                                unbiased, call.out, call.c_mean, call.c_rstd);
      });
}

std::tuple<at::Tensor, at::Tensor> adain_from_stats_cuda(const at::Tensor& content,
                                                         const at::Tensor& style_mean,
                                                         const at::Tensor& style_std, double alpha,
                                                         double eps, bool unbiased) {
  const c10::cuda::CUDAGuard guard(content.device());
  ForwardCall call = setup_adain_from_stats(content, style_mean, style_std, alpha, eps);
  adain_forward_cuda(call, alpha, eps, unbiased);
  return {call.out, call.stats};
}

std::tuple<at::Tensor, at::Tensor> adain_cuda(const at::Tensor& content, const at::Tensor& style,
                                              double alpha, double eps, bool unbiased) {
  const c10::cuda::CUDAGuard guard(content.device());
  ForwardCall call = setup_adain(content, style, alpha, eps);
  adain_forward_cuda(call, alpha, eps, unbiased);
  return {call.out, call.stats};
}

std::tuple<at::Tensor, at::Tensor> adain_backward_cuda(const at::Tensor& grad_out,
                                                       const at::Tensor& content,
                                                       const at::Tensor& content_stats,
                                                       const at::Tensor& style_std, double alpha,
                                                       bool unbiased) {
  const c10::cuda::CUDAGuard guard(content.device());
  BackwardCall call = setup_adain_backward(grad_out, content, content_stats, style_std);
  if (call.empty) return {call.grad_x, call.grad_stats};
  const PlaneShape g = plane_shape(call.x);
  const at::Tensor &cm = call.c_mean, &cr = call.c_rstd, &ss = call.style_std;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, call.x.scalar_type(), "adain_backward_cuda", [&] {
        using T = scalar_t;
        using A = acc_type<T>;
        const auto stream = at::cuda::getCurrentCUDAStream();
        const T *xp = call.x.const_data_ptr<T>(), *gp = call.grad_out.const_data_ptr<T>();
        T* op = call.grad_x.mutable_data_ptr<T>();
        FusedShape fs;
        const bool aligned = aligned16(xp) && aligned16(gp) && aligned16(op);
        const bool fused = choose_path<T, true>(g, aligned, fs) != KernelPath::kGeneral;
        if (fused) {
          const A *cmp = cm.const_data_ptr<A>(), *crp = cr.const_data_ptr<A>(),
                  *ssp = ss.const_data_ptr<A>();
          A *gm = call.g_mean.mutable_data_ptr<A>(), *gs = call.g_std.mutable_data_ptr<A>();
          const PlaneScale<A> scale = plane_scale<A>(g, unbiased);
          with_fused_shape<T>(fs, [&](auto vec, auto items) {
            constexpr int V = decltype(vec)::value, I = decltype(items)::value;
            if constexpr (V * I <= kBwdMaxPerThread) {
              if (fs.warp) {
                adain_fused_backward_kernel<T, V, I, Group::kWarp>
                    <<<ceil_div(g.planes(), kWarpPlanesPerBlock), fs.threads, 0, stream>>>(
                        gp, xp, op, g, cmp, crp, ssp, ss.size(0), A(alpha), scale, gm, gs,
                        fs.slice);
              } else if (fs.cluster == 1) {
                adain_fused_backward_kernel<T, V, I, Group::kBlock>
                    <<<g.planes(), fs.threads, 0, stream>>>(gp, xp, op, g, cmp, crp, ssp,
                                                            ss.size(0), A(alpha), scale, gm, gs,
                                                            fs.slice);
              } else if constexpr (cluster_fits<T>(V, I)) {  // cluster_shape picks no other
                ClusterLaunch launch(g.planes() * fs.cluster, fs.threads, fs.cluster, stream);
                C10_CUDA_CHECK(cudaLaunchKernelEx(
                    &launch.config, adain_fused_backward_kernel<T, V, I, Group::kCluster>, gp, xp,
                    op, g, cmp, crp, ssp, ss.size(0), A(alpha), scale, gm, gs, fs.slice));
              }
            }
          });
          C10_CUDA_KERNEL_LAUNCH_CHECK();
          return;
        }
        const Chunked sums = partial_sums<T>(gp, xp, cm.const_data_ptr<A>(), g, call.x);
        at::Tensor coef = new_coefs(g, call.x);
        adain_backward_coef_kernel<A><<<per_plane_blocks(g), kReduceThreads, 0, stream>>>(
            sums.values.const_data_ptr<A>(), sums.chunks, cm.const_data_ptr<A>(),
            cr.const_data_ptr<A>(), ss.const_data_ptr<A>(), ss.size(0), g, A(alpha), unbiased,
            reinterpret_cast<Coef<A>*>(coef.mutable_data_ptr<A>()),
            call.g_mean.mutable_data_ptr<A>(), call.g_std.mutable_data_ptr<A>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        launch_apply<T, true>(gp, xp, op, coef, g);
      });
  return {call.grad_x, call.grad_stats};
}

// The path adain (backward: adain_backward) takes for this content, in the kernel layout the op
// gives it; the forward's output and the backward's gradients are allocated like the content, so
// their alignment is the content's.
std::string kernel_path_cuda(const at::Tensor& content, bool backward) {
  const c10::cuda::CUDAGuard guard(content.device());
  const at::Tensor x = to_kernel_layout(content);
  if (x.numel() == 0) return "none";
  const PlaneShape g = plane_shape(x);
  KernelPath path = KernelPath::kGeneral;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "kernel_path", [&] {
    FusedShape fs;
    const bool aligned = aligned16(x.const_data_ptr());
    path = backward ? choose_path<scalar_t, true>(g, aligned, fs)
                    : choose_path<scalar_t, false>(g, aligned, fs);
  });
  return kernel_path_name(path);
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CUDA, m) {
  m.impl("kernel_path", &kernel_path_cuda);
  m.impl("channel_stats", &channel_stats_cuda);
  m.impl("channel_stats_backward", &channel_stats_backward_cuda);
  m.impl("adain", &adain_cuda);
  m.impl("adain_from_stats", &adain_from_stats_cuda);
  m.impl("adain_backward", &adain_backward_cuda);
}

}  // namespace adain
