// Operator schemas and the Python module entry point.
//
// The schemas are defined once here; csrc/cpu and csrc/cuda register one implementation per
// backend (both start from the shared set-up in op_setup.h), autograd.cpp registers the
// autograd formulas, and adain_cuda/ops registers the fake (meta) kernels.
#include <Python.h>
#include <torch/library.h>

#include <iterator>
#include <string>
#include <vector>

#include "path_rules.h"
#include "plane.h"

#if __has_include("adain_build_info.h")
#include "adain_build_info.h"  // written by setup.py
#endif
#ifndef ADAIN_BUILD_DESCRIPTION
#define ADAIN_BUILD_DESCRIPTION "unknown build"
#endif

TORCH_LIBRARY(adain_cuda, m) {
  // Statistics are float32 (float64 for float64 input) and come packed, one allocation per call:
  //   channel_stats: (2, N, C) = [mean; std]
  //   adain: 1-D [content mean (N*C) | content rstd (N*C) | style mean (Ns*C) | style std (Ns*C)]
  //   adain_from_stats: (2, N, C) = [content mean; content rstd]
  // The content statistics are what the backward reads (autograd.cpp saves them).
  m.def("channel_stats(Tensor x, float eps, bool unbiased) -> Tensor");
  m.def(
      "channel_stats_backward(Tensor grad_stats, Tensor x, Tensor stats, bool unbiased) -> Tensor");
  m.def(
      "adain(Tensor content, Tensor style, float alpha, float eps, bool unbiased) -> "
      "(Tensor out, Tensor stats)");
  m.def(
      "adain_from_stats(Tensor content, Tensor style_mean, Tensor style_std, float alpha, "
      "float eps, bool unbiased) -> (Tensor out, Tensor content_stats)");
  // grad_style_stats: (2, N, C) = [d/d style mean; d/d style std] for each content plane.
  m.def(
      "adain_backward(Tensor grad_out, Tensor content, Tensor content_stats, Tensor style_std, "
      "float alpha, bool unbiased) -> (Tensor grad_content, Tensor grad_style_stats)");
  // Training losses (csrc/loss_plan.h): style over the first len(targets) layers, content between
  // the last input and content_target; `stats` packs the statistics saved for backward.
  m.def(
      "losses(Tensor[] inputs, Tensor[] targets, Tensor? content_target, float[] weights, "
      "float eps, bool unbiased) -> (Tensor style_loss, Tensor content_loss, Tensor stats)");
  m.def(
      "losses_backward(Tensor grad_style, Tensor grad_content, Tensor[] inputs, Tensor[] targets, "
      "Tensor? content_target, Tensor stats, float[] weights, bool unbiased) -> Tensor[]");
  // Feature-map operators of the fast networks (layer_setup.h), channels_last, inference only.
  m.def("max_pool2x2(Tensor x) -> Tensor");
  m.def("subpixel_interleave(Tensor y, int out_channels) -> Tensor");
  m.def(
      "conv3x3_reflect(Tensor x, Tensor weight, Tensor? bias, bool relu, bool channels_last_out) "
      "-> Tensor");
  // CPU only: the reflection-padded 3x3 convolution as Winograd F(2x2, 3x3) (layer_setup.h).
  m.def("winograd_conv3x3_reflect(Tensor x, Tensor weights, Tensor bias, bool relu) -> Tensor");
  // Which CUDA kernel path a call would take ("warp", "block", "cluster", "general"; "cpu" on the
  // CPU), and forcing one for every later call ("auto" restores the default choice); returns the
  // path forced before, so that a caller can restore it.
  m.def("kernel_path(Tensor content, bool backward) -> str");
  m.def("set_kernel_path(str path) -> str", [](c10::string_view path) {
    for (int i = 0; i < int(std::size(adain::kKernelPathNames)); ++i) {
      if (path == adain::kKernelPathNames[i]) {
        const auto previous = adain::forced_kernel_path().exchange(adain::KernelPath(i));
        return std::string(adain::kernel_path_name(previous));
      }
    }
    TORCH_CHECK_VALUE(false, "kernel path must be auto, warp, block, cluster or general, got '",
                      path, "'");
  });
  // The CUDA path rules (path_rules.h) as plain functions, so that the CPU build tests them:
  // "cluster" (device_major, ptx_version, binary_version) and "style_in_kernel" (content_batch,
  // content_plane, style_batch, style_plane, style_channels_last, warp_path).
  m.def("path_rule(str rule, int[] args) -> bool", [](std::string rule, std::vector<int64_t> a) {
    if (rule == "cluster" && a.size() == 3) {
      return adain::cluster_path_allowed(int(a[0]), int(a[1]), int(a[2]));
    }
    if (rule == "style_in_kernel" && a.size() == 6) {
      return adain::style_in_fused_kernel(a[0], a[1], a[2], a[3], a[4] != 0, a[5] != 0);
    }
    TORCH_CHECK_VALUE(false, "unknown path rule '", rule, "' or wrong number of arguments (",
                      a.size(), ")");
    return false;
  });
  // What this binary was compiled for, read by `adain-cuda info` (adain_cuda.ops.build_info).
  m.def("build_info() -> str", [] { return std::string(ADAIN_BUILD_DESCRIPTION); });
}

// Importing adain_cuda._C loads this library and so runs the registrations above. The module
// itself exposes nothing: everything is reached through torch.ops.adain_cuda.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
