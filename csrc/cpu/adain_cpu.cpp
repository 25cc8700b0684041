// CPU implementations of the AdaIN operators (building blocks in plane_kernels.h). Each task
// reduces its planes and applies the result while they are still in cache.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "../adain.h"
#include "plane_kernels.h"

namespace adain {
namespace {

using namespace cpu;

std::tuple<at::Tensor, at::Tensor> channel_stats_cpu(const at::Tensor& x_in, double eps,
                                                     bool unbiased) {
  check_feature_map(x_in, "x");
  check_scalars(1.0, eps);
  TORCH_CHECK(x_in.numel() == 0 || x_in.size(2) * x_in.size(3) > 0, "x has no spatial elements");
  const at::Tensor x = to_kernel_layout(x_in);
  auto opts = x.options().dtype(stats_dtype(x.scalar_type()));
  at::Tensor mean = at::empty({x.size(0), x.size(1)}, opts);
  at::Tensor std_ = at::empty({x.size(0), x.size(1)}, opts);
  if (mean.numel() == 0) return {mean, std_};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "channel_stats_cpu",
                                  [&] { stats_into<scalar_t>(x, eps, unbiased, mean, std_); });
  return {mean, std_};
}

at::Tensor channel_stats_backward_cpu(const at::Tensor& grad_mean, const at::Tensor& grad_std,
                                      const at::Tensor& x_in, const at::Tensor& mean,
                                      const at::Tensor& std_, bool unbiased) {
  check_feature_map(x_in, "x");
  const at::Tensor x = to_kernel_layout(x_in);
  at::Tensor gx = at::empty_like(x);
  if (x.numel() == 0) return gx;
  const auto sdt = stats_dtype(x.scalar_type());
  const at::Tensor gm = grad_mean.to(sdt).contiguous(), gs = grad_std.to(sdt).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "stats_backward_cpu", [&] {
    stats_backward_into<scalar_t>(gm, gs, x, mean.contiguous(), std_.contiguous(), unbiased, gx);
  });
  return gx;
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
      nullptr, x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), g,
      first_element_shift<scalar_t>(), [&](int64_t plane, const Sums& s, double shift) {
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

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_from_stats_cpu(
    const at::Tensor& content_in, const at::Tensor& style_mean, const at::Tensor& style_std,
    double alpha, double eps, bool unbiased) {
  check_style_stats(content_in, style_mean, style_std);
  check_scalars(alpha, eps);
  const at::Tensor x = to_kernel_layout(content_in);
  auto sopts = x.options().dtype(stats_dtype(x.scalar_type()));
  at::Tensor out = at::empty_like(x);
  at::Tensor c_mean = at::empty({x.size(0), x.size(1)}, sopts);
  at::Tensor c_rstd = at::empty({x.size(0), x.size(1)}, sopts);
  if (x.numel() == 0) return {out, c_mean.zero_(), c_rstd.fill_(1.0 / std::sqrt(eps))};
  const at::Tensor sm = style_mean.contiguous(), ss = style_std.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "adain_cpu", [&] {
    using acc_t = acc_of<scalar_t>;
    adain_into<scalar_t, acc_t>(x, sm.const_data_ptr<acc_t>(), ss.const_data_ptr<acc_t>(),
                                sm.size(0), alpha, eps, unbiased, out, c_mean, c_rstd);
  });
  return {out, c_mean, c_rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> adain_cpu(
    const at::Tensor& content, const at::Tensor& style, double alpha, double eps, bool unbiased) {
  check_pair(content, style, "style");
  check_scalars(alpha, eps);
  auto [s_mean, s_std] = channel_stats_cpu(style, eps, unbiased);
  auto [out, c_mean, c_rstd] = adain_from_stats_cpu(content, s_mean, s_std, alpha, eps, unbiased);
  return {out, c_mean, c_rstd, s_mean, s_std};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_backward_cpu(
    const at::Tensor& grad_out_in, const at::Tensor& content_in, const at::Tensor& c_mean,
    const at::Tensor& c_rstd, const at::Tensor& style_std, double alpha, bool unbiased) {
  check_feature_map(content_in, "content");
  TORCH_CHECK(grad_out_in.sizes() == content_in.sizes(), "grad_out must have the content's shape ",
              content_in.sizes(), ", got ", grad_out_in.sizes());
  const at::Tensor x = to_kernel_layout(content_in);
  const PlaneShape g = plane_shape(x);
  // The driver reads u and v with one layout: give grad_out the content's.
  const at::Tensor dy = in_layout_of(grad_out_in.to(x.scalar_type()), x);
  auto sopts = x.options().dtype(stats_dtype(x.scalar_type()));
  at::Tensor gx = at::empty_like(x);
  at::Tensor g_mean = at::empty({x.size(0), x.size(1)}, sopts);
  at::Tensor g_std = at::empty({x.size(0), x.size(1)}, sopts);
  if (x.numel() == 0) return {gx, g_mean.zero_(), g_std.zero_()};
  const at::Tensor ss = style_std.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "adain_backward_cpu", [&] {
    using acc_t = acc_of<scalar_t>;
    const acc_t *cm = c_mean.const_data_ptr<acc_t>(), *cr = c_rstd.const_data_ptr<acc_t>();
    const acc_t* sstd = ss.const_data_ptr<acc_t>();
    acc_t *gm = g_mean.mutable_data_ptr<acc_t>(), *gs = g_std.mutable_data_ptr<acc_t>();
    const double p = static_cast<double>(g.p), d = static_cast<double>(dof(g.p, unbiased));
    reduce_apply<scalar_t, true>(
        dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
        gx.mutable_data_ptr<scalar_t>(), g,
        [&](int64_t plane, const scalar_t*) { return static_cast<double>(cm[plane]); },
        [&](int64_t plane, const Sums& s, double mu) {
          // S1 = sum(dy), S2 = sum(dy * xhat); see conventions.md section 1.
          const double r = cr[plane];
          const double s1 = s.q1, s2 = s.q2 * r;
          const double A = static_cast<double>(sstd[ss.size(0) == 1 ? plane % g.c : plane]) * r;
          gm[plane] = static_cast<acc_t>(alpha * s1);
          gs[plane] = static_cast<acc_t>(alpha * s2);
          return Coef<acc_t>{static_cast<acc_t>(alpha * A + 1.0 - alpha),
                             static_cast<acc_t>(-alpha * A * r * s2 / d), static_cast<acc_t>(mu),
                             static_cast<acc_t>(-alpha * A * s1 / p)};
        });
  });
  return {gx, g_mean, g_std};
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CPU, m) {
  m.impl("channel_stats", &channel_stats_cpu);
  m.impl("channel_stats_backward", &channel_stats_backward_cpu);
  m.impl("adain", &adain_cpu);
  m.impl("adain_from_stats", &adain_from_stats_cpu);
  m.impl("adain_backward", &adain_backward_cpu);
}

}  // namespace adain
