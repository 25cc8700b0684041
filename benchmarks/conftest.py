import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CUDA = torch.cuda.is_available()


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    import platform
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["device"] = device_name("cuda" if CUDA else "cpu")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    # torch.compile caches per code object and falls back to eager after too many
    # recompilations: every benchmark case compiles afresh.
    torch._dynamo.reset()
    yield
