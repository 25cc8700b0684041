// Argument checks and output allocation of the feature-map operators (layer_setup.h).
#include "layer_setup.h"

namespace adain {
namespace {

void check_map(const at::Tensor& x, const char* op) {
  TORCH_CHECK_VALUE(x.dim() == 4, op, ": the map must be a 4-D (N, C, H, W) tensor, got ", x.dim(),
                    " dimensions with shape ", x.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(x.scalar_type()), op,
                    ": the map must be float32, float16, bfloat16 or float64, got ",
                    x.scalar_type());
}

void check_nhwc_map(const at::Tensor& x, const char* op) {
  check_map(x, op);
  TORCH_CHECK_VALUE(x.is_contiguous(at::MemoryFormat::ChannelsLast), op,
                    ": the map must be channels_last-contiguous (x.contiguous(memory_format="
                    "torch.channels_last)), got strides ",
                    x.strides(), " for shape ", x.sizes());
}

at::Tensor empty_nhwc(const at::Tensor& like, int64_t n, int64_t c, int64_t h, int64_t w) {
  return at::empty({n, c, h, w}, like.options().memory_format(at::MemoryFormat::ChannelsLast));
}

}  // namespace

PoolCall setup_max_pool2x2(const at::Tensor& x) {
  check_nhwc_map(x, "max_pool2x2");
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK_VALUE(h % 2 == 0 && w % 2 == 0,
                    "max_pool2x2: height and width must be even (2x2 windows without overlap or "
                    "remainder), got ",
                    h, "x", w, "; use max_pool2d(ceil_mode=True) for odd sizes");
  return {x, empty_nhwc(x, n, c, h / 2, w / 2), n, c, h, w};
}

InterleaveCall setup_subpixel_interleave(const at::Tensor& y, int64_t out_channels) {
  check_nhwc_map(y, "subpixel_interleave");
  TORCH_CHECK_VALUE(out_channels > 0 && y.size(1) == 4 * out_channels,
                    "subpixel_interleave: the map must hold 4 * out_channels = 4 * ", out_channels,
                    " phase channels, got ", y.size(1));
  TORCH_CHECK_VALUE(y.size(2) >= 2 && y.size(3) >= 2,
                    "subpixel_interleave: the phase map must be at least 2x2 (the small map plus "
                    "one row and column), got ",
                    y.size(2), "x", y.size(3));
  const int64_t n = y.size(0), h = y.size(2) - 1, w = y.size(3) - 1;
  return {y, empty_nhwc(y, n, out_channels, 2 * h, 2 * w), n, out_channels, h, w};
}

DirectConvCall setup_conv3x3_reflect(const at::Tensor& x, const at::Tensor& weight,
                                     const std::optional<at::Tensor>& bias,
                                     bool channels_last_out) {
  check_map(x, "conv3x3_reflect");
  const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK_VALUE(
      weight.dim() == 4 && weight.size(1) == cin && weight.size(2) == 3 && weight.size(3) == 3,
      "conv3x3_reflect: weight must be (out, ", cin, ", 3, 3) for ", cin, " input channels, got ",
      weight.sizes());
  TORCH_CHECK_VALUE(weight.device().is_cpu() &&
                        (weight.scalar_type() == at::kFloat || weight.scalar_type() == at::kDouble),
                    "conv3x3_reflect: weight must be a float32 or float64 CPU tensor (the kernels "
                    "read it on the host), got ",
                    weight.scalar_type(), " on ", weight.device());
  const int64_t cout = weight.size(0);
  at::Tensor b = bias.has_value() ? *bias : at::zeros({cout}, weight.options());
  TORCH_CHECK_VALUE(b.dim() == 1 && b.size(0) == cout && b.device().is_cpu() &&
                        b.scalar_type() == weight.scalar_type(),
                    "conv3x3_reflect: bias must be a (", cout,
                    ",) CPU tensor of the weight's dtype, got ", b.sizes(), " ", b.scalar_type(),
                    " on ", b.device());
  TORCH_CHECK_VALUE(h >= 2 && w >= 2,
                    "conv3x3_reflect: reflection padding needs at least 2x2 pixels, got ", h, "x",
                    w);
  const auto format =
      channels_last_out ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  at::Tensor out = at::empty({n, cout, h, w}, x.options().memory_format(format));
  return {x, out, weight.contiguous(), b.contiguous(), n, cin, cout, h, w};
}

WinogradCall setup_winograd_conv3x3_reflect(const at::Tensor& x, const at::Tensor& weights,
                                            const at::Tensor& bias) {
  const char* op = "winograd_conv3x3_reflect";
  check_nhwc_map(x, op);
  TORCH_CHECK_VALUE(x.scalar_type() == at::kFloat, op, ": the map must be float32, got ",
                    x.scalar_type());
  const int64_t n = x.size(0), cin = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK_VALUE(
      weights.dim() == 3 && weights.size(0) == 16 && weights.size(1) == cin && weights.size(2) > 0,
      op, ": weights must be the transformed kernel (16, ", cin, ", out) for a map of ", cin,
      " channels, got ", weights.sizes());
  TORCH_CHECK_VALUE(weights.scalar_type() == at::kFloat && weights.device() == x.device(), op,
                    ": weights must be float32 on the map's device, got ", weights.scalar_type(),
                    " on ", weights.device());
  const int64_t cout = weights.size(2);
  TORCH_CHECK_VALUE(bias.dim() == 1 && bias.size(0) == cout && bias.scalar_type() == at::kFloat &&
                        bias.device() == x.device(),
                    op, ": bias must be a float32 (", cout, ",) tensor on the map's device, got ",
                    bias.sizes(), " ", bias.scalar_type(), " on ", bias.device());
  TORCH_CHECK_VALUE(h >= 2 && w >= 2, op, ": reflection padding needs at least 2x2 pixels, got ", h,
                    "x", w);
  return {x, weights.contiguous(), bias.contiguous(), empty_nhwc(x, n, cout, h, w), n, cin, cout, h,
          w};
}

}  // namespace adain
