"""Weight files are judged by what they hold: every tensor's dtype, layout and device against the
layout, the container (torch.save, legacy pickle, safetensors, a nested or wrapped state dict, a
training checkpoint), and files that are not weights at all, each with a message saying what the
file is. Nothing in a file runs code."""

import pickle

import pytest
import torch

from adain_cuda.models import Decoder, Encoder, WeightsError

from community_layout import DECODER_CONVS, VGG_CONVS, random_state


def _decoder_state():
    return random_state(DECODER_CONVS, 4)


def _retyped(make):
    state = _decoder_state()
    state["1.weight"] = make(state["1.weight"])
    return state


# Tensors of the right shape that no weight can be.
BAD_TENSORS = {
    "int32": (lambda t: t.to(torch.int32), "int32 tensor, not floating point"),
    "int64": (lambda t: t.long(), "int64 tensor, not floating point"),
    "bool": (lambda t: t > 0, "bool tensor, not floating point"),
    "uint8": (lambda t: t.to(torch.uint8), "uint8 tensor, not floating point"),
    "complex": (lambda t: t.to(torch.complex64), "complex64 tensor, not floating point"),
    "meta": (lambda t: torch.empty(t.shape, device="meta"), "meta tensor"),
    "quantized": (lambda t: torch.quantize_per_tensor(t, 0.01, 0, torch.qint8), "quantized"),
    "sparse_coo": (lambda t: t.to_sparse(), "sparse"),
}


@pytest.mark.parametrize("kind", sorted(BAD_TENSORS))
@pytest.mark.parametrize("given", ["file", "mapping"])
def test_a_tensor_no_weight_can_be_is_refused_by_name(kind, given, tmp_path):
    make, message = BAD_TENSORS[kind]
    state = _retyped(make)
    source = state
    if given == "file":
        source = tmp_path / "dec.pth"
        try:
            torch.save(state, source)
        except Exception as exc:  # noqa: BLE001 - this torch cannot save that kind
            pytest.skip(f"torch.save cannot write a {kind} tensor here: {exc}")
    with pytest.raises(WeightsError, match=f"1.weight.*{message}|{message}.*1.weight|not a plain state dict"):
        Decoder().load_weights(source)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_load(dtype, tmp_path):
    state = {k: v.to(dtype) for k, v in _decoder_state().items()}
    torch.save(state, tmp_path / "dec.pth")
    dec = Decoder().load_weights(tmp_path / "dec.pth")
    assert torch.equal(dec.net[1].weight, state["1.weight"].float())


WRAPPED = {
    "state_dict": lambda s: {"state_dict": s, "epoch": 3},
    "model": lambda s: {"model": s, "optimizer": {"lr": 1.0}},
    "module_prefix": lambda s: {f"module.{k}": v for k, v in s.items()},
    "net_prefix": lambda s: {f"net.{k}": v for k, v in s.items()},
    "training_checkpoint": lambda s: {"decoder": s, "optimizer": {}, "scheduler": {}, "iteration": 7, "rng": {}},
}


@pytest.mark.parametrize("wrap", sorted(WRAPPED))
def test_wrapped_state_dicts_load(wrap, tmp_path):
    state = _decoder_state()
    torch.save(WRAPPED[wrap](state), tmp_path / "dec.pth")
    dec = Decoder().load_weights(tmp_path / "dec.pth")
    assert torch.equal(dec.net[1].weight, state["1.weight"])


def test_a_training_checkpoint_given_as_vgg_says_what_it_is(tmp_path):
    torch.save(WRAPPED["training_checkpoint"](_decoder_state()), tmp_path / "checkpoint.pt")
    with pytest.raises(WeightsError, match="training checkpoint.*not VGG weights"):
        Encoder().load_weights(tmp_path / "checkpoint.pt")


def test_safetensors_files_load(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    state = random_state(VGG_CONVS, 3)
    safetensors.save_file(state, str(tmp_path / "vgg.safetensors"))
    enc = Encoder().load_weights(tmp_path / "vgg.safetensors")
    assert torch.equal(enc.net[0].weight, state["0.weight"])


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


NOT_WEIGHTS = {
    "text": (lambda p: p.write_text("<html>404 Not Found</html>\n"), "a text file, not a weight file"),
    "empty": (lambda p: p.write_bytes(b""), "the file is empty"),
    "tensor": (lambda p: torch.save(torch.zeros(3), p), "holds a single tensor"),
    "list": (lambda p: torch.save([torch.zeros(3)], p), "holds list"),
    "dict_of_numbers": (lambda p: torch.save({"a": 1, "b": 2}, p), "not a state dict of tensors"),
    "pickled_code": (lambda p: p.write_bytes(pickle.dumps(Payload())), "not a plain state dict"),
    "torch_pickled_code": (lambda p: torch.save({"x": Payload()}, p), "not a plain state dict"),
    "random_bytes": (lambda p: p.write_bytes(bytes(range(256)) * 4), "truncated or corrupt"),
    "damaged_safetensors": (
        lambda p: p.write_bytes((20).to_bytes(8, "little") + b'{"a": {"dtype": "F32"'),
        "damaged .safetensors",
    ),
}


@pytest.mark.parametrize("kind", sorted(NOT_WEIGHTS))
@pytest.mark.parametrize("network", [Encoder, Decoder])
def test_files_that_are_not_weights_say_what_they_are(kind, network, tmp_path, capsys):
    write, message = NOT_WEIGHTS[kind]
    path = tmp_path / "weights.pth"
    write(path)
    with pytest.raises(WeightsError, match=message):
        network().load_weights(path)
    assert "code ran" not in capsys.readouterr().out
