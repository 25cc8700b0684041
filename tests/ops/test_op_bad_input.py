"""Bad input gets an error that names the argument, and the fallback warns once."""

import shutil
import subprocess
import warnings

import pytest
import torch

import adain_cuda
from adain_cuda import reference
from adain_cuda.ops import _library

from helpers import features


def ok(shape=(2, 4, 5, 5)):
    return features(shape, "cpu")


@pytest.mark.parametrize("content, style, match", [
    (lambda: ok()[0], lambda: ok(), "content must be a 4-D"),
    (lambda: ok(), lambda: ok().flatten(2), "style must be a 4-D"),
    (lambda: ok(), lambda: ok((2, 5, 5, 5)), "same number of channels"),
    (lambda: ok(), lambda: ok((3, 4, 5, 5)), "style batch must be 1"),
    (lambda: ok().to(torch.int32), lambda: ok().to(torch.int32), "content must be float32"),
    (lambda: ok(), lambda: ok().double(), "same dtype"),
    (lambda: ok(), lambda: ok((2, 4, 0, 5)), "style has no spatial elements"),
    (lambda: ok((2, 4, 5, 0)), lambda: ok(), "content has no spatial elements"),
    (lambda: ok(), lambda: ok().to("meta"), "same device"),
])
def test_bad_tensors(content, style, match):
    with pytest.raises(ValueError, match=match):
        adain_cuda.adain(content(), style())


def test_not_a_tensor():
    with pytest.raises(TypeError, match="style must be a torch.Tensor"):
        adain_cuda.adain(ok(), [1.0, 2.0])


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 1.5}, "alpha must be in"), ({"alpha": -0.1}, "alpha must be in"),
    ({"eps": 0.0}, "eps must be a positive"), ({"eps": -1e-5}, "eps must be a positive"),
    ({"eps": float("nan")}, "eps must be a positive"),
])
def test_bad_scalars(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adain_cuda.adain(ok(), ok(), **kwargs)


@pytest.mark.parametrize("mean_shape, match", [((3, 4), "style_mean must have shape"),
                                              ((2, 5), "style_mean must have shape"),
                                              ((2, 4, 1), "style_mean must have shape")])
def test_bad_style_stats(mean_shape, match):
    with pytest.raises(ValueError, match=match):
        adain_cuda.adain_from_stats(ok(), torch.zeros(mean_shape), torch.ones(2, 4))
    with pytest.raises(ValueError, match="same shape"):
        adain_cuda.adain_from_stats(ok(), torch.zeros(1, 4), torch.ones(2, 4))


# Planes with no element but N*C > 0: once read past the end of the tensors and crashed the
# process. The public functions and the registered ops (any backend) refuse them by name.
EMPTY_PLANES = [
    ("channel_stats", lambda t: (t(2, 8, 0, 4),)),
    ("adain", lambda t: (t(2, 8, 0, 4), t(1, 8, 0, 3))),
    ("adain", lambda t: (t(0, 8, 4, 4), t(1, 8, 0, 3))),
    ("adain", lambda t: (t(2, 8, 4, 4), t(1, 8, 3, 0))),
    ("adain", lambda t: (t(2, 8, 0, 4), t(1, 8, 4, 4))),
    ("adain_from_stats", lambda t: (t(2, 8, 4, 0), t(1, 8).zero_(), t(1, 8).fill_(1.0))),
]


@pytest.mark.parametrize("name, args", EMPTY_PLANES)
def test_empty_planes_are_refused_clearly(device, name, args):
    def t(*shape):
        return torch.randn(*shape, device=device)  # (1, 8) for statistics

    with pytest.raises(ValueError, match="no spatial elements"):
        getattr(adain_cuda, name)(*args(t))
    extra = {"channel_stats": (1e-5, True), "adain": (1.0, 1e-5, True), "adain_from_stats": (1.0, 1e-5, True)}
    with pytest.raises(RuntimeError, match="no spatial elements"):
        getattr(torch.ops.adain_cuda, name)(*args(t), *extra[name])


def test_empty_batches_and_channels_still_work(device):
    mean, std = adain_cuda.channel_stats(torch.randn(0, 8, 4, 4, device=device))
    assert mean.shape == std.shape == (0, 8)
    assert adain_cuda.channel_stats(torch.randn(2, 0, 4, 4, device=device))[0].shape == (2, 0)
    out = adain_cuda.adain(torch.randn(0, 8, 4, 4, device=device), torch.randn(1, 8, 3, 3, device=device))
    assert out.shape == (0, 8, 4, 4)


def test_op_level_checks_name_the_argument():
    # Calling the registered op directly (bypassing the Python checks) still fails clearly.
    with pytest.raises(RuntimeError, match="alpha must be in"):
        torch.ops.adain_cuda.adain(ok(), ok(), 2.0, 1e-5, True)
    with pytest.raises(RuntimeError, match="same number of channels"):
        torch.ops.adain_cuda.adain(ok(), ok((1, 3, 2, 2)), 1.0, 1e-5, True)


def test_fallback_warns_once_and_uses_reference(monkeypatch):
    monkeypatch.setattr(_library, "LOAD_ERROR", "ImportError: simulated missing binary")
    monkeypatch.setattr(_library, "_warned", set())
    content, style = ok(), ok((1, 4, 3, 3))
    with pytest.warns(RuntimeWarning, match="simulated missing binary"):
        out = adain_cuda.adain(content, style)
    torch.testing.assert_close(out, reference.adain(content, style))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call does not warn again
        adain_cuda.adain(content, style)
        mean, std = adain_cuda.channel_stats(content)
    assert mean.dtype == torch.float32


def test_extension_shares_the_cxx_runtime_with_torch():
    """An extension with its own (static) C++ runtime throws exceptions that torch's runtime may
    not catch: on the GPU machine an argument error raised in C++ crashed the process. The built
    binary must leave the runtime's exception machinery to the shared libstdc++ (setup.py)."""
    nm = shutil.which("nm")
    if not _library.loaded() or nm is None:
        pytest.skip("needs the compiled extension and binutils' nm")
    from adain_cuda import _C

    defined = subprocess.run([nm, "-D", "--defined-only", _C.__file__], capture_output=True, text=True,
                             check=True).stdout
    assert "__cxa_throw" not in defined, f"{_C.__file__} has a statically linked libstdc++; rebuild it"
