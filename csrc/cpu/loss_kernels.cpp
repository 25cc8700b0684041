// CPU implementation of the fused training losses (see csrc/loss_plan.h).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../loss_plan.h"
#include "../op_setup.h"
#include "../plane.h"
#include "plane_kernels.h"

namespace adain {
namespace {

using namespace cpu;

// Elements per block of the deterministic sum of squared differences.
constexpr int64_t kMseBlock = 16384;

// sum((x - t)^2) over two tensors of one layout, block sums added in a fixed order.
template <typename T>
double squared_difference_sum(const T* x, const T* t, int64_t numel) {
  using acc_t = acc_of<T>;
  const int64_t blocks = (numel + kMseBlock - 1) / kMseBlock;
  std::vector<double> partial(blocks);
  at::parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t block = b; block < e; ++block) {
      const int64_t end = std::min(numel, (block + 1) * kMseBlock);
      double total = 0.0;
      for (int64_t begin = block * kMseBlock; begin < end; begin += kSumBlock) {
        const int64_t stop = std::min(end, begin + kSumBlock);
        acc_t s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = begin; i < stop; ++i) {
          const acc_t d = static_cast<acc_t>(x[i]) - static_cast<acc_t>(t[i]);
          s += d * d;
        }
        total += s;
      }
      partial[block] = total;
    }
  });
  double sum = 0.0;
  for (double p : partial) sum += p;
  return sum;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> losses_cpu(
    at::TensorList inputs_in, at::TensorList targets_in,
    const std::optional<at::Tensor>& content_target, at::ArrayRef<double> weights, double eps,
    bool unbiased) {
  const std::vector<at::Tensor> inputs = inputs_in.vec(), targets = targets_in.vec();
  const LossPlan plan = plan_losses(inputs, targets, content_target, weights.vec(), eps);
  const auto sdt = stats_dtype(inputs[0].scalar_type());
  at::Tensor stats = at::empty({plan.stats_numel}, inputs[0].options().dtype(sdt));
  double style = 0.0, content = 0.0;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, inputs[0].scalar_type(), "losses_cpu", [&] {
        using acc_t = acc_of<scalar_t>;
        for (size_t l = 0; l < plan.layers.size(); ++l) {
          const LossLayer& layer = plan.layers[l];
          at::Tensor mean = stats.narrow(0, layer.offset, layer.planes);
          at::Tensor std_ = stats.narrow(0, layer.offset + layer.planes, layer.planes);
          at::Tensor t_mean = stats.narrow(0, layer.offset + 2 * layer.planes, layer.target_planes);
          at::Tensor t_std = stats.narrow(0, layer.offset + 2 * layer.planes + layer.target_planes,
                                          layer.target_planes);
          stats_into<scalar_t>(to_kernel_layout(inputs[l]), eps, unbiased, mean, std_);
          if (layer.target_is_map) {
            stats_into<scalar_t>(to_kernel_layout(targets[l]), eps, unbiased, t_mean, t_std);
          } else {
            t_mean.copy_(targets[l][0].reshape(-1));
            t_std.copy_(targets[l][1].reshape(-1));
          }
          const acc_t *m = mean.const_data_ptr<acc_t>(), *s = std_.const_data_ptr<acc_t>();
          const acc_t *tm = t_mean.const_data_ptr<acc_t>(), *ts = t_std.const_data_ptr<acc_t>();
          double sum = 0.0;
          for (int64_t plane = 0; plane < layer.planes; ++plane) {
            const int64_t tp = layer.target_planes == layer.planes ? plane : plane % layer.channels;
            const double dm = double(m[plane]) - double(tm[tp]),
                         ds = double(s[plane]) - double(ts[tp]);
            sum += dm * dm + ds * ds;
          }
          style += weights[l] * sum / static_cast<double>(layer.planes);
        }
        if (content_target.has_value()) {
          const at::Tensor x = to_kernel_layout(inputs.back());
          const at::Tensor t = in_layout_of(*content_target, x);
          content = squared_difference_sum(x.const_data_ptr<scalar_t>(),
                                           t.const_data_ptr<scalar_t>(), x.numel()) /
                    static_cast<double>(x.numel());
        }
      });
  auto scalar = [&](double v) { return at::scalar_tensor(v, inputs[0].options().dtype(sdt)); };
  return {scalar(style), scalar(content), stats};
}

std::vector<at::Tensor> losses_backward_cpu(const at::Tensor& grad_style,
                                            const at::Tensor& grad_content,
                                            at::TensorList inputs_in, at::TensorList targets_in,
                                            const std::optional<at::Tensor>& content_target,
                                            const at::Tensor& stats, at::ArrayRef<double> weights,
                                            bool unbiased) {
  const std::vector<at::Tensor> inputs = inputs_in.vec(), targets = targets_in.vec();
  const LossPlan plan = plan_losses(inputs, targets, content_target, weights.vec(), 1.0);
  check_loss_backward(plan, inputs[0], stats, grad_style, grad_content);
  const double g_style = grad_style.item<double>(), g_content = grad_content.item<double>();
  std::vector<at::Tensor> grads;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, inputs[0].scalar_type(), "losses_backward_cpu", [&] {
        using acc_t = acc_of<scalar_t>;
        const acc_t* sp = stats.const_data_ptr<acc_t>();
        for (size_t l = 0; l < inputs.size(); ++l) {
          const at::Tensor x = to_kernel_layout(inputs[l]);
          const PlaneShape g = plane_shape(x);
          at::Tensor gx = at::empty_like(x);
          std::vector<Coef<acc_t>> cs(g.planes(), Coef<acc_t>{0, 0, 0, 0});
          if (l < plan.layers.size()) {
            // d/dx of w * mean((mu - mu_t)^2 + (sigma - sigma_t)^2), docs/numerics.md "Losses".
            const LossLayer& layer = plan.layers[l];
            const acc_t *m = sp + layer.offset, *s = m + layer.planes;
            const acc_t *tm = s + layer.planes, *ts = tm + layer.target_planes;
            const double scale = g_style * weights[l] * 2.0 / static_cast<double>(layer.planes);
            const double d = static_cast<double>(dof(g.p, unbiased));
            for (int64_t plane = 0; plane < g.planes(); ++plane) {
              const int64_t tp =
                  layer.target_planes == layer.planes ? plane : plane % layer.channels;
              const double gm = scale * (double(m[plane]) - double(tm[tp]));
              const double gs = scale * (double(s[plane]) - double(ts[tp]));
              cs[plane] = Coef<acc_t>{0, static_cast<acc_t>(gs / (d * s[plane])), m[plane],
                                      static_cast<acc_t>(gm / static_cast<double>(g.p))};
            }
          }
          if (content_target.has_value() && l + 1 == inputs.size()) {
            // + c * (x - t), c = 2 g / numel, written as a*u + b*(x - m) + k with u = t.
            const double c = 2.0 * g_content / static_cast<double>(x.numel());
            for (auto& cf : cs)
              cf = Coef<acc_t>{acc_t(-c), acc_t(cf.b + c), cf.m, acc_t(cf.k + c * cf.m)};
            const at::Tensor t = in_layout_of(*content_target, x);
            apply_coefs<scalar_t, true>(t.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                        gx.mutable_data_ptr<scalar_t>(), g, cs);
          } else {
            apply_coefs<scalar_t, false>(nullptr, x.const_data_ptr<scalar_t>(),
                                         gx.mutable_data_ptr<scalar_t>(), g, cs);
          }
          grads.push_back(gx);
        }
      });
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, CPU, m) {
  m.impl("losses", &losses_cpu);
  m.impl("losses_backward", &losses_backward_cpu);
}

}  // namespace adain
