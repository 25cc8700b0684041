// Autograd for the operators, in C++ and registered at the Autograd dispatch key, so a call costs
// no Python: without gradients the kernel goes straight to the backend implementation, with them
// a torch::autograd::Function records one node whose backward calls the backward operators.
// Gradients of the statistics outputs are never materialized: they are saved for backward,
// not differentiable (channel_stats' packed output is the one that is).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <functional>
#include <optional>
#include <tuple>
#include <vector>

namespace adain {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The operators below autograd, looked up once.
template <typename Sig>
c10::TypedOperatorHandle<Sig> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

using StatsSig = at::Tensor(const at::Tensor&, double, bool);
using StatsBackwardSig = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool);
using AdainSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double,
                                                    double, bool);
using FromStatsSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                        const at::Tensor&, double, double, bool);
using AdainBackwardSig = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                            const at::Tensor&, const at::Tensor&,
                                                            double, bool);
using LossesSig = std::tuple<at::Tensor, at::Tensor, at::Tensor>(at::TensorList, at::TensorList,
                                                                 const std::optional<at::Tensor>&,
                                                                 at::ArrayRef<double>, double,
                                                                 bool);
using LossesBackwardSig = std::vector<at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                  at::TensorList, at::TensorList,
                                                  const std::optional<at::Tensor>&,
                                                  const at::Tensor&, at::ArrayRef<double>, bool);

const auto& stats_op() {
  static const auto h = op<StatsSig>("adain_cuda::channel_stats");
  return h;
}
const auto& stats_backward_op() {
  static const auto h = op<StatsBackwardSig>("adain_cuda::channel_stats_backward");
  return h;
}
const auto& adain_op() {
  static const auto h = op<AdainSig>("adain_cuda::adain");
  return h;
}
const auto& from_stats_op() {
  static const auto h = op<FromStatsSig>("adain_cuda::adain_from_stats");
  return h;
}
const auto& adain_backward_op() {
  static const auto h = op<AdainBackwardSig>("adain_cuda::adain_backward");
  return h;
}
const auto& losses_op() {
  static const auto h = op<LossesSig>("adain_cuda::losses");
  return h;
}
const auto& losses_backward_op() {
  static const auto h = op<LossesBackwardSig>("adain_cuda::losses_backward");
  return h;
}

// Whether autograd records a call with these inputs (undefined tensors: absent optionals).
bool recording(at::TensorList inputs) {
  if (!at::GradMode::is_enabled()) return false;
  for (const at::Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

// Sizes are SymInts throughout the backward passes: torch.compile(dynamic=True) traces them with
// symbolic shapes.
using c10::SymInt;

// Gradients of statistics shared over the batch (batch 1) are summed over it: (2, N, C) -> (2, 1,
// C).
at::Tensor sum_to_batch(const at::Tensor& grad_stats, const SymInt& batch) {
  return batch == 1 && grad_stats.sym_size(1) != 1 ? grad_stats.sum(1, /*keepdim=*/true)
                                                   : grad_stats;
}

// The (2, rows, C) block of a 1-D packed statistics tensor that starts at `offset`.
at::Tensor packed_pair(const at::Tensor& stats, const SymInt& offset, const SymInt& rows,
                       const SymInt& c) {
  return stats.narrow_symint(0, offset, 2 * rows * c).view_symint({2, rows, c});
}

// ------------------------------------------------------------------ channel_stats ----
struct ChannelStats : public torch::autograd::Function<ChannelStats> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, double eps, bool unbiased) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor stats = stats_op().call(x, eps, unbiased);
    ctx->save_for_backward({x, stats});
    ctx->saved_data["unbiased"] = unbiased;
    return stats;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    return {stats_backward_op().call(grads[0], saved[0], saved[1],
                                     ctx->saved_data["unbiased"].toBool()),
            at::Tensor(), at::Tensor()};
  }
};

at::Tensor channel_stats_autograd(const at::Tensor& x, double eps, bool unbiased) {
  if (!recording(x)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return stats_op().call(x, eps, unbiased);
  }
  return ChannelStats::apply(x, eps, unbiased);
}

// --------------------------------------------------------------------------- adain ----
struct Adain : public torch::autograd::Function<Adain> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& content,
                               const at::Tensor& style, double alpha, double eps, bool unbiased) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, stats] = adain_op().call(content, style, alpha, eps, unbiased);
    ctx->set_materialize_grads(false);
    ctx->mark_non_differentiable({stats});
    ctx->save_for_backward({content, style, stats});
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["unbiased"] = unbiased;
    return {out, stats};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(5);
    if (!grads[0].defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &content = saved[0], &style = saved[1], &stats = saved[2];
    const SymInt n = content.sym_size(0), ns = style.sym_size(0), c = content.sym_size(1);
    const bool unbiased = ctx->saved_data["unbiased"].toBool();
    const at::Tensor style_stats = packed_pair(stats, 2 * n * c, ns, c);
    auto [grad_content, grad_style_stats] =
        adain_backward_op().call(grads[0], content, packed_pair(stats, 0, n, c), style_stats[1],
                                 ctx->saved_data["alpha"].toDouble(), unbiased);
    if (ctx->needs_input_grad(0)) result[0] = grad_content;
    if (ctx->needs_input_grad(1)) {
      result[1] = stats_backward_op().call(sum_to_batch(grad_style_stats, ns), style, style_stats,
                                           unbiased);
    }
    return result;
  }
};

std::tuple<at::Tensor, at::Tensor> adain_autograd(const at::Tensor& content,
                                                  const at::Tensor& style, double alpha, double eps,
                                                  bool unbiased) {
  if (!recording({content, style})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return adain_op().call(content, style, alpha, eps, unbiased);
  }
  const auto outs = Adain::apply(content, style, alpha, eps, unbiased);
  return {outs[0], outs[1]};
}

// ---------------------------------------------------------------- adain_from_stats ----
struct AdainFromStats : public torch::autograd::Function<AdainFromStats> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& content,
                               const at::Tensor& style_mean, const at::Tensor& style_std,
                               double alpha, double eps, bool unbiased) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, stats] = from_stats_op().call(content, style_mean, style_std, alpha, eps, unbiased);
    ctx->set_materialize_grads(false);
    ctx->mark_non_differentiable({stats});
    ctx->save_for_backward({content, stats, style_std});
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["unbiased"] = unbiased;
    return {out, stats};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    variable_list result(6);
    if (!grads[0].defined()) return result;
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &content = saved[0], &stats = saved[1], &style_std = saved[2];
    auto [grad_content, grad_style_stats] = adain_backward_op().call(
        grads[0], content, stats, style_std, ctx->saved_data["alpha"].toDouble(),
        ctx->saved_data["unbiased"].toBool());
    const at::Tensor g = sum_to_batch(grad_style_stats, style_std.sym_size(0));
    if (ctx->needs_input_grad(0)) result[0] = grad_content;
    if (ctx->needs_input_grad(1)) result[1] = g[0];
    if (ctx->needs_input_grad(2)) result[2] = g[1];
    return result;
  }
};

std::tuple<at::Tensor, at::Tensor> adain_from_stats_autograd(const at::Tensor& content,
                                                             const at::Tensor& style_mean,
                                                             const at::Tensor& style_std,
                                                             double alpha, double eps,
                                                             bool unbiased) {
  if (!recording({content, style_mean, style_std})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return from_stats_op().call(content, style_mean, style_std, alpha, eps, unbiased);
  }
  const auto outs = AdainFromStats::apply(content, style_mean, style_std, alpha, eps, unbiased);
  return {outs[0], outs[1]};
}

// -------------------------------------------------------------------------- losses ----
// Gradient of the style loss with respect to a target that requires one (rare: training targets
// are detached). `block` is the layer's slice of the packed statistics: [input mean (N*C), input
// std (N*C), target mean (Nt*C), target std (Nt*C)]; d/d target = -d/d input statistics.
at::Tensor target_grad(const at::Tensor& target, const at::Tensor& grad_style,
                       const at::Tensor& block, const SymInt& n, const SymInt& nt, const SymInt& c,
                       double weight, bool unbiased) {
  const at::Tensor input_stats = packed_pair(block, 0, n, c);
  const at::Tensor target_stats = packed_pair(block, 2 * n * c, nt, c);
  const at::Tensor g =
      (target_stats - input_stats) * (grad_style * (2.0 * weight)) / c10::Scalar(n * c);
  if (target.dim() == 4) return stats_backward_op().call(g, target, target_stats, unbiased);
  return sum_to_batch(g, target.sym_size(1));  // (mean, std) statistics of shape (2, Nt, C)
}

struct Losses : public torch::autograd::Function<Losses> {
  static variable_list forward(AutogradContext* ctx, at::TensorList inputs, at::TensorList targets,
                               const std::optional<at::Tensor>& content_target,
                               std::vector<double> weights, double eps, bool unbiased) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [style, content, stats] =
        losses_op().call(inputs, targets, content_target, weights, eps, unbiased);
    ctx->mark_non_differentiable({stats});
    std::vector<at::Tensor> saved(inputs.begin(), inputs.end());
    saved.insert(saved.end(), targets.begin(), targets.end());
    if (content_target.has_value()) saved.push_back(*content_target);
    saved.push_back(stats);
    ctx->save_for_backward(saved);
    ctx->saved_data["counts"] = std::vector<int64_t>{static_cast<int64_t>(inputs.size()),
                                                     static_cast<int64_t>(targets.size())};
    ctx->saved_data["weights"] = weights;
    ctx->saved_data["unbiased"] = unbiased;
    return {style, content, stats};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto counts = ctx->saved_data["counts"].toIntVector();
    const size_t n_in = counts[0], n_tg = counts[1];
    const bool has_content = saved.size() == n_in + n_tg + 2;
    const std::vector<at::Tensor> inputs(saved.begin(), saved.begin() + n_in);
    const std::vector<at::Tensor> targets(saved.begin() + n_in, saved.begin() + n_in + n_tg);
    const std::optional<at::Tensor> content_target =
        has_content ? std::optional<at::Tensor>(saved[n_in + n_tg]) : std::nullopt;
    const at::Tensor& stats = saved.back();
    const auto weights = ctx->saved_data["weights"].toDoubleVector();
    const bool unbiased = ctx->saved_data["unbiased"].toBool();
    const at::Tensor &grad_style = grads[0], &grad_content = grads[1];

    variable_list result = losses_backward_op().call(grad_style, grad_content, inputs, targets,
                                                     content_target, stats, weights, unbiased);
    size_t edge = n_in;
    SymInt offset = 0;
    for (size_t l = 0; l < n_tg; ++l, ++edge) {
      const at::Tensor &x = inputs[l], &t = targets[l];
      const SymInt n = x.sym_size(0), c = x.sym_size(1), nt = t.dim() == 4 ? n : t.sym_size(1);
      const SymInt len = 2 * (n + nt) * c;
      result.push_back(ctx->needs_input_grad(edge)
                           ? target_grad(t, grad_style, stats.narrow_symint(0, offset, len), n, nt,
                                         c, weights[l], unbiased)
                           : at::Tensor());
      offset += len;
    }
    if (has_content) {
      const at::Tensor& last = inputs.back();
      result.push_back(ctx->needs_input_grad(edge)
                           ? (*content_target - last) * (2.0 * grad_content) /
                                 c10::Scalar(last.sym_numel())
                           : at::Tensor());
    } else {
      result.push_back(at::Tensor());
    }
    result.insert(result.end(), 3, at::Tensor());  // weights, eps, unbiased
    return result;
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> losses_autograd(
    at::TensorList inputs, at::TensorList targets, const std::optional<at::Tensor>& content_target,
    at::ArrayRef<double> weights, double eps, bool unbiased) {
  if (!recording(inputs) && !recording(targets) &&
      !recording(content_target.value_or(at::Tensor()))) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return losses_op().call(inputs, targets, content_target, weights, eps, unbiased);
  }
  const auto outs = Losses::apply(inputs, targets, content_target, weights.vec(), eps, unbiased);
  return {outs[0], outs[1], outs[2]};
}

// ------------------------------------------------------------- backward operators ----
// The backward operators have no derivative of their own. Their outputs get a node that says so
// when a second derivative is asked for (e.g. a gradient penalty), instead of silently wrong
// second derivatives; a backward pass with create_graph=True that never differentiates them
// again works.
struct FirstOrderOnly : public torch::autograd::Function<FirstOrderOnly> {
  static variable_list forward(AutogradContext*, at::TensorList inputs,
                               const std::function<variable_list()>& run) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return run();
  }
  static variable_list backward(AutogradContext*, variable_list) {
    TORCH_CHECK(false,
                "adain_cuda: double backward (gradients of gradients, e.g. a gradient penalty) "
                "is not supported by the fused kernels; use adain_cuda.reference for that "
                "computation.");
  }
};

// run() below autograd, through FirstOrderOnly when any of `inputs` is being recorded.
variable_list first_order_only(const std::vector<at::Tensor>& inputs,
                               const std::function<variable_list()>& run) {
  if (recording(inputs)) return FirstOrderOnly::apply(at::TensorList(inputs), run);
  at::AutoDispatchBelowADInplaceOrView guard;
  return run();
}

at::Tensor stats_backward_autograd(const at::Tensor& grad_stats, const at::Tensor& x,
                                   const at::Tensor& stats, bool unbiased) {
  return first_order_only({grad_stats, x, stats}, [&]() -> variable_list {
    return {stats_backward_op().call(grad_stats, x, stats, unbiased)};
  })[0];
}

std::tuple<at::Tensor, at::Tensor> adain_backward_autograd(const at::Tensor& grad_out,
                                                           const at::Tensor& content,
                                                           const at::Tensor& content_stats,
                                                           const at::Tensor& style_std,
                                                           double alpha, bool unbiased) {
  const auto outs =
      first_order_only({grad_out, content, content_stats, style_std}, [&]() -> variable_list {
        auto [grad_content, grad_stats] =
            adain_backward_op().call(grad_out, content, content_stats, style_std, alpha, unbiased);
        return {grad_content, grad_stats};
      });
  return {outs[0], outs[1]};
}

std::vector<at::Tensor> losses_backward_autograd(const at::Tensor& grad_style,
                                                 const at::Tensor& grad_content,
                                                 at::TensorList inputs, at::TensorList targets,
                                                 const std::optional<at::Tensor>& content_target,
                                                 const at::Tensor& stats,
                                                 at::ArrayRef<double> weights, bool unbiased) {
  std::vector<at::Tensor> all{grad_style, grad_content, stats};
  all.insert(all.end(), inputs.begin(), inputs.end());
  all.insert(all.end(), targets.begin(), targets.end());
  if (content_target.has_value()) all.push_back(*content_target);
  return first_order_only(all, [&]() -> variable_list {
    return losses_backward_op().call(grad_style, grad_content, inputs, targets, content_target,
                                     stats, weights, unbiased);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(adain_cuda, Autograd, m) {
  m.impl("channel_stats", &channel_stats_autograd);
  m.impl("adain", &adain_autograd);
  m.impl("adain_from_stats", &adain_from_stats_autograd);
  m.impl("losses", &losses_autograd);
  m.impl("channel_stats_backward", &stats_backward_autograd);
  m.impl("adain_backward", &adain_backward_autograd);
  m.impl("losses_backward", &losses_backward_autograd);
}

}  // namespace adain
