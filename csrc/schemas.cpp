// Operator schemas and the Python module entry point.
//
// The schemas are defined once here; csrc/cpu and csrc/cuda register one implementation per
// backend (both start from the shared set-up in op_setup.h), and adain_cuda/ops registers the
// fake (meta) kernels and autograd formulas.
#include <Python.h>
#include <torch/library.h>

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
  // Training losses (csrc/loss_plan.h): style over the first len(targets) layers, content between
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
