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


def ok64(shape, seed):
    return features(shape, "cpu", torch.float64, seed=seed)


@pytest.mark.parametrize(
    "content, style, match",
    [
        (lambda: ok()[0], lambda: ok(), "content must be a 4-D"),
        (lambda: ok(), lambda: ok().flatten(2), "style must be a 4-D"),
        (lambda: ok(), lambda: ok((2, 5, 5, 5)), "same number of channels"),
        (lambda: ok(), lambda: ok((3, 4, 5, 5)), "style batch must be 1"),
        (lambda: ok().to(torch.int32), lambda: ok().to(torch.int32), "content must be float32"),
        (lambda: ok(), lambda: ok().double(), "same dtype"),
        (lambda: ok(), lambda: ok((2, 4, 0, 5)), "style has no spatial elements"),
        (lambda: ok((2, 4, 5, 0)), lambda: ok(), "content has no spatial elements"),
        (lambda: ok(), lambda: ok().to("meta"), "same device"),
    ],
)
def test_bad_tensors(content, style, match):
    with pytest.raises(ValueError, match=match):
        adain_cuda.adain(content(), style())


def test_not_a_tensor():
    with pytest.raises(TypeError, match="style must be a torch.Tensor"):
        adain_cuda.adain(ok(), [1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 1.5}, "alpha must be in"),
        ({"alpha": -0.1}, "alpha must be in"),
        ({"eps": 0.0}, "eps must be a positive"),
        ({"eps": -1e-5}, "eps must be a positive"),
        ({"eps": float("nan")}, "eps must be a positive"),
        ({"eps": float("inf")}, "eps must be a positive"),
        ({"eps": 1e300}, "no larger than"),
        ({"eps": 1e31}, "no larger than"),
    ],
)
def test_bad_scalars(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adain_cuda.adain(ok(), ok(), **kwargs)


# eps is refused where float32 statistics would overflow, by the public functions and by the
# registered operators alike; every eps they take gives a finite result.
@pytest.mark.parametrize("eps", [1e300, 1e31, float("inf")])
@pytest.mark.parametrize(
    "call",
    [
        lambda x, eps: torch.ops.adain_cuda.adain(x, x, 1.0, eps, True),
        lambda x, eps: torch.ops.adain_cuda.channel_stats(x, eps, True),
        lambda x, eps: adain_cuda.channel_stats(x, eps=eps),
        lambda x, eps: adain_cuda.style_loss([x], [x], eps=eps),
    ],
    ids=["op_adain", "op_channel_stats", "channel_stats", "style_loss"],
)
def test_eps_that_overflows_float32_is_refused_everywhere(call, eps):
    pytest.importorskip("adain_cuda._C")
    with pytest.raises(ValueError, match="eps must be a positive"):
        call(ok(), eps)


@pytest.mark.parametrize("eps", [1e-12, 1.0, 1e10, 1e30])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_eps_taken_gives_a_finite_result(eps, dtype):
    x = ok().to(dtype)
    assert torch.isfinite(adain_cuda.adain(x, x * 3 + 1, eps=eps)).all()


@pytest.mark.parametrize(
    "mean_shape, match",
    [
        ((3, 4), "style_mean must have shape"),
        ((2, 5), "style_mean must have shape"),
        ((2, 4, 1), "style_mean must have shape"),
    ],
)
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
    with pytest.raises(ValueError, match="no spatial elements"):
        getattr(torch.ops.adain_cuda, name)(*args(t), *extra[name])


def test_empty_batches_and_channels_still_work(device):
    mean, std = adain_cuda.channel_stats(torch.randn(0, 8, 4, 4, device=device))
    assert mean.shape == std.shape == (0, 8)
    assert adain_cuda.channel_stats(torch.randn(2, 0, 4, 4, device=device))[0].shape == (2, 0)
    out = adain_cuda.adain(torch.randn(0, 8, 4, 4, device=device), torch.randn(1, 8, 3, 3, device=device))
    assert out.shape == (0, 8, 4, 4)


def test_op_level_checks_name_the_argument():
    # The registered op checks its arguments itself (the public functions rely on it).
    with pytest.raises(ValueError, match="alpha must be in"):
        torch.ops.adain_cuda.adain(ok(), ok(), 2.0, 1e-5, True)
    with pytest.raises(ValueError, match="same number of channels"):
        torch.ops.adain_cuda.adain(ok(), ok((1, 3, 2, 2)), 1.0, 1e-5, True)


def test_fallback_warns_once_and_uses_reference(monkeypatch):
    monkeypatch.setattr(_library, "LOAD_ERROR", "ImportError: simulated missing binary")
    monkeypatch.setattr(_library, "KERNEL_DEVICE_TYPES", frozenset())
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

    defined = subprocess.run(
        [nm, "-D", "--defined-only", _C.__file__], capture_output=True, text=True, check=True
    ).stdout
    assert "__cxa_throw" not in defined, f"{_C.__file__} has a statically linked libstdc++; rebuild it"


def _adain_by_hand(x, s, alpha, unbiased, eps=1e-5):
    """AdaIN in float64 from the definition, independent of adain_cuda.reference."""
    x, s = x.double(), s.double()
    k = 1 if unbiased else 0

    def stats(t):
        flat = t.flatten(2)
        mean = flat.mean(-1)
        var = ((flat - mean[..., None]) ** 2).sum(-1) / (flat.shape[-1] - k)
        return mean[..., None, None], (var + eps).sqrt()[..., None, None]

    (mx, sx), (ms, ss) = stats(x), stats(s)
    return alpha * (ss * (x - mx) / sx + ms) + (1 - alpha) * x


def test_fallback_keeps_every_argument(monkeypatch):
    """The reference fallback honours alpha, unbiased and the loss layer weights (compared with
    the formulas written out here, not with the reference itself). Seeded float64 maps: the
    comparison is exact up to float64 rounding whatever ran before."""
    monkeypatch.setattr(_library, "LOAD_ERROR", "ImportError: simulated missing binary")
    monkeypatch.setattr(_library, "KERNEL_DEVICE_TYPES", frozenset())
    monkeypatch.setattr(_library, "_warned", {"ImportError: simulated missing binary"})  # warned already
    content, style = ok64((2, 4, 5, 5), 1), ok64((1, 4, 3, 3), 2) * 3 + 1
    for alpha, unbiased in ((0.3, False), (1.0, True), (0.0, True)):
        out = adain_cuda.adain(content, style, alpha=alpha, unbiased=unbiased)
        torch.testing.assert_close(
            out.double(), _adain_by_hand(content, style, alpha, unbiased), rtol=1e-10, atol=1e-12
        )
    mean, std = adain_cuda.channel_stats(content, unbiased=False)
    torch.testing.assert_close(
        std.double(), content.double().flatten(2).var(-1, unbiased=False).add(1e-5).sqrt(), rtol=1e-10, atol=1e-12
    )
    inputs = [ok64((2, 4, 6, 6), 3), ok64((2, 3, 2, 2), 4)]
    targets = [ok64((2, 4, 6, 6), 5) * 2, ok64((2, 3, 2, 2), 6) + 1]
    weights = [0.25, 3.0]
    loss = adain_cuda.style_loss(inputs, targets, layer_weights=weights, unbiased=False)
    expected = 0.0
    for w, x, t in zip(weights, inputs, targets):
        fx, ft = x.double().flatten(2), t.double().flatten(2)
        sx, st = (fx.var(-1, unbiased=False) + 1e-5).sqrt(), (ft.var(-1, unbiased=False) + 1e-5).sqrt()
        expected += w * (((fx.mean(-1) - ft.mean(-1)) ** 2).mean() + ((sx - st) ** 2).mean())
    torch.testing.assert_close(loss.double(), expected, rtol=1e-10, atol=0)


def test_a_binary_built_for_another_torch_is_not_used(monkeypatch):
    if not _library.loaded():
        pytest.skip("no compiled extension here")
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    reason = _library._load()
    assert reason is not None and "built against torch" in reason and "9.9.9" in reason and "rebuild" in reason


def test_the_fallback_warning_points_at_the_callers_line(monkeypatch):
    monkeypatch.setattr(_library, "LOAD_ERROR", "the compiled extension adain_cuda._C is not built; build it")
    monkeypatch.setattr(_library, "KERNEL_DEVICE_TYPES", frozenset())
    monkeypatch.setattr(_library, "_warned", set())
    with pytest.warns(RuntimeWarning) as caught:
        adain_cuda.adain(ok(), ok())
    assert caught[0].filename == __file__
    assert "circular import" not in str(caught[0].message)
