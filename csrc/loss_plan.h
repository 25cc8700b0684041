// Shared declarations for the fused training losses (docs/numerics.md, "Losses").
//
// One operator computes, in one pass over the feature maps:
//   style   = sum_l w_l * [ mean_{n,c} (mu_l(x) - mu_l(t))^2 + mean_{n,c} (sigma_l(x) -
//   sigma_l(t))^2 ]
//             over the first len(targets) layers (targets are maps, or (2, N or 1, C) [mean; std]);
//   content = mean((x_last - content_target)^2)  when a content target is given.
// The statistics it computes are saved, packed in one float32 (float64) tensor, for the backward.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace adain {

// Where layer l's statistics live in the packed tensor:
//   [input mean (N*C), input std (N*C), target mean (Nt*C), target std (Nt*C)] per style layer.
struct LossLayer {
  int64_t offset;         // start of this layer's block
  int64_t planes;         // N * C of the input
  int64_t target_planes;  // Nt * C
  int64_t channels;
  bool target_is_map;  // else target holds (2, Nt, C) statistics
};

struct LossPlan {
  std::vector<LossLayer> layers;  // style layers only
  int64_t stats_numel = 0;
};

// Checks every argument (messages name the layer index) and lays out the packed statistics.
LossPlan plan_losses(const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& targets,
                     const std::optional<at::Tensor>& content_target,
                     const std::vector<double>& weights, double eps);

// The backward's own arguments against the plan: the packed statistics (stats_numel of the
// statistics dtype) and the two incoming gradients (one element each), all on the maps' device.
void check_loss_backward(const LossPlan& plan, const at::Tensor& maps, const at::Tensor& stats,
                         const at::Tensor& grad_style, const at::Tensor& grad_content);

}  // namespace adain
