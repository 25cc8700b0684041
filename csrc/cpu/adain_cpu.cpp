// CPU kernels: parallel over planes (or channel blocks for channels_last), with the inner loops
// written so the compiler vectorizes them (float accumulation into double, `omp simd`
// reductions). Each task reduces its planes and applies the result while they are still in cache.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "../adain.h"

namespace adain {
namespace {

// Channels handled together by one channels_last task: the inner loop runs over them.
constexpr int64_t kChannelBlock = 64;

// Sums of one plane. Statistics mode (no u): q1 = sum(v - m), q2 = sum((v - m)^2) with m a shift
// (the plane's first element) that keeps the one-pass variance accurate. Backward mode:
// q1 = sum(u), q2 = sum(u * (v - m)) with m the saved mean.
struct Sums {
  double q1 = 0.0, q2 = 0.0;
};

// Elements summed in the input's accumulation type (float, or double for double) before the
// block's total is added to a double: vectorizes like a float loop, rounds like a pairwise sum.
constexpr int64_t kSumBlock = 1024;

template <typename T>
using acc_of = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T, bool HAS_U>
Sums contiguous_sums(const T* u, const T* v, int64_t p, double m) {
  using acc_t = acc_of<T>;
  const acc_t mf = static_cast<acc_t>(m);
  Sums total;
  for (int64_t begin = 0; begin < p; begin += kSumBlock) {
    const int64_t end = std::min(p, begin + kSumBlock);
    acc_t q1 = 0, q2 = 0;
#pragma omp simd reduction(+ : q1, q2)
    for (int64_t i = begin; i < end; ++i) {
      const acc_t d = static_cast<acc_t>(v[i]) - mf;
      if constexpr (HAS_U) {
        const acc_t g = static_cast<acc_t>(u[i]);
        q1 += g;
        q2 += g * d;
      } else {
        q1 += d;
        q2 += d * d;
      }
    }
    total.q1 += q1;
    total.q2 += q2;
  }
  return total;
}

template <typename T, typename acc_t, bool HAS_U>
void contiguous_apply(const T* u, const T* v, T* out, int64_t p, Coef<acc_t> c) {
#pragma omp simd
  for (int64_t i = 0; i < p; ++i) {
    acc_t r = c.b * (static_cast<acc_t>(v[i]) - c.m) + c.k;
    if constexpr (HAS_U) r += c.a * static_cast<acc_t>(u[i]);
    out[i] = static_cast<T>(r);
  }
}

// The shared driver. For every plane it computes Sums, hands them to `coef_of(plane, sums, m)`
// which returns the plane's Coef (and may record statistics), then, when `out` is given, writes
// out = a*u + b*(v - m) + k. `center_of(plane, v_plane_first)` gives m for the sums.
template <typename T, bool HAS_U, typename CenterFn, typename CoefFn>
void reduce_apply(const T* u, const T* v, T* out, const PlaneShape& g, CenterFn center_of,
                  CoefFn coef_of) {
  using acc_t = acc_of<T>;
  if (g.layout == Layout::kNCHW) {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(g.p, 1));
    at::parallel_for(0, g.planes(), grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t off = plane * g.p;
        const double m = center_of(plane, v + off);
        const Sums s = contiguous_sums<T, HAS_U>(HAS_U ? u + off : nullptr, v + off, g.p, m);
        const Coef<acc_t> c = coef_of(plane, s, m);
        if (out) contiguous_apply<T, acc_t, HAS_U>(HAS_U ? u + off : nullptr, v + off, out + off, g.p, c);
      }
    });
    return;
  }
  // channels_last: a task is (n, block of channels); rows of the block are contiguous.
  const int64_t blocks = (g.c + kChannelBlock - 1) / kChannelBlock;
  at::parallel_for(0, g.n * blocks, 1, [&](int64_t begin, int64_t end) {
    double q1[kChannelBlock], q2[kChannelBlock], m[kChannelBlock];
    acc_t mf[kChannelBlock], s1[kChannelBlock], s2[kChannelBlock];
    acc_t ca[kChannelBlock], cb[kChannelBlock], cm[kChannelBlock], ck[kChannelBlock];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks;
      const int64_t c0 = (task % blocks) * kChannelBlock;
      const int64_t width = std::min(kChannelBlock, g.c - c0);
      const int64_t base = n * g.p * g.c + c0;
      for (int64_t j = 0; j < width; ++j) {
        m[j] = center_of(n * g.c + c0 + j, v + base + j);
        mf[j] = static_cast<acc_t>(m[j]);
        q1[j] = q2[j] = 0.0;
      }
      // Rows are summed in acc_t in blocks (kSumBlock / 8 rows), each block's sums then go to double.
      for (int64_t row0 = 0; row0 < g.p; row0 += kSumBlock / 8) {
        const int64_t row_end = std::min(g.p, row0 + kSumBlock / 8);
        for (int64_t j = 0; j < width; ++j) s1[j] = s2[j] = 0;
        for (int64_t row = row0; row < row_end; ++row) {
          const T* vr = v + base + row * g.c;
          const T* ur = HAS_U ? u + base + row * g.c : nullptr;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) {
            const acc_t d = static_cast<acc_t>(vr[j]) - mf[j];
            if constexpr (HAS_U) {
              const acc_t gv = static_cast<acc_t>(ur[j]);
              s1[j] += gv;
              s2[j] += gv * d;
            } else {
              s1[j] += d;
              s2[j] += d * d;
            }
          }
        }
        for (int64_t j = 0; j < width; ++j) q1[j] += s1[j], q2[j] += s2[j];
      }
      for (int64_t j = 0; j < width; ++j) {
        const Coef<acc_t> c = coef_of(n * g.c + c0 + j, Sums{q1[j], q2[j]}, m[j]);
        ca[j] = c.a, cb[j] = c.b, cm[j] = c.m, ck[j] = c.k;
      }
      if (!out) continue;
      for (int64_t row = 0; row < g.p; ++row) {
        const int64_t off = base + row * g.c;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) {
          acc_t r = cb[j] * (static_cast<acc_t>(v[off + j]) - cm[j]) + ck[j];
          if constexpr (HAS_U) r += ca[j] * static_cast<acc_t>(u[off + j]);
          out[off + j] = static_cast<T>(r);
        }
      }
    }
  });
}

// m for statistics: the plane's first element (any value inside the data range will do).
template <typename T>
auto first_element_shift() {
  return [](int64_t, const T* first) { return static_cast<double>(*first); };
}

// Mean and variance from shifted sums.
inline std::pair<double, double> mean_var(const Sums& s, double shift, int64_t p, bool unbiased) {
  const double mean_d = s.q1 / static_cast<double>(p);
  const double m2 = std::max(s.q2 - s.q1 * mean_d, 0.0);
  return {shift + mean_d, m2 / static_cast<double>(dof(p, unbiased))};
}

template <typename scalar_t>
void stats_into(const at::Tensor& x, double eps, bool unbiased, at::Tensor& mean, at::Tensor& std_) {
  using acc_t = acc_of<scalar_t>;
  const PlaneShape g = plane_shape(x);
  auto* mp = mean.data_ptr<acc_t>();
  auto* sp = std_.data_ptr<acc_t>();
  reduce_apply<scalar_t, false>(
      nullptr, x.const_data_ptr<scalar_t>(), nullptr, g, first_element_shift<scalar_t>(),
      [&](int64_t plane, const Sums& s, double shift) {
        const auto [mu, var] = mean_var(s, shift, g.p, unbiased);
        mp[plane] = static_cast<acc_t>(mu);
        sp[plane] = static_cast<acc_t>(std::sqrt(var + eps));
        return Coef<acc_t>{};
      });
}

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

// d mean / dx = 1/P and d std / dx = (x - mean) / (dof * std): a pointwise pass, no reduction.
template <typename scalar_t>
void stats_backward_into(const at::Tensor& gm, const at::Tensor& gs, const at::Tensor& x,
                         const at::Tensor& mean, const at::Tensor& std_, bool unbiased,
                         at::Tensor& gx) {
  using acc_t = acc_of<scalar_t>;
  const PlaneShape g = plane_shape(x);
  const acc_t *gmp = gm.const_data_ptr<acc_t>(), *gsp = gs.const_data_ptr<acc_t>();
  const acc_t *mp = mean.const_data_ptr<acc_t>(), *sp = std_.const_data_ptr<acc_t>();
  const double p = static_cast<double>(g.p), d = static_cast<double>(dof(g.p, unbiased));
  std::vector<Coef<acc_t>> cs(g.planes());
  for (int64_t plane = 0; plane < g.planes(); ++plane) {
    cs[plane] = Coef<acc_t>{0, static_cast<acc_t>(gsp[plane] / (d * sp[plane])), mp[plane],
                            static_cast<acc_t>(gmp[plane] / p)};
  }
  const scalar_t* xp = x.const_data_ptr<scalar_t>();
  scalar_t* op = gx.mutable_data_ptr<scalar_t>();
  if (g.layout == Layout::kNCHW) {
    at::parallel_for(0, g.planes(), std::max<int64_t>(1, 32768 / g.p), [&](int64_t b, int64_t e) {
      for (int64_t plane = b; plane < e; ++plane) {
        contiguous_apply<scalar_t, acc_t, false>(nullptr, xp + plane * g.p, op + plane * g.p, g.p,
                                                 cs[plane]);
      }
    });
    return;
  }
  at::parallel_for(0, g.n * g.p, 256, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const Coef<acc_t>* cr = cs.data() + (row / g.p) * g.c;
      const scalar_t* xr = xp + row * g.c;
      scalar_t* orow = op + row * g.c;
#pragma omp simd
      for (int64_t j = 0; j < g.c; ++j) {
        orow[j] = static_cast<scalar_t>(cr[j].b * (static_cast<acc_t>(xr[j]) - cr[j].m) + cr[j].k);
      }
    }
  });
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
  const at::Tensor dy = grad_out_in.to(x.scalar_type())
                            .contiguous(g.layout == Layout::kNHWC ? at::MemoryFormat::ChannelsLast
                                                                  : at::MemoryFormat::Contiguous);
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
