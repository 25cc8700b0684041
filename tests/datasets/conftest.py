"""The networks the dataset and augmentation tests share."""

import pytest

from helpers import cpu_stylizer


@pytest.fixture(scope="module")
def stylizer():
    return cpu_stylizer()
