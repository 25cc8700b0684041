// Operator schemas, shared argument checks and the Python module entry point.
//
// The schemas are defined once here; csrc/cpu and csrc/cuda register one implementation per
// backend, and adain_cuda/ops.py registers the fake (meta) kernels and autograd formulas.
#include <Python.h>
#include <torch/library.h>

#include "adain.h"

namespace adain {

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

void check_feature_map(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.dim() == 4, name, " must be a 4-D (N, C, H, W) tensor, got ", x.dim(),
              " dimensions with shape ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), name,
              " must be float32, float16, bfloat16 or float64, got ", x.scalar_type());
}

void check_pair(const at::Tensor& content, const at::Tensor& style, const char* style_name) {
  check_feature_map(content, "content");
  check_feature_map(style, style_name);
  TORCH_CHECK(content.device() == style.device(), "content and ", style_name,
              " must be on the same device, got ", content.device(), " and ", style.device());
  TORCH_CHECK(content.scalar_type() == style.scalar_type(), "content and ", style_name,
              " must have the same dtype, got ", content.scalar_type(), " and ",
              style.scalar_type());
  TORCH_CHECK(content.size(1) == style.size(1), "content and ", style_name,
              " must have the same number of channels, got ", content.size(1), " and ",
              style.size(1));
  TORCH_CHECK(style.size(0) == content.size(0) || style.size(0) == 1, style_name,
              " batch must be 1 or equal content batch ", content.size(0), ", got ",
              style.size(0));
  TORCH_CHECK(content.numel() == 0 || style.size(2) * style.size(3) > 0, style_name,
              " has no spatial elements (shape ", style.sizes(), ")");
}

void check_style_stats(const at::Tensor& content, const at::Tensor& mean, const at::Tensor& std_) {
  check_feature_map(content, "content");
  const auto want = stats_dtype(content.scalar_type());
  for (const auto& [t, name] : {std::pair{&mean, "style_mean"}, std::pair{&std_, "style_std"}}) {
    TORCH_CHECK(t->dim() == 2 && t->size(1) == content.size(1) &&
                    (t->size(0) == content.size(0) || t->size(0) == 1),
                name, " must have shape (N, C) or (1, C) = (", content.size(0), " or 1, ",
                content.size(1), "), got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == want, name, " must be ", want, " for ", content.scalar_type(),
                " content, got ", t->scalar_type());
    TORCH_CHECK(t->device() == content.device(), name, " must be on ", content.device(),
                ", got ", t->device());
  }
  TORCH_CHECK(mean.size(0) == std_.size(0), "style_mean and style_std must have the same shape");
}

void check_scalars(double alpha, double eps) {
  TORCH_CHECK(alpha >= 0.0 && alpha <= 1.0, "alpha must be in [0, 1], got ", alpha);
  TORCH_CHECK(eps > 0.0, "eps must be positive, got ", eps);
}

}  // namespace adain

#if __has_include("adain_build_info.h")
#include "adain_build_info.h"  // written by setup.py
#endif
#ifndef ADAIN_BUILD_DESCRIPTION
#define ADAIN_BUILD_DESCRIPTION "unknown build"
#endif

TORCH_LIBRARY(adain_cuda, m) {
  // Outputs after the first are fp32 (fp64 for fp64 input) statistics saved for backward.
  m.def("channel_stats(Tensor x, float eps, bool unbiased) -> (Tensor mean, Tensor std)");
  m.def(
      "channel_stats_backward(Tensor grad_mean, Tensor grad_std, Tensor x, Tensor mean, "
      "Tensor std, bool unbiased) -> Tensor");
  m.def(
      "adain(Tensor content, Tensor style, float alpha, float eps, bool unbiased) -> "
      "(Tensor out, Tensor content_mean, Tensor content_rstd, Tensor style_mean, "
      "Tensor style_std)");
  m.def(
      "adain_from_stats(Tensor content, Tensor style_mean, Tensor style_std, float alpha, "
      "float eps, bool unbiased) -> (Tensor out, Tensor content_mean, Tensor content_rstd)");
  m.def(
      "adain_backward(Tensor grad_out, Tensor content, Tensor content_mean, "
      "Tensor content_rstd, Tensor style_std, float alpha, bool unbiased) -> "
      "(Tensor grad_content, Tensor grad_style_mean, Tensor grad_style_std)");
  // Training losses (csrc/losses.h): style over the first len(targets) layers, content between
  // the last input and content_target; `stats` packs the statistics saved for backward.
  m.def(
      "losses(Tensor[] inputs, Tensor[] targets, Tensor? content_target, float[] weights, "
      "float eps, bool unbiased) -> (Tensor style_loss, Tensor content_loss, Tensor stats)");
  m.def(
      "losses_backward(Tensor grad_style, Tensor grad_content, Tensor[] inputs, Tensor[] targets, "
      "Tensor? content_target, Tensor stats, float[] weights, bool unbiased) -> Tensor[]");
  // What this binary was compiled for, read by `python -m adain_cuda.info`.
  m.def("build_info() -> str", [] { return std::string(ADAIN_BUILD_DESCRIPTION); });
}

// Importing adain_cuda._C loads this library and so runs the registrations above. The module
// itself exposes nothing: everything is reached through torch.ops.adain_cuda.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
