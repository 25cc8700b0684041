// What every operator does before its kernels, shared by the CPU and CUDA entry points: check the
// arguments (messages name the argument at fault), bring the inputs into a layout the kernels read
// (contiguous NCHW or channels_last) and allocate the outputs. A call whose inputs hold no element
// to compute comes back with `empty` set and its outputs already final.
#pragma once

#include <ATen/ATen.h>

#include "plane.h"

namespace adain {

// The largest eps the ops take: the statistics are float32, and (var + eps) must stay finite there.
constexpr double kEpsMax = 1e30;
// eps in (0, kEpsMax], else a ValueError naming it.
void check_eps(double eps);

// Returns x itself when a kernel can read it directly, else an NCHW-contiguous copy.
at::Tensor to_kernel_layout(const at::Tensor& x);
// `t` (same shape as the kernel-layout `x`) in x's layout, so both walk with one index.
at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& x);

struct StatsCall {
  at::Tensor x;           // kernel layout
  at::Tensor stats;       // (2, N, C) output
  at::Tensor mean, std_;  // its rows
  bool empty;
};
StatsCall setup_channel_stats(const at::Tensor& x, double eps);

struct StatsBackwardCall {
  at::Tensor x, grad_mean, grad_std, mean, std_;  // contiguous statistics in the stats dtype
  at::Tensor grad_x;                              // output, x's layout
  bool empty;
};
StatsBackwardCall setup_channel_stats_backward(const at::Tensor& grad_stats, const at::Tensor& x,
                                               const at::Tensor& stats);

// Forward AdaIN towards a style map (adain) or given statistics (adain_from_stats).
struct ForwardCall {
  at::Tensor x, style;               // kernel layout; style undefined for adain_from_stats
  at::Tensor out, stats;             // outputs: the map and the packed statistics (schemas.cpp)
  at::Tensor c_mean, c_rstd;         // views of `stats`
  at::Tensor style_mean, style_std;  // views of `stats` (adain) or the given statistics
  bool empty;  // no content element: c_mean = 0, c_rstd = 1/sqrt(eps); style statistics still due
};
ForwardCall setup_adain(const at::Tensor& content, const at::Tensor& style, double alpha,
                        double eps);
ForwardCall setup_adain_from_stats(const at::Tensor& content, const at::Tensor& style_mean,
                                   const at::Tensor& style_std, double alpha, double eps);

struct BackwardCall {
  at::Tensor x, grad_out;                // kernel layout (grad_out in x's)
  at::Tensor c_mean, c_rstd, style_std;  // contiguous
  at::Tensor grad_x, grad_stats;         // outputs: grad_stats (2, N, C) ...
  at::Tensor g_mean, g_std;              // ... and its rows
  bool empty;
};
BackwardCall setup_adain_backward(const at::Tensor& grad_out, const at::Tensor& content,
                                  const at::Tensor& content_stats, const at::Tensor& style_std);

}  // namespace adain
