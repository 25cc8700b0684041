// CPU building blocks shared by the AdaIN and loss operators: per-plane sums and the pointwise
// pass out = a*u + b*(v - m) + k, for NCHW and channels_last. Tasks are parallel over planes (or
// channel blocks for channels_last); inner loops are written so the compiler vectorizes them.
#pragma once

#include <ATen/Parallel.h>

#include <c10/util/BFloat16.h>

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "../plane.h"

namespace adain::cpu {

// Channels handled together by one channels_last task: the inner loop runs over them.
constexpr int64_t kChannelBlock = 64;

// Sums of one plane. Statistics mode (no u): q1 = sum(v - m), q2 = sum((v - m)^2) with m the
// plane's mean from a first pass (two passes over data still in cache: the variance does not
// cancel however far the values are from zero). Backward mode: q1 = sum(u), q2 = sum(u * (v - m))
// with m the saved mean.
struct Sums {
  double q1 = 0.0, q2 = 0.0;
  bool has_mean = false;  // statistics mode: the first pass's exact mean (double sums)
  double mean = 0.0;
};

// Elements summed in the input's accumulation type (float, or double for double) before the
// block's total is added to a double: vectorizes like a float loop, rounds like a pairwise sum.
constexpr int64_t kSumBlock = 1024;

template <typename T>
using acc_of = std::conditional_t<std::is_same_v<T, double>, double, float>;

// What statistics sums accumulate in: double. A deviation d = x - m is computed in acc_of<T>,
// and d * d of a float is exact in double, so a plane with one element far from the rest (whose
// square dwarfs the others) loses nothing to the running sum. Backward sums stay in acc_of<T>.
template <typename T, bool HAS_U>
using sum_of = std::conditional_t<HAS_U, acc_of<T>, double>;

// Widening loads. bfloat16 is the top half of a float: a shift the compiler vectorizes, where
// the generic conversion operator is not always inlined into the vector loop.
template <typename T>
inline acc_of<T> to_acc(const T& x) {
  return static_cast<acc_of<T>>(x);
}
template <>
inline float to_acc(const c10::BFloat16& x) {
  const uint32_t bits = static_cast<uint32_t>(x.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Narrowing stores; for bfloat16 the same round-to-nearest-even (NaN stays NaN) as c10's
// conversion, written branch-free so the loop vectorizes.
template <typename T>
inline T from_acc(acc_of<T> v) {
  return static_cast<T>(v);
}
template <>
inline c10::BFloat16 from_acc(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
  return c10::BFloat16(static_cast<uint16_t>(nan ? 0x7FC0u : rounded), c10::BFloat16::from_bits());
}

template <typename T, bool HAS_U>
Sums contiguous_sums(const T* u, const T* v, int64_t p, double m) {
  using acc_t = acc_of<T>;
  using sum_t = sum_of<T, HAS_U>;
  const acc_t mf = static_cast<acc_t>(m);
  Sums total;
  for (int64_t begin = 0; begin < p; begin += kSumBlock) {
    const int64_t end = std::min(p, begin + kSumBlock);
    sum_t q1 = 0, q2 = 0;
#pragma omp simd reduction(+ : q1, q2)
    for (int64_t i = begin; i < end; ++i) {
      const acc_t d = to_acc(v[i]) - mf;
      if constexpr (HAS_U) {
        const acc_t g = to_acc(u[i]);
        q1 += g;
        q2 += g * d;
      } else {
        q1 += static_cast<sum_t>(d);
        q2 += static_cast<sum_t>(d) * static_cast<sum_t>(d);
      }
    }
    total.q1 += q1;
    total.q2 += q2;
  }
  return total;
}

template <typename T, typename acc_t, bool HAS_U>
void contiguous_apply(const T* u, const T* v, T* out, int64_t p, const Coef<acc_t>& c) {
#pragma omp simd
  for (int64_t i = 0; i < p; ++i) {
    acc_t r = c.b * (to_acc(v[i]) - c.m) + c.k;
    if constexpr (HAS_U) r += c.a * to_acc(u[i]);
    out[i] = from_acc<T>(r);
  }
}

// `center_of` for statistics: m is each plane's own mean, from a first pass over the plane.
struct PlaneMean {};

// The shared driver. For every plane it computes Sums, hands them to `coef_of(plane, sums, m)`
// which returns the plane's Coef (and may record statistics), then, when `out` is given, writes
// out = a*u + b*(v - m) + k. `center_of(plane)` gives m for the sums, or PlaneMean for the mean.
template <typename T, bool HAS_U, typename CenterFn, typename CoefFn>
void reduce_apply(const T* u, const T* v, T* out, const PlaneShape& g, CenterFn center_of,
                  CoefFn coef_of) {
  using acc_t = acc_of<T>;
  constexpr bool kMeanPass = std::is_same_v<CenterFn, PlaneMean>;
  if (g.layout == Layout::kNCHW) {
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(g.p, 1));
    at::parallel_for(0, g.planes(), grain, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t off = plane * g.p;
        double m, mean = 0.0;
        if constexpr (kMeanPass) {
          mean =
              contiguous_sums<T, false>(nullptr, v + off, g.p, 0.0).q1 / static_cast<double>(g.p);
          m = static_cast<acc_t>(mean);  // the shift the second pass subtracts, exactly
        } else {
          m = center_of(plane);
        }
        Sums s = contiguous_sums<T, HAS_U>(HAS_U ? u + off : nullptr, v + off, g.p, m);
        s.has_mean = kMeanPass, s.mean = mean;
        const Coef<acc_t> c = coef_of(plane, s, m);
        if (out)
          contiguous_apply<T, acc_t, HAS_U>(HAS_U ? u + off : nullptr, v + off, out + off, g.p, c);
      }
    });
    return;
  }
  // channels_last: a task is (n, block of channels); rows of the block are contiguous.
  const int64_t blocks = (g.c + kChannelBlock - 1) / kChannelBlock;
  at::parallel_for(0, g.n * blocks, 1, [&](int64_t begin, int64_t end) {
    double q1[kChannelBlock], q2[kChannelBlock], m[kChannelBlock], means[kChannelBlock] = {};
    using sum_t = sum_of<T, HAS_U>;
    acc_t mf[kChannelBlock];
    sum_t s1[kChannelBlock], s2[kChannelBlock];
    acc_t ca[kChannelBlock], cb[kChannelBlock], cm[kChannelBlock], ck[kChannelBlock];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks;
      const int64_t c0 = (task % blocks) * kChannelBlock;
      const int64_t width = std::min(kChannelBlock, g.c - c0);
      const int64_t base = n * g.p * g.c + c0;
      if constexpr (kMeanPass) {  // the first pass: every channel's sum, rows in blocks as below
        for (int64_t j = 0; j < width; ++j) q1[j] = 0.0;
        for (int64_t row0 = 0; row0 < g.p; row0 += kSumBlock / 8) {
          const int64_t row_end = std::min(g.p, row0 + kSumBlock / 8);
          for (int64_t j = 0; j < width; ++j) s1[j] = 0;
          for (int64_t row = row0; row < row_end; ++row) {
            const T* vr = v + base + row * g.c;
#pragma omp simd
            for (int64_t j = 0; j < width; ++j) s1[j] += static_cast<sum_t>(to_acc(vr[j]));
          }
          for (int64_t j = 0; j < width; ++j) q1[j] += s1[j];
        }
      }
      for (int64_t j = 0; j < width; ++j) {
        if constexpr (kMeanPass) {
          means[j] = q1[j] / static_cast<double>(g.p);
          m[j] = static_cast<acc_t>(means[j]);  // the shift the second pass subtracts, exactly
        } else {
          m[j] = center_of(n * g.c + c0 + j);
        }
        mf[j] = static_cast<acc_t>(m[j]);
        q1[j] = q2[j] = 0.0;
      }
      // Rows are summed in sum_t in blocks (kSumBlock / 8 rows), each block's sums then go to
      // double.
      for (int64_t row0 = 0; row0 < g.p; row0 += kSumBlock / 8) {
        const int64_t row_end = std::min(g.p, row0 + kSumBlock / 8);
        for (int64_t j = 0; j < width; ++j) s1[j] = s2[j] = 0;
        for (int64_t row = row0; row < row_end; ++row) {
          const T* vr = v + base + row * g.c;
          const T* ur = HAS_U ? u + base + row * g.c : nullptr;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) {
            const acc_t d = to_acc(vr[j]) - mf[j];
            if constexpr (HAS_U) {
              const acc_t gv = to_acc(ur[j]);
              s1[j] += gv;
              s2[j] += gv * d;
            } else {
              s1[j] += static_cast<sum_t>(d);
              s2[j] += static_cast<sum_t>(d) * static_cast<sum_t>(d);
            }
          }
        }
        for (int64_t j = 0; j < width; ++j) q1[j] += s1[j], q2[j] += s2[j];
      }
      for (int64_t j = 0; j < width; ++j) {
        const Coef<acc_t> c =
            coef_of(n * g.c + c0 + j, Sums{q1[j], q2[j], kMeanPass, means[j]}, m[j]);
        ca[j] = c.a, cb[j] = c.b, cm[j] = c.m, ck[j] = c.k;
      }
      if (!out) continue;
      for (int64_t row = 0; row < g.p; ++row) {
        const int64_t off = base + row * g.c;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) {
          acc_t r = cb[j] * (to_acc(v[off + j]) - cm[j]) + ck[j];
          if constexpr (HAS_U) r += ca[j] * to_acc(u[off + j]);
          out[off + j] = from_acc<T>(r);
        }
      }
    }
  });
}

// Mean and variance from sums shifted by m: q1 corrects for the shift not being the exact mean.
inline std::pair<double, double> mean_var(const Sums& s, double shift, int64_t p, bool unbiased) {
  const double mean_d = s.q1 / static_cast<double>(p);
  const double m2 = std::max(s.q2 - s.q1 * mean_d, 0.0);
  return {s.has_mean ? s.mean : shift + mean_d, m2 / static_cast<double>(dof(p, unbiased))};
}

template <typename scalar_t>
void stats_into(const at::Tensor& x, double eps, bool unbiased, at::Tensor& mean,
                at::Tensor& std_) {
  using acc_t = acc_of<scalar_t>;
  const PlaneShape g = plane_shape(x);
  auto* mp = mean.data_ptr<acc_t>();
  auto* sp = std_.data_ptr<acc_t>();
  reduce_apply<scalar_t, false>(nullptr, x.const_data_ptr<scalar_t>(), nullptr, g, PlaneMean{},
                                [&](int64_t plane, const Sums& s, double shift) {
                                  const auto [mu, var] = mean_var(s, shift, g.p, unbiased);
                                  mp[plane] = static_cast<acc_t>(mu);
                                  sp[plane] = static_cast<acc_t>(std::sqrt(var + eps));
                                  return Coef<acc_t>{};
                                });
}

// out = a*u + b*(v - m) + k with one Coef per plane, for either layout.
template <typename T, bool HAS_U>
void apply_coefs(const T* u, const T* v, T* out, const PlaneShape& g,
                 const std::vector<Coef<acc_of<T>>>& cs) {
  using acc_t = acc_of<T>;
  if (g.layout == Layout::kNCHW) {
    at::parallel_for(0, g.planes(), std::max<int64_t>(1, 32768 / g.p), [&](int64_t b, int64_t e) {
      for (int64_t plane = b; plane < e; ++plane) {
        const int64_t off = plane * g.p;
        contiguous_apply<T, acc_t, HAS_U>(HAS_U ? u + off : nullptr, v + off, out + off, g.p,
                                          cs[plane]);
      }
    });
    return;
  }
  at::parallel_for(0, g.n * g.p, 256, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const Coef<acc_t>* cr = cs.data() + (row / g.p) * g.c;
      const int64_t off = row * g.c;
#pragma omp simd
      for (int64_t j = 0; j < g.c; ++j) {
        acc_t r = cr[j].b * (to_acc(v[off + j]) - cr[j].m) + cr[j].k;
        if constexpr (HAS_U) r += cr[j].a * to_acc(u[off + j]);
        out[off + j] = from_acc<T>(r);
      }
    }
  });
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
  apply_coefs<scalar_t, false>(nullptr, x.const_data_ptr<scalar_t>(),
                               gx.mutable_data_ptr<scalar_t>(), g, cs);
}

}  // namespace adain::cpu
