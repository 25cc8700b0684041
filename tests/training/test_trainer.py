"""The trainer on tiny generated images, on the CPU (and the GPU where there is one)."""

import math
import os
import signal
import socket

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from adain_cuda import cli
from adain_cuda.images import imaging
from adain_cuda.models import FastEncoder
from adain_cuda.stylize import Stylizer
from adain_cuda.training import TrainConfig, Trainer

from community_layout import VGG_CONVS, random_state
from helpers import train_config

pytestmark = pytest.mark.slow  # deselect with -m "not slow"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    g = torch.Generator().manual_seed(0)
    for kind, count in (("content", 6), ("style", 4)):
        for i in range(count):
            folder = root / kind / ("nested" if i % 2 else "")
            folder.mkdir(parents=True, exist_ok=True)
            base = torch.rand(3, 1, 1, generator=g)
            img = (0.5 * torch.rand(3, 40 + 4 * i, 48, generator=g) + 0.5 * base).clamp(0, 1)
            imaging.save_image(img, folder / f"{kind}{i}.png")
    Image.fromarray((torch.rand(36, 36) * 255).byte().numpy(), "L").save(root / "content" / "grey.png")
    Image.new("CMYK", (40, 44), (10, 200, 30, 0)).save(root / "style" / "cmyk.jpg")
    vgg = root / "vgg.pth"
    torch.save(random_state(VGG_CONVS, 5), vgg)
    return root, vgg


def config(data, out, **kw):
    root, vgg = data
    return train_config(root, vgg, out, **{"max_iter": 4, "lr": 1e-3, **kw})


def losses_of(trainer):
    c = trainer.config
    content_iter = iter(trainer._loader(trainer.content_files, c.seed))
    style_iter = iter(trainer._loader(trainer.style_files, c.seed + 1))
    out = []
    while trainer.iteration < c.max_iter:
        step = trainer.step(next(content_iter)[0], next(style_iter)[0])
        out.append(float(step["loss"]))
    return out


def test_short_run_lowers_the_loss(data, tmp_path):
    trainer = Trainer(config(data, tmp_path, max_iter=30, batch_size=2, lr=2e-3))
    losses = losses_of(trainer)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert all(math.isfinite(v) for v in losses)
    assert last < 0.8 * first, (first, last)


def step_gradients(trainer, dtype=torch.float32):
    """Losses and decoder gradients of one step on the first batch, with the networks in ``dtype``
    (the fast encoder rewritten again from the converted weights: its fixed copies were rounded
    to float32 when it was made)."""
    trainer.encoder.to(dtype), trainer.decoder.to(dtype)
    if trainer.fast:
        trainer.step_encoder = FastEncoder(trainer.encoder)
    content, _ = next(iter(trainer._loader(trainer.content_files, 0)))
    style, _ = next(iter(trainer._loader(trainer.style_files, 1)))
    mf = trainer.memory_format
    loss, loss_c, loss_s, *_ = trainer._losses(
        content.to(trainer.device, dtype).contiguous(memory_format=mf),
        style.to(trainer.device, dtype).contiguous(memory_format=mf),
    )
    loss.backward()
    return (
        torch.stack([loss.detach(), loss_c, loss_s]).double(),
        torch.cat([p.grad.double().flatten() for p in trainer.decoder.parameters()]),
    )


def test_fused_and_reference_losses_agree_for_one_step(data, tmp_path):
    (values, grads), (ref_values, ref_grads) = (
        step_gradients(Trainer(config(data, tmp_path / impl, losses=impl))) for impl in ("fused", "reference")
    )
    torch.testing.assert_close(values, ref_values, rtol=1e-5, atol=1e-7)
    assert ((grads - ref_grads).norm() / ref_grads.norm()).item() < 1e-4


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_fast_and_plain_networks_agree_for_one_step(data, tmp_path, channels_last):
    """The step through the exact rewrites has the plain networks' losses and gradients: equal in
    float64 (every decoder parameter), and in float32 as close to the float64 gradients as the
    plain float32 step is (which itself is about 1e-3 off, relative); the optimizer moves the
    plain decoder's parameters."""

    def run(fast, dtype):
        trainer = Trainer(config(data, tmp_path / f"{fast}_{dtype}", fast=fast, channels_last=channels_last))
        assert trainer.fast is fast
        return trainer, step_gradients(trainer, dtype)

    (values, grads), (plain_values, plain_grads) = run(True, torch.float64)[1], run(False, torch.float64)[1]
    torch.testing.assert_close(values, plain_values, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grads, plain_grads, rtol=1e-9, atol=1e-13)
    trainer, (values32, grads32) = run(True, torch.float32)
    _, (plain_values32, plain_grads32) = run(False, torch.float32)
    torch.testing.assert_close(values32, plain_values, rtol=1e-5, atol=1e-7)
    error = lambda g: ((g - plain_grads).norm() / plain_grads.norm()).item()  # noqa: E731
    assert error(grads32) <= 2 * error(plain_grads32), (error(grads32), error(plain_grads32))
    before = [p.detach().clone() for p in trainer.decoder.parameters()]
    trainer.optimizer.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, trainer.decoder.parameters()))


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_fast_step_traces_as_one_graph(data, tmp_path, channels_last):
    """--compile with the rewrites: the step is one graph (a graph break per layer made dynamo
    recompile the shared layer code past its limit and fall back to eager)."""
    torch._dynamo.reset()
    trainer = Trainer(config(data, tmp_path, fast=True, channels_last=channels_last))
    x = torch.rand(2, 3, 32, 32).contiguous(memory_format=trainer.memory_format)
    explanation = torch._dynamo.explain(trainer._losses)(x, x.flip(-1))
    assert explanation.graph_break_count == 0, [b.reason.splitlines()[0] for b in explanation.break_reasons]


def test_fast_is_the_default_on_cuda_only(data, tmp_path):
    assert Trainer(config(data, tmp_path)).fast is False  # the CPU
    args = cli.build_parser().parse_args(["train", "--content-dir", "c", "--style-dir", "s", "--fast", "on"])
    assert cli.train.config_from(args).fast is True


def test_resume_equals_an_uninterrupted_run(data, tmp_path):
    straight = Trainer(config(data, tmp_path / "a", max_iter=6))
    expected = losses_of(straight)
    first = Trainer(config(data, tmp_path / "b", max_iter=3))
    head = losses_of(first)
    first.save_checkpoint()
    resumed = Trainer(config(data, tmp_path / "b", max_iter=6, resume="auto"))
    assert resumed.iteration == 3
    tail = losses_of(resumed)
    assert head + tail == expected  # exactly: same data stream, crops, optimizer and lr state
    for a, b in zip(straight.decoder.parameters(), resumed.decoder.parameters()):
        assert torch.equal(a, b)


def test_bad_files_are_skipped_and_counted(data, tmp_path, caplog):
    caplog.set_level("INFO", logger="adain_cuda")
    root, _ = data
    (root / "content" / "broken.jpg").write_text("not an image")
    Image.new("RGB", (4, 4)).save(root / "content" / "tiny.png")
    try:
        trainer = Trainer(config(data, tmp_path, max_iter=12, batch_size=4))
        trainer.train()
    finally:
        (root / "content" / "broken.jpg").unlink()
        (root / "content" / "tiny.png").unlink()
    assert len(trainer.bad_files) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("skipped:") for m in messages) == 2
    assert any("2 unusable file(s) skipped" in m for m in messages)


def test_outputs_checkpoints_logs_and_stylize(data, tmp_path, capsys):
    trainer = Trainer(config(data, tmp_path, max_iter=4, save_every=2, sample_every=2, tensorboard=True))
    trainer.train()
    names = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoint.pt", "decoder.pth", "decoder_iter_2.pth", "decoder_iter_4.pth", "log.csv", "samples"} <= names
    assert len(list((tmp_path / "samples").iterdir())) == 2
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,loss,content,style,style_relu1_1") and len(rows) == 5
    # the saved decoder loads into stylize, like the community decoder.pth
    stylizer = Stylizer.from_pretrained(data[1], tmp_path / "decoder_iter_4.pth", allow_download=False, device="cpu")
    assert stylizer.stylize(torch.rand(3, 24, 32), torch.rand(3, 24, 24), content_size=0).shape == (3, 24, 32)


def test_random_encoder_only_when_asked_and_said_once(data, tmp_path, caplog):
    caplog.set_level("INFO", logger="adain_cuda")
    Trainer(config(data, tmp_path, vgg=None, random_encoder=True))
    said = [r for r in caplog.records if "encoder is RANDOM" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"


def test_empty_folder_is_an_error_up_front(data, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = cli.main(["train", "--content-dir", str(tmp_path / "empty"), "--style-dir", str(data[0] / "style")])
    assert code == 2 and "no images found" in capsys.readouterr().err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_signal_mid_step_saves_a_whole_checkpoint_after_the_step(data, tmp_path, monkeypatch, signum, when):
    trainer = Trainer(config(data, tmp_path, max_iter=10))
    real_step = trainer.step

    def step(*args):
        if trainer.iteration == 3 and when == "before":
            os.kill(os.getpid(), signum)  # arrives while the step runs
        out = real_step(*args)
        if trainer.iteration == 4 and when == "after":
            os.kill(os.getpid(), signum)
        return out

    monkeypatch.setattr(trainer, "step", step)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 4
    # every Adam state took exactly as many steps as the checkpoint's iteration: no half step
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {4}


def test_a_signal_that_ends_the_loader_workers_still_saves_a_checkpoint(data, tmp_path, monkeypatch):
    """Ctrl-C in a terminal reaches the DataLoader's workers, which end; the next fetch fails."""
    trainer = Trainer(config(data, tmp_path, max_iter=10, save_every=100))
    real_loader = trainer._loader

    def loader(files, seed):
        batches = iter(real_loader(files, seed))

        def stream():
            while True:
                if trainer.iteration == 3:
                    os.kill(os.getpid(), signal.SIGINT)
                    raise RuntimeError("DataLoader worker (pid 1) exited unexpectedly")
                yield next(batches)

        return stream()

    monkeypatch.setattr(trainer, "_loader", loader)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["iteration"] == 3


def test_a_second_signal_stops_at_once_without_a_checkpoint(data, tmp_path, monkeypatch):
    trainer = Trainer(config(data, tmp_path, max_iter=10, save_every=100))
    real_step = trainer.step

    def step(*args):
        if trainer.iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args)

    monkeypatch.setattr(trainer, "step", step)
    with pytest.raises(KeyboardInterrupt, match="twice"):
        trainer.train()
    assert not (tmp_path / "checkpoint.pt").exists()


def _ddp_worker(rank, world, port, cfg_kwargs, result_path):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    trainer = Trainer(TrainConfig(**cfg_kwargs))
    trainer.train()
    if rank == 0:
        torch.save(trainer.decoder.community_state_dict(), result_path)
    torch.distributed.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_matches_single_process(data, tmp_path):
    # the rewrites on (the CUDA default), so DistributedDataParallel wraps the fast decoder
    kwargs = dict(config(data, tmp_path / "ddp", max_iter=3, batch_size=4, fast=True).__dict__)
    mp.spawn(_ddp_worker, args=(2, free_port(), kwargs, tmp_path / "ddp.pth"), nprocs=2, join=True)
    single = Trainer(config(data, tmp_path / "single", max_iter=3, batch_size=4))
    initial = {k: v.clone() for k, v in single.decoder.community_state_dict().items()}
    single.train()
    ddp = torch.load(tmp_path / "ddp.pth")
    # Gradients are averaged in another order, and Adam turns the rounding differences of
    # near-zero gradients into whole steps for a few weights: compare the updates as a whole.
    final = single.decoder.community_state_dict()
    update = torch.cat([(final[k] - initial[k]).flatten() for k in final])
    ddp_update = torch.cat([(ddp[k] - initial[k]).flatten() for k in final])
    cosine = torch.nn.functional.cosine_similarity(update, ddp_update, dim=0).item()
    assert cosine > 0.99, cosine  # measured about 0.998; unrelated updates would be near 0
    rows = [(tmp_path / name / "log.csv").read_text().splitlines()[1:] for name in ("ddp", "single")]
    logged = [[float(row.split(",")[1]) for row in run] for run in rows]
    # The first logged loss comes before any update: the all-reduced halves equal the whole batch
    # to rounding. Later ones follow weights that Adam moved differently (see above), so they
    # agree only as closely as the updates do.
    assert logged[0][0] == pytest.approx(logged[1][0], rel=1e-5)
    for a, b in zip(logged[0][1:], logged[1][1:]):
        assert a == pytest.approx(b, rel=2e-2)
    # and a checkpoint written by two processes resumes in one
    resumed = Trainer(config(data, tmp_path / "ddp", max_iter=4, batch_size=4, resume="auto"))
    assert resumed.iteration == 3
    resumed.train()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_trains_on_the_gpu_when_asked_or_by_default(data, tmp_path, device):
    """The CLI's defaults (device auto, bf16 autocast, channels_last) on a GPU machine."""
    trainer = Trainer(config(data, tmp_path, device=device, precision="auto", max_iter=3))
    assert trainer.device == torch.device("cuda", torch.cuda.current_device())
    assert trainer.fast and trainer.amp
    losses = trainer.train()
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert (tmp_path / "decoder.pth").is_file()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_step_on_the_gpu_within_rounding_of_the_plain_one(data, tmp_path):
    """On the GPU with the defaults (bf16 autocast, channels_last, the rewrites): the decoder
    gradients are as close to the float32 plain step's as the plain bf16 step's are."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        grads = {}
        for name, kw in {
            "exact": dict(fast=False, precision="fp32"),
            "plain_bf16": dict(fast=False),
            "fast_bf16": dict(fast=True),
            "fast_fp32": dict(fast=True, precision="fp32"),
        }.items():
            trainer = Trainer(config(data, tmp_path / name, device="cuda", precision=kw.pop("precision", "auto"), **kw))
            grads[name] = step_gradients(trainer)[1]
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
    exact = grads["exact"]
    rel = {k: ((g - exact).norm() / exact.norm()).item() for k, g in grads.items()}
    assert rel["fast_fp32"] < 1e-4, rel
    assert rel["fast_bf16"] <= 2 * rel["plain_bf16"] + 1e-3, rel
