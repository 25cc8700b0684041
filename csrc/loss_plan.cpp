// Argument checks and the packed-statistics layout of the fused losses (shared by CPU and CUDA).
#include "loss_plan.h"

#include "op_setup.h"
#include "plane.h"

namespace adain {

LossPlan plan_losses(const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& targets,
                     const std::optional<at::Tensor>& content_target,
                     const std::vector<double>& weights, double eps) {
  TORCH_CHECK_VALUE(!inputs.empty(), "inputs is empty: pass one feature map per layer");
  TORCH_CHECK_VALUE(
      targets.size() == inputs.size() || (targets.empty() && content_target.has_value()),
      "inputs and targets must have the same length, got ", inputs.size(), " and ", targets.size());
  TORCH_CHECK_VALUE(weights.size() == targets.size(),
                    "layer_weights must have one weight per layer (", targets.size(), "), got ",
                    weights.size());
  check_eps(eps);
  const auto dtype = inputs[0].scalar_type();
  const auto device = inputs[0].device();
  LossPlan plan;
  for (size_t l = 0; l < inputs.size(); ++l) {
    const at::Tensor& x = inputs[l];
    const std::string where = "layer " + std::to_string(l);
    TORCH_CHECK_VALUE(x.dim() == 4, where, ": input must be a 4-D (N, C, H, W) map, got shape ",
                      x.sizes());
    TORCH_CHECK_VALUE(at::isFloatingType(x.scalar_type()), where,
                      ": input must be a floating-point map, got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.scalar_type() == dtype, where, ": input dtype ", x.scalar_type(),
                      " differs from layer 0's ", dtype, "; all layers must share one dtype");
    TORCH_CHECK_VALUE(x.device() == device, where, ": input is on ", x.device(),
                      " but layer 0 is on ", device);
    // An empty batch has no loss (a mean over no elements): refused on every backend alike.
    TORCH_CHECK_VALUE(x.numel() > 0, where, ": input is empty (shape ", x.sizes(),
                      "): a loss needs at least one element in every layer");
    if (l >= targets.size()) continue;
    const at::Tensor& t = targets[l];
    TORCH_CHECK_VALUE(t.device() == device, where, ": target is on ", t.device(),
                      " but the input is on ", device);
    LossLayer layer{plan.stats_numel, x.size(0) * x.size(1), 0, x.size(1), t.dim() == 4};
    if (layer.target_is_map) {
      TORCH_CHECK_VALUE(t.sizes() == x.sizes(), where, ": target shape ", t.sizes(),
                        " differs from the input's ", x.sizes());
      TORCH_CHECK_VALUE(t.scalar_type() == dtype, where, ": target dtype ", t.scalar_type(),
                        " differs from the input's ", dtype);
      layer.target_planes = layer.planes;
    } else {
      TORCH_CHECK_VALUE(t.dim() == 3 && t.size(0) == 2 && t.size(2) == x.size(1) &&
                            (t.size(1) == 1 || t.size(1) == x.size(0)),
                        where, ": target statistics must have shape (2, N or 1, C) = (2, ",
                        x.size(0), " or 1, ", x.size(1), "), got ", t.sizes());
      TORCH_CHECK_VALUE(t.scalar_type() == stats_dtype(dtype), where,
                        ": target statistics must be ", stats_dtype(dtype), ", got ",
                        t.scalar_type());
      layer.target_planes = t.size(1) * x.size(1);
    }
    plan.stats_numel += 2 * (layer.planes + layer.target_planes);
    plan.layers.push_back(layer);
  }
  if (content_target.has_value()) {
    const at::Tensor& t = *content_target;
    TORCH_CHECK_VALUE(t.sizes() == inputs.back().sizes(), "content_target shape ", t.sizes(),
                      " differs from the last input's ", inputs.back().sizes());
    TORCH_CHECK_VALUE(t.scalar_type() == dtype && t.device() == device, "content_target must be ",
                      dtype, " on ", device, ", got ", t.scalar_type(), " on ", t.device());
  }
  return plan;
}

void check_loss_backward(const LossPlan& plan, const at::Tensor& maps, const at::Tensor& stats,
                         const at::Tensor& grad_style, const at::Tensor& grad_content) {
  const auto sdt = stats_dtype(maps.scalar_type());
  TORCH_CHECK_VALUE(stats.dim() == 1 && stats.numel() == plan.stats_numel, "stats must be the 1-D ",
                    plan.stats_numel, " packed statistics of the forward, got shape ",
                    stats.sizes());
  TORCH_CHECK_VALUE(stats.scalar_type() == sdt && stats.device() == maps.device(), "stats must be ",
                    sdt, " on ", maps.device(), ", got ", stats.scalar_type(), " on ",
                    stats.device());
  for (const auto& [g, name] :
       {std::pair{&grad_style, "grad_style"}, std::pair{&grad_content, "grad_content"}}) {
    TORCH_CHECK_VALUE(g->numel() == 1 && at::isFloatingType(g->scalar_type()), name,
                      " must be one floating-point value, got shape ", g->sizes(), " of ",
                      g->scalar_type());
    TORCH_CHECK_VALUE(g->device() == maps.device(), name, " must be on ", maps.device(), ", got ",
                      g->device());
  }
}

}  // namespace adain
