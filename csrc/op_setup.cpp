// Argument checks, kernel layouts and output allocation shared by the CPU and CUDA entry points.
#include "op_setup.h"

#include <cmath>
#include <utility>

namespace adain {

void check_eps(double eps) {
  // The statistics are float32: an eps past kEpsMax overflows (var + eps) to infinity there and
  // the output to NaN, so it is refused instead.
  TORCH_CHECK_VALUE(eps > 0.0 && eps <= kEpsMax, "eps must be a positive number no larger than ",
                    kEpsMax, ", got ", eps);
}

namespace {

void check_feature_map(const at::Tensor& x, const char* name) {
  TORCH_CHECK_VALUE(x.dim() == 4, name, " must be a 4-D (N, C, H, W) tensor, got ", x.dim(),
                    " dimensions with shape ", x.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(x.scalar_type()), name,
                    " must be float32, float16, bfloat16 or float64, got ", x.scalar_type());
  // Statistics of a plane with no element are undefined; a map with planes must have pixels.
  TORCH_CHECK_VALUE(x.size(0) * x.size(1) == 0 || x.size(2) * x.size(3) > 0, name,
                    " has no spatial elements (shape ", x.sizes(),
                    "): every (n, c) plane needs at least one element");
}

void check_scalars(double alpha, double eps) {
  TORCH_CHECK_VALUE(alpha >= 0.0 && alpha <= 1.0, "alpha must be in [0, 1], got ", alpha);
  check_eps(eps);
}

void check_pair(const at::Tensor& content, const at::Tensor& style) {
  check_feature_map(content, "content");
  check_feature_map(style, "style");
  TORCH_CHECK_VALUE(content.device() == style.device(),
                    "content and style must be on the same device, got ", content.device(), " and ",
                    style.device());
  TORCH_CHECK_VALUE(content.scalar_type() == style.scalar_type(),
                    "content and style must have the same dtype, got ", content.scalar_type(),
                    " and ", style.scalar_type());
  TORCH_CHECK_VALUE(content.size(1) == style.size(1),
                    "content and style must have the same number of channels, got ",
                    content.size(1), " and ", style.size(1));
  TORCH_CHECK_VALUE(style.size(0) == content.size(0) || style.size(0) == 1,
                    "style batch must be 1 or equal content batch ", content.size(0), ", got ",
                    style.size(0));
}

// A statistics tensor an operator is handed: (2, N, C) with `packed` (the op's own statistics),
// else (N, C) or, with `broadcast`, (1, C); on x's device in the statistics dtype, so no kernel
// reads past it or is handed a host pointer.
void check_stats_arg(const at::Tensor& t, const char* name, const at::Tensor& x, bool packed,
                     bool broadcast) {
  const int64_t n = x.size(0), c = x.size(1);
  if (packed) {
    TORCH_CHECK_VALUE(t.dim() == 3 && t.size(0) == 2 && t.size(1) == n && t.size(2) == c, name,
                      " must have shape (2, N, C) = (2, ", n, ", ", c, "), got ", t.sizes());
  } else {
    TORCH_CHECK_VALUE(
        t.dim() == 2 && t.size(1) == c && (t.size(0) == n || (broadcast && t.size(0) == 1)), name,
        " must have shape (N, C)", broadcast ? " or (1, C)" : "", " = (", n,
        broadcast ? " or 1" : "", ", ", c, "), got ", t.sizes());
  }
  TORCH_CHECK_VALUE(t.device() == x.device(), name, " must be on ", x.device(),
                    " like the maps, got ", t.device());
  const auto want = stats_dtype(x.scalar_type());
  TORCH_CHECK_VALUE(t.scalar_type() == want, name, " must be ", want, " for ", x.scalar_type(),
                    " maps, got ", t.scalar_type());
}

void check_style_stats(const at::Tensor& content, const at::Tensor& mean, const at::Tensor& std_) {
  check_stats_arg(mean, "style_mean", content, false, true);
  check_stats_arg(std_, "style_std", content, false, true);
  TORCH_CHECK_VALUE(mean.size(0) == std_.size(0),
                    "style_mean and style_std must have the same shape");
}

// `rows` (N, C) statistics of x's planes in one allocation: (rows, N, C).
at::Tensor new_stats(const at::Tensor& x, int64_t rows) {
  return at::empty({rows, x.size(0), x.size(1)}, x.options().dtype(stats_dtype(x.scalar_type())));
}

// The (rows, C) block of the 1-D packed `stats` that starts at element `offset`.
at::Tensor stats_block(const at::Tensor& stats, int64_t offset, int64_t rows, int64_t c) {
  return stats.narrow(0, offset, rows * c).view({rows, c});
}

// The content side of a forward call: the content in a kernel layout, the output and the
// statistics (`style_rows` more rows of them for the style's); an empty content gets mean 0 and
// rstd 1/sqrt(eps), as a constant plane would.
ForwardCall forward_outputs(const at::Tensor& content, double eps, int64_t style_rows) {
  ForwardCall call;
  call.x = to_kernel_layout(content);
  call.out = at::empty_like(call.x);
  const int64_t n = call.x.size(0), c = call.x.size(1);
  if (style_rows == 0) {
    call.stats = new_stats(call.x, 2);
    call.c_mean = call.stats[0];
    call.c_rstd = call.stats[1];
  } else {
    call.stats = at::empty({2 * (n + style_rows) * c},
                           call.x.options().dtype(stats_dtype(call.x.scalar_type())));
    call.c_mean = stats_block(call.stats, 0, n, c);
    call.c_rstd = stats_block(call.stats, n * c, n, c);
    call.style_mean = stats_block(call.stats, 2 * n * c, style_rows, c);
    call.style_std = stats_block(call.stats, (2 * n + style_rows) * c, style_rows, c);
  }
  call.empty = call.x.numel() == 0;
  if (call.empty) {
    call.c_mean.zero_();
    call.c_rstd.fill_(1.0 / std::sqrt(eps));
  }
  return call;
}

}  // namespace

at::Tensor to_kernel_layout(const at::Tensor& x) {
  if (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast)) return x;
  return x.contiguous();
}

PlaneShape plane_shape(const at::Tensor& x) {
  PlaneShape s{x.size(0), x.size(1), x.size(2) * x.size(3), Layout::kNCHW};
  // A tensor contiguous in both formats (C == 1 or H * W == 1) has the same offsets in both.
  if (!x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    s.layout = Layout::kNHWC;
  }
  return s;
}

at::Tensor in_layout_of(const at::Tensor& t, const at::Tensor& x) {
  return t.contiguous(plane_shape(x).layout == Layout::kNHWC ? at::MemoryFormat::ChannelsLast
                                                             : at::MemoryFormat::Contiguous);
}

StatsCall setup_channel_stats(const at::Tensor& x_in, double eps) {
  check_feature_map(x_in, "x");
  check_scalars(1.0, eps);
  StatsCall call;
  call.x = to_kernel_layout(x_in);
  call.stats = new_stats(call.x, 2);
  call.mean = call.stats[0];
  call.std_ = call.stats[1];
  call.empty = call.mean.numel() == 0;
  return call;
}

StatsBackwardCall setup_channel_stats_backward(const at::Tensor& grad_stats, const at::Tensor& x_in,
                                               const at::Tensor& stats) {
  check_feature_map(x_in, "x");
  check_stats_arg(stats, "stats", x_in, true, false);
  // The gradient may come in another floating dtype (autograd's); it is converted below.
  TORCH_CHECK_VALUE(grad_stats.dim() == 3 && grad_stats.size(0) == 2 &&
                        grad_stats.size(1) == x_in.size(0) && grad_stats.size(2) == x_in.size(1),
                    "grad_stats must have shape (2, N, C) = (2, ", x_in.size(0), ", ", x_in.size(1),
                    "), got ", grad_stats.sizes());
  TORCH_CHECK_VALUE(
      grad_stats.device() == x_in.device() && at::isFloatingType(grad_stats.scalar_type()),
      "grad_stats must be floating point on ", x_in.device(), ", got ", grad_stats.scalar_type(),
      " on ", grad_stats.device());
  StatsBackwardCall call;
  call.x = to_kernel_layout(x_in);
  const auto sdt = stats_dtype(call.x.scalar_type());
  const at::Tensor g = grad_stats.to(sdt), s = stats.to(sdt);
  call.grad_mean = g[0].contiguous();
  call.grad_std = g[1].contiguous();
  call.mean = s[0].contiguous();
  call.std_ = s[1].contiguous();
  call.grad_x = at::empty_like(call.x);
  call.empty = call.x.numel() == 0;
  return call;
}

ForwardCall setup_adain(const at::Tensor& content, const at::Tensor& style, double alpha,
                        double eps) {
  check_pair(content, style);
  check_scalars(alpha, eps);
  ForwardCall call = forward_outputs(content, eps, style.size(0));
  call.style = to_kernel_layout(style);
  return call;
}

ForwardCall setup_adain_from_stats(const at::Tensor& content, const at::Tensor& style_mean,
                                   const at::Tensor& style_std, double alpha, double eps) {
  check_feature_map(content, "content");
  check_style_stats(content, style_mean, style_std);
  check_scalars(alpha, eps);
  ForwardCall call = forward_outputs(content, eps, 0);
  call.style_mean = style_mean.contiguous();
  call.style_std = style_std.contiguous();
  return call;
}

BackwardCall setup_adain_backward(const at::Tensor& grad_out, const at::Tensor& content,
                                  const at::Tensor& content_stats, const at::Tensor& style_std) {
  check_feature_map(content, "content");
  TORCH_CHECK_VALUE(grad_out.sizes() == content.sizes(), "grad_out must have the content's shape ",
                    content.sizes(), ", got ", grad_out.sizes());
  TORCH_CHECK_VALUE(
      grad_out.device() == content.device() && at::isFloatingType(grad_out.scalar_type()),
      "grad_out must be floating point on ", content.device(), ", got ", grad_out.scalar_type(),
      " on ", grad_out.device());
  check_stats_arg(content_stats, "content_stats", content, true, false);
  check_stats_arg(style_std, "style_std", content, false, true);
  BackwardCall call;
  call.x = to_kernel_layout(content);
  // The kernels read grad_out and content with one index: give grad_out the content's layout.
  call.grad_out = in_layout_of(grad_out.to(call.x.scalar_type()), call.x);
  call.c_mean = content_stats[0].contiguous();
  call.c_rstd = content_stats[1].contiguous();
  call.style_std = style_std.contiguous();
  call.grad_x = at::empty_like(call.x);
  call.grad_stats = new_stats(call.x, 2);
  call.g_mean = call.grad_stats[0];
  call.g_std = call.grad_stats[1];
  call.empty = call.x.numel() == 0;
  if (call.empty) call.grad_stats.zero_();
  return call;
}

}  // namespace adain
