"""The library speaks in its own parameters' names: no message of the API tells its caller to pass a
command-line flag they never typed. The command line puts the same messages in its own words."""

import pytest
import torch

from adain_cuda.cli.report import in_cli_words
from adain_cuda.images.sheet import contact_sheet
from adain_cuda.models import weights
from adain_cuda.stylize import Stylizer, normalise_weights
from adain_cuda.training import TrainConfig

from community_layout import DECODER_CONVS, VGG_CONVS, random_state


def stylizer(**kw):
    from adain_cuda.models import Decoder, Encoder

    return Stylizer(
        Encoder().load_weights(random_state(VGG_CONVS, 1)), Decoder().load_weights(random_state(DECODER_CONVS, 2)), **kw
    )


def too_large(monkeypatch):
    import adain_cuda.stylize.stylizer as module

    monkeypatch.setattr(module, "_available_memory", lambda device: 2**20)
    stylizer(device="cpu").stylize(torch.rand(3, 64, 64), torch.rand(3, 32, 32), content_size=0)


def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("ADAIN_CUDA_HOME", str(tmp_path))
    weights.resolve("vgg", allow_download=False)


LIBRARY_ERRORS = {
    "device": (lambda mp, tp: stylizer(device="cuda:99" if torch.cuda.is_available() else "cuda"), "`device`"),
    "unknown device": (lambda mp, tp: stylizer(device="tpu"), "`device`"),
    "memory": (lambda mp, tp: too_large(mp), "`content_size`"),
    "offline weights": (offline, "`vgg`"),
    "missing weight file": (lambda mp, tp: weights.resolve("decoder", tp / "none.pth"), "`decoder`"),
    "weights": (lambda mp, tp: normalise_weights([1.0], 2), "`weights`"),
    "train seed": (lambda mp, tp: TrainConfig(content_dir=".", style_dir=".", seed=-1).validate(), "`seed`"),
    "train crop": (lambda mp, tp: TrainConfig(content_dir=".", style_dir=".", crop_size=600).validate(), "`crop_size`"),
    "sheet cell": (lambda mp, tp: contact_sheet([], [], {}, cell=0), "`cell`"),
}


@pytest.mark.parametrize("case", sorted(LIBRARY_ERRORS))
def test_library_errors_name_parameters_not_flags(case, monkeypatch, tmp_path):
    call, name = LIBRARY_ERRORS[case]
    with pytest.raises(ValueError) as info:
        call(monkeypatch, tmp_path)
    message = str(info.value)
    assert name in message
    assert " --" not in message and not message.startswith("--"), message


@pytest.mark.parametrize(
    "library, cli",
    [
        ("lower `content_size` (e.g. 1024)", "lower --content-size (e.g. 1024)"),
        ("`weights`: 1 weight", "--style-interpolation-weights: 1 weight"),
        ("pass it as `vgg`.", "pass it as --vgg."),
        ("`output_dir` is a file", "-o/--output is a file"),
        ("run `adain-cuda weights download`", "run adain-cuda weights download"),
    ],
)
def test_the_cli_maps_parameter_names_to_its_flags(library, cli):
    assert in_cli_words(library) == cli
