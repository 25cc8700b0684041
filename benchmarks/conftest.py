import pytest
import torch

from common import CUDA, device_name


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["device"] = device_name("cuda" if CUDA else "cpu")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    # torch.compile caches per code object and falls back to eager after too many
    # recompilations: every benchmark case compiles afresh.
    torch._dynamo.reset()
    yield
