// CPU implementations of the AdaIN operators (building blocks in plane_kernels.h). Each task
// reduces its planes and applies the result while they are still in cache.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "../op_setup.h"
#include "../plane.h"
#include "plane_kernels.h"

namespace adain {
namespace {

using namespace cpu;

// (mean, std) of every plane of x (kernel layout) into two (N, C) rows of the packed statistics.
void stats_cpu(const at::Tensor& x, double eps, bool unbiased, at::Tensor& mean, at::Tensor& std_) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "channel_stats_cpu",
                                  [&] { stats_into<scalar_t>(x, eps, unbiased, mean, std_); });
}

at::Tensor channel_stats_cpu(const at::Tensor& x, double eps, bool unbiased) {
  StatsCall call = setup_channel_stats(x, eps);
  if (!call.empty) stats_cpu(call.x, eps, unbiased, call.mean, call.std_);
  return call.stats;
}

at::Tensor channel_stats_backward_cpu(const at::Tensor& grad_stats, const at::Tensor& x,
                                      const at::Tensor& stats, bool unbiased) {
  StatsBackwardCall call = setup_channel_stats_backward(grad_stats, x, stats);
  if (call.empty) return call.grad_x;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, call.x.scalar_type(), "stats_backward_cpu", [&] {
        stats_backward_into<scalar_t>(call.grad_mean, call.grad_std, call.x, call.mean, call.std_,
                                      unbiased, call.grad_x);
      });
  return call.grad_x;
}

// AdaIN of `x` towards per-plane style statistics; writes out and the content statistics.
template <typename scalar_t, typename acc_t>
void adain_into(const at::Tensor& x, const acc_t* s_mean, const acc_t* s_std, int64_t style_batch,
                double alpha, double eps, bool unbiased, at::Tensor& out, at::Tensor& c_mean,
                at::Tensor& c_rstd) {
  const PlaneShape g = plane_shape(x);
  acc_t* cm = c_mean.mutable_data_ptr<acc_t>();
  acc_t* cr = c_rstd.mutable_data_ptr<acc_t>();
  reduce_apply<scalar_t, false>(
      nullptr, x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), g, PlaneMean{},
      [&](int64_t plane, const Sums& s, double shift) {
        const auto [mu, var] = mean_var(s, shift, g.p, unbiased);
        const double rstd = 1.0 / std::sqrt(var + eps);
        const int64_t sp = style_batch == 1 ? plane % g.c : plane;
        // y = alpha * (A (x - mu) + mu_s) + (1 - alpha) x = (alpha A + 1 - alpha)(x - mu) + k
        const double A = static_cast<double>(s_std[sp]) * rstd;
        cm[plane] = static_cast<acc_t>(mu);
        cr[plane] = static_cast<acc_t>(rstd);
        return Coef<acc_t>{0, static_cast<acc_t>(alpha * A + (1.0 - alpha)), static_cast<acc_t>(mu),
                           static_cast<acc_t>(alpha * s_mean[sp] + (1.0 - alpha) * mu)};
      });
}

// The forward kernels once the set-up is done: style statistics first when a style map is given.
void adain_forward_cpu(ForwardCall& call, double alpha, double eps, bool unbiased) {
  if (call.style.defined() && call.style_mean.numel() > 0) {
    stats_cpu(call.style, eps, unbiased, call.style_mean, call.style_std);
  }
  if (call.empty) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, call.x.scalar_type(), "adain_cpu", [&] {
    using acc_t = acc_of<scalar_t>;
    adain_into<scalar_t, acc_t>(call.x, call.style_mean.const_data_ptr<acc_t>(),
                                call.style_std.const_data_ptr<acc_t>(), call.style_mean.size(0),
                                alpha, eps, unbiased, call.out, call.c_mean, call.c_rstd);
  });
}

std::tuple<at::Tensor, at::Tensor> adain_from_stats_cpu(const at::Tensor& content,
                                                        const at::Tensor& style_mean,
                                                        const at::Tensor& style_std, double alpha,
                                                        double eps, bool unbiased) {
  ForwardCall call = setup_adain_from_stats(content, style_mean, style_std, alpha, eps);
  adain_forward_cpu(call, alpha, eps, unbiased);
  return {call.out, call.stats};
}

std::tuple<at::Tensor, at::Tensor> adain_cpu(const at::Tensor& content, const at::Tensor& style,
                                             double alpha, double eps, bool unbiased) {
  ForwardCall call = setup_adain(content, style, alpha, eps);
  adain_forward_cpu(call, alpha, eps, unbiased);
  return {call.out, call.stats};
}

std::tuple<at::Tensor, at::Tensor> adain_backward_cpu(const at::Tensor& grad_out,
                                                      const at::Tensor& content,
                                                      const at::Tensor& content_stats,
                                                      const at::Tensor& style_std, double alpha,
                                                      bool unbiased) {
  BackwardCall call = setup_adain_backward(grad_out, content, content_stats, style_std);
  if (call.empty) return {call.grad_x, call.grad_stats};
  const PlaneShape g = plane_shape(call.x);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, call.x.scalar_type(), "adain_backward_cpu", [&] {
        using acc_t = acc_of<scalar_t>;
        const acc_t *cm = call.c_mean.const_data_ptr<acc_t>(),
                    *cr = call.c_rstd.const_data_ptr<acc_t>();
        const acc_t* sstd = call.style_std.const_data_ptr<acc_t>();
        const int64_t style_batch = call.style_std.size(0);
        acc_t *gm = call.g_mean.mutable_data_ptr<acc_t>(),
              *gs = call.g_std.mutable_data_ptr<acc_t>();
        const double p = static_cast<double>(g.p), d = static_cast<double>(dof(g.p, unbiased));
        reduce_apply<scalar_t, true>(
            call.grad_out.const_data_ptr<scalar_t>(), call.x.const_data_ptr<scalar_t>(),
            call.grad_x.mutable_data_ptr<scalar_t>(), g,
            [&](int64_t plane) { return static_cast<double>(cm[plane]); },
            [&](int64_t plane, const Sums& s, double mu) {
              // S1 = sum(dy), S2 = sum(dy * xhat); see docs/numerics.md, "Backward".
              const double r = cr[plane];
              const double s1 = s.q1, s2 = s.q2 * r;
              const double A =
                  static_cast<double>(sstd[style_batch == 1 ? plane % g.c : plane]) * r;
              gm[plane] = static_cast<acc_t>(alpha * s1);
              gs[plane] = static_cast<acc_t>(alpha * s2);
              return Coef<acc_t>{static_cast<acc_t>(alpha * A + 1.0 - alpha),
                                 static_cast<acc_t>(-alpha * A * r * s2 / d),
                                 static_cast<acc_t>(mu), static_cast<acc_t>(-alpha * A * s1 / p)};
            });
      });
  return {call.grad_x, call.grad_stats};
}

std::string kernel_path_cpu(const at::Tensor&, bool) { return "cpu"; }

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CPU, m) {
  m.impl("kernel_path", &kernel_path_cpu);
  m.impl("channel_stats", &channel_stats_cpu);
  m.impl("channel_stats_backward", &channel_stats_backward_cpu);
  m.impl("adain", &adain_cpu);
  m.impl("adain_from_stats", &adain_from_stats_cpu);
  m.impl("adain_backward", &adain_backward_cpu);
}

}  // namespace adain
