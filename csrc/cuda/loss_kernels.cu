// CUDA implementation of the fused training losses (see csrc/loss_plan.h).
//
// Forward, one launch whatever the number of layers (loss_forward_kernel): a work list over the
// plane chunks of every input and target map of every layer, each chunk's mean and M2 (16-byte
// loads where every map allows them; the blocks of the last input also accumulate
// (x - content_target)^2, so the content loss costs no extra pass over relu4_1), and the last
// block to finish puts the statistics of every plane into the packed `stats` (each target's
// once) and sums the two scalars in a fixed order (bit-identical from run to run).
// Backward, one launch: a multi-tensor pointwise pass writing every layer's gradient with 16-byte
// loads and stores, each plane's coefficients computed from the saved statistics where used.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "../loss_plan.h"
#include "../op_setup.h"
#include "../plane.h"
#include "device_blocks.cuh"

namespace adain {
namespace {

using namespace cuda;

// Layers per call (VGG's relu1_1..relu5_1 are five); the work lists are kernel parameters.
constexpr int kMaxLossLayers = 8;

template <typename T>
struct SumJob {  // partial sums over one input or target map
  const T* v;
  const T* content_target;  // set for the last input when there is a content term
  PlaneShape g;
  int64_t block_begin, blocks, chunks, chunk_len;
  acc_type<T>* sums;          // per (plane, chunk): mean and M2 (plane_chunk_moments)
  acc_type<T>* content_sums;  // per block: sum of (v - content_target)^2
};

template <typename T>
struct SumJobs {
  SumJob<T> job[2 * kMaxLossLayers];
  int count;
};

template <typename T>
struct LossLayerMeta {
  int64_t offset, planes, target_planes, channels;
  int in_job, target_job;           // target_job < 0: the target is given as statistics ...
  const acc_type<T>* target_stats;  // ... (2, Nt, C) [mean; std], copied into `stats`
  acc_type<T> weight;
};

template <typename T>
struct LossMeta {
  LossLayerMeta<T> layer[kMaxLossLayers];
  int count;
  int content_job;  // < 0: no content term
  int64_t content_numel;
};

template <typename T>
__device__ void plane_stats(const SumJob<T>& job, int64_t plane, acc_type<T> eps, bool unbiased,
                            acc_type<T>& mean, acc_type<T>& std_) {
  using A = acc_type<T>;
  const Moments<A> m = total_moments(job.sums, plane, job.chunks, job.chunk_len, job.g.p);
  mean = m.mean;
  std_ = sqrt(variance_of(m, job.g.p, unbiased) + eps);
}

// Statistics of every plane into the packed `stats` (each target's once, read by every thread),
// and the two scalars, summed in a fixed order: run by one block once every chunk is reduced.
template <typename T>
__device__ __noinline__ void finalize_losses(const SumJobs<T>& jobs, const LossMeta<T>& meta,
                                             acc_type<T> eps, bool unbiased,
                                             acc_type<T>* __restrict__ stats,
                                             acc_type<T>* __restrict__ style_out,
                                             acc_type<T>* __restrict__ content_out) {
  using A = acc_type<T>;
  A total[2] = {0, 0};  // style, content
  for (int l = 0; l < meta.count; ++l) {
    const LossLayerMeta<T>& layer = meta.layer[l];
    A* mean = stats + layer.offset;
    A* std_ = mean + layer.planes;
    A* t_mean = std_ + layer.planes;
    A* t_std = t_mean + layer.target_planes;
    for (int64_t p = threadIdx.x; p < layer.target_planes; p += blockDim.x) {
      if (layer.target_job >= 0) {
        plane_stats(jobs.job[layer.target_job], p, eps, unbiased, t_mean[p], t_std[p]);
      } else {
        t_mean[p] = layer.target_stats[p], t_std[p] = layer.target_stats[layer.target_planes + p];
      }
    }
    __syncthreads();
    A sum = 0;
    for (int64_t p = threadIdx.x; p < layer.planes; p += blockDim.x) {
      A m, s;
      plane_stats(jobs.job[layer.in_job], p, eps, unbiased, m, s);
      mean[p] = m, std_[p] = s;
      const int64_t tp = layer.target_planes == layer.planes ? p : p % layer.channels;
      const A tm = t_mean[tp], ts = t_std[tp];
      sum += (m - tm) * (m - tm) + (s - ts) * (s - ts);
    }
    total[0] += layer.weight * sum / A(layer.planes);
  }
  if (meta.content_job >= 0) {
    const SumJob<T>& job = jobs.job[meta.content_job];
    for (int64_t b = threadIdx.x; b < job.blocks; b += blockDim.x) total[1] += job.content_sums[b];
  }
  block_sum<2>(total);
  if (threadIdx.x == 0) {
    *style_out = total[0];
    *content_out = meta.content_job >= 0 ? total[1] / A(meta.content_numel) : A(0);
  }
}

// The whole forward in one launch: each block reduces its chunk of a map (VEC > 1: every job's
// maps take 16-byte loads; launch_config.cuh, moments_vec), and the last block to finish, known
// from a counter (`done`, zeroed per call), finalizes. The fences make every block's results
// visible before it is counted; the finalizing order is fixed, so results are bit-identical.
template <typename T, int VEC>
__global__ void __launch_bounds__(kReduceThreads)
    loss_forward_kernel(const __grid_constant__ SumJobs<T> jobs,
                        const __grid_constant__ LossMeta<T> meta, acc_type<T> eps, bool unbiased,
                        acc_type<T>* __restrict__ stats, acc_type<T>* __restrict__ style_out,
                        acc_type<T>* __restrict__ content_out, unsigned* __restrict__ done) {
  int j = 0;
  while (j + 1 < jobs.count && blockIdx.x >= jobs.job[j + 1].block_begin) ++j;
  const SumJob<T>& job = jobs.job[j];
  const int64_t b = blockIdx.x - job.block_begin;
  if (b >= job.blocks) {
    // no chunk: the one block launched for maps with no plane, which only finalizes
  } else if (job.content_target != nullptr) {
    const auto sq = plane_chunk_moments<T, true, VEC>(job.v, job.content_target, job.g, job.chunks,
                                                      job.chunk_len, b, job.sums);
    if (threadIdx.x == 0) job.content_sums[b] = sq;
  } else {
    plane_chunk_moments<T, false, VEC>(job.v, nullptr, job.g, job.chunks, job.chunk_len, b,
                                       job.sums);
  }
  __shared__ bool last;
  __threadfence();  // this thread's results (the writers': thread 0, or a tile's first row)
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(done, 1u) + 1 == gridDim.x;
  __syncthreads();
  if (!last) return;
  __threadfence();  // the other blocks' results, counted before `done` reached the grid size
  finalize_losses(jobs, meta, eps, unbiased, stats, style_out, content_out);
}

// ------------------------------------------------------------------- backward ----
// How one layer's gradient is formed from the saved statistics, with the divisions done on the
// host (a device division brings a slow-path subroutine into the pointwise loop).
template <typename T>
struct CoefLayer {
  int64_t planes, target_planes, channels, stats_offset;
  acc_type<T> style_scale;                    // 2 * weight / planes (0: no style term)
  acc_type<T> inv_p, inv_dof, content_scale;  // 1/P, 1/dof, 2/numel (0: no content term)
};

// Per plane: d/dx of w * mean((mu - mu_t)^2 + (sigma - sigma_t)^2) is b * (x - mu) + k
// (docs/numerics.md, "Losses"); the content term c * (x - t) becomes a * t with a = -c, plus c
// folded into b and k.
template <typename T>
__device__ __forceinline__ Coef<acc_type<T>> loss_coef(const CoefLayer<T>& layer, int64_t plane,
                                                       const acc_type<T>* __restrict__ stats,
                                                       acc_type<T> grad_style,
                                                       acc_type<T> grad_content) {
  using A = acc_type<T>;
  Coef<A> cf{0, 0, 0, 0};
  if (layer.style_scale != A(0)) {
    const A* mean = stats + layer.stats_offset;
    const A* std_ = mean + layer.planes;
    const A* t_mean = std_ + layer.planes;
    const A* t_std = t_mean + layer.target_planes;
    // 32-bit: a 64-bit modulo is a subroutine call (planes < 2^31: losses_backward_cuda)
    const int64_t tp = layer.target_planes == layer.planes
                           ? plane
                           : int64_t(uint32_t(plane) % uint32_t(layer.channels));
    const A scale = grad_style * layer.style_scale;
    const A gm = scale * (mean[plane] - t_mean[tp]), gs = scale * (std_[plane] - t_std[tp]);
    cf = Coef<A>{0, gs * layer.inv_dof * reciprocal(std_[plane]), mean[plane], gm * layer.inv_p};
  }
  if (layer.content_scale != A(0)) {
    const A c = grad_content * layer.content_scale;
    cf = Coef<A>{-c, cf.b + c, cf.m, cf.k + c * cf.m};
  }
  return cf;
}

template <typename T>
struct ApplyJob {
  const T* u;  // content target, or nullptr
  const T* v;
  T* out;
  CoefLayer<T> layer;
  PlaneShape g;
  int64_t vectors, block_begin, blocks;
  VectorPlanes planes;  // set once the vector width is known
};

template <typename T>
struct ApplyJobs {
  ApplyJob<T> job[kMaxLossLayers];
  int count;
  const acc_type<T>* stats;
  const acc_type<T>* grad_style;  // 0-dim
  const acc_type<T>* grad_content;
};

template <typename T, int VEC>
__global__ void __launch_bounds__(kReduceThreads)
    loss_apply_kernel(const __grid_constant__ ApplyJobs<T> jobs) {
  int j = 0;
  while (j + 1 < jobs.count && blockIdx.x >= jobs.job[j + 1].block_begin) ++j;
  const ApplyJob<T>& job = jobs.job[j];
  const int64_t stride = job.blocks * int64_t(blockDim.x);
  const acc_type<T> gs = *jobs.grad_style, gc = *jobs.grad_content;
  const auto coef_of = [&](int64_t plane) {
    return loss_coef(job.layer, plane, jobs.stats, gs, gc);
  };
  for (int64_t i = (blockIdx.x - job.block_begin) * int64_t(blockDim.x) + threadIdx.x;
       i < job.vectors; i += stride) {
    if (job.u != nullptr) {
      apply_vector<T, VEC, true>(job.u, job.v, job.out, coef_of, job.planes, i);
    } else {
      apply_vector<T, VEC, false>(nullptr, job.v, job.out, coef_of, job.planes, i);
    }
  }
}

// ----------------------------------------------------------------- op entries ----

std::tuple<at::Tensor, at::Tensor, at::Tensor> losses_cuda(
    at::TensorList inputs_in, at::TensorList targets_in,
    const std::optional<at::Tensor>& content_target, at::ArrayRef<double> weights, double eps,
    bool unbiased) {
  const std::vector<at::Tensor> inputs_v = inputs_in.vec(), targets_v = targets_in.vec();
  const LossPlan plan = plan_losses(inputs_v, targets_v, content_target, weights.vec(), eps);
  TORCH_CHECK(inputs_v.size() <= size_t(kMaxLossLayers), "at most ", kMaxLossLayers,
              " layers per call on CUDA, got ", inputs_v.size(), "; sum several calls instead");
  const c10::cuda::CUDAGuard guard(inputs_v[0].device());
  const auto opts = inputs_v[0].options().dtype(stats_dtype(inputs_v[0].scalar_type()));
  at::Tensor stats = at::empty({plan.stats_numel}, opts);
  at::Tensor style = at::empty({}, opts), content = at::empty({}, opts);
  std::vector<at::Tensor> keep;  // layouts, sums and workspaces alive until the launches are queued
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, inputs_v[0].scalar_type(), "losses_cuda", [&] {
        using T = scalar_t;
        using A = acc_type<T>;
        SumJobs<T> jobs{};
        LossMeta<T> meta{};
        meta.content_job = -1;
        int64_t blocks = 0;
        // 16-byte loads if every map allows them (the kernel has one vector width).
        constexpr int kVec = 16 / sizeof(T);
        bool vec_ok = true;
        auto add_job = [&](at::Tensor x, const T* ct) {  // x by value: `keep` may reallocate
          SumJob<T>& job = jobs.job[jobs.count];
          job.g = plane_shape(x);
          job.v = x.const_data_ptr<T>();
          job.chunks = chunks_for(job.g);
          vec_ok = vec_ok && moments_vec<T>(job.g, {job.v, ct}) == kVec;
          job.chunk_len = ceil_div(job.g.p, job.chunks);
          job.block_begin = blocks;
          job.blocks = sum_blocks(job.g, job.chunks);
          blocks += job.blocks;
          keep.push_back(at::empty({job.g.planes() * job.chunks * 2}, opts));
          job.sums = keep.back().mutable_data_ptr<A>();
          if (ct != nullptr) {
            job.content_target = ct;
            keep.push_back(at::empty({job.blocks}, opts));
            job.content_sums = keep.back().mutable_data_ptr<A>();
          }
          return jobs.count++;
        };
        for (size_t l = 0; l < inputs_v.size(); ++l) {
          keep.push_back(to_kernel_layout(inputs_v[l]));
          const at::Tensor x = keep.back();
          const bool content_here = content_target.has_value() && l + 1 == inputs_v.size();
          if (content_here) keep.push_back(in_layout_of(*content_target, x));
          const int in_job = add_job(x, content_here ? keep.back().const_data_ptr<T>() : nullptr);
          if (content_here) meta.content_job = in_job, meta.content_numel = x.numel();
          if (l >= plan.layers.size()) continue;
          const LossLayer& layer = plan.layers[l];
          int target_job = -1;
          const A* target_stats = nullptr;
          if (layer.target_is_map) {
            keep.push_back(to_kernel_layout(targets_v[l]));
            target_job = add_job(keep.back(), nullptr);
          } else {  // the finalize copies them into `stats`
            keep.push_back(targets_v[l].to(opts.dtype()).contiguous());
            target_stats = keep.back().const_data_ptr<A>();
          }
          meta.layer[meta.count++] =
              LossLayerMeta<T>{layer.offset, layer.planes, layer.target_planes, layer.channels,
                               in_job,       target_job,   target_stats,        A(weights[l])};
        }
        if (vec_ok) {  // whole vectors in every chunk
          for (int j = 0; j < jobs.count; ++j)
            jobs.job[j].chunk_len = chunk_length(jobs.job[j].g, jobs.job[j].chunks, kVec);
        }
        const auto stream = at::cuda::getCurrentCUDAStream();
        // Blocks done, zeroed by a memset on the stream (at::zeros would launch a fill kernel):
        // the loss forward stays one kernel launch.
        keep.push_back(at::empty({1}, opts.dtype(at::kInt)));
        auto* done = reinterpret_cast<unsigned*>(keep.back().mutable_data_ptr<int>());
        C10_CUDA_CHECK(cudaMemsetAsync(done, 0, sizeof(unsigned), stream));
        A *st = stats.mutable_data_ptr<A>(), *so = style.mutable_data_ptr<A>(),
          *co = content.mutable_data_ptr<A>();
        blocks = std::max<int64_t>(blocks, 1);  // the finalizing block, even without planes
        if (vec_ok) {
          loss_forward_kernel<T, kVec><<<blocks, kReduceThreads, 0, stream>>>(
              jobs, meta, A(eps), unbiased, st, so, co, done);
        } else {
          loss_forward_kernel<T, 1><<<blocks, kReduceThreads, 0, stream>>>(
              jobs, meta, A(eps), unbiased, st, so, co, done);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return {style, content, stats};
}

std::vector<at::Tensor> losses_backward_cuda(const at::Tensor& grad_style,
                                             const at::Tensor& grad_content,
                                             at::TensorList inputs_in, at::TensorList targets_in,
                                             const std::optional<at::Tensor>& content_target,
                                             const at::Tensor& stats, at::ArrayRef<double> weights,
                                             bool unbiased) {
  const std::vector<at::Tensor> inputs_v = inputs_in.vec(), targets_v = targets_in.vec();
  const LossPlan plan = plan_losses(inputs_v, targets_v, content_target, weights.vec(), 1.0);
  check_loss_backward(plan, inputs_v[0], stats, grad_style, grad_content);
  TORCH_CHECK(inputs_v.size() <= size_t(kMaxLossLayers), "at most ", kMaxLossLayers,
              " layers per call on CUDA");
  const c10::cuda::CUDAGuard guard(inputs_v[0].device());
  const auto sdt = stats_dtype(inputs_v[0].scalar_type());
  const at::Tensor gs = grad_style.to(sdt).contiguous(), gc = grad_content.to(sdt).contiguous();
  std::vector<at::Tensor> grads, keep;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, inputs_v[0].scalar_type(), "losses_backward_cuda", [&] {
        using T = scalar_t;
        using A = acc_type<T>;
        ApplyJobs<T> jobs{};
        jobs.stats = stats.const_data_ptr<A>();
        jobs.grad_style = gs.const_data_ptr<A>();
        jobs.grad_content = gc.const_data_ptr<A>();
        bool vec_ok = true;
        for (size_t l = 0; l < inputs_v.size(); ++l) {
          keep.push_back(to_kernel_layout(inputs_v[l]));
          const at::Tensor x = keep.back();
          const bool style = l < plan.layers.size();
          const bool content = content_target.has_value() && l + 1 == inputs_v.size();
          ApplyJob<T>& job = jobs.job[jobs.count++];
          const int64_t planes = x.size(0) * x.size(1), p = x.size(2) * x.size(3);
          TORCH_CHECK(planes <= INT32_MAX, "layer ", l, ": at most 2^31 planes (N * C), got ",
                      planes);
          job.layer = CoefLayer<T>{planes,
                                   style ? plan.layers[l].target_planes : 0,
                                   x.size(1),
                                   style ? plan.layers[l].offset : 0,
                                   A(style ? 2.0 * weights[l] / double(planes) : 0.0),
                                   A(1.0 / double(p)),
                                   A(1.0 / double(dof(p, unbiased))),
                                   A(content ? 2.0 / double(x.numel()) : 0.0)};
          grads.push_back(at::empty_like(x));
          job.v = x.const_data_ptr<T>();
          job.out = grads.back().mutable_data_ptr<T>();
          job.g = plane_shape(x);
          if (content) {
            keep.push_back(in_layout_of(*content_target, x));
            job.u = keep.back().const_data_ptr<T>();
          }
          vec_ok = vec_ok && can_vectorize<T>(job.g, {job.u, job.v, job.out});
        }
        const int vec = vec_ok ? 16 / sizeof(T) : 1;
        int64_t blocks = 0;
        for (int j = 0; j < jobs.count; ++j) {
          ApplyJob<T>& job = jobs.job[j];
          job.vectors = job.g.planes() * job.g.p / vec;
          job.planes = VectorPlanes(job.g, vec, job.vectors);
          job.block_begin = blocks;
          job.blocks = std::max<int64_t>(
              1, std::min<int64_t>(ceil_div(job.vectors, kReduceThreads), int64_t(num_sms()) * 8));
          blocks += job.blocks;
        }
        const auto stream = at::cuda::getCurrentCUDAStream();
        if (vec_ok) {
          loss_apply_kernel<T, 16 / sizeof(T)><<<blocks, kReduceThreads, 0, stream>>>(jobs);
        } else {
          loss_apply_kernel<T, 1><<<blocks, kReduceThreads, 0, stream>>>(jobs);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CUDA, m) {
  m.impl("losses", &losses_cuda);
  m.impl("losses_backward", &losses_backward_cuda);
}

}  // namespace adain
