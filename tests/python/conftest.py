"""Paths the Python tests need, from the environment tests/CMakeLists.txt sets: the tiny model
(DIOR_TEST_TINY), the dior command (DIOR_TEST_BIN)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from patterns import pattern  # noqa: E402


@pytest.fixture(scope="session")
def tiny():
    d = os.environ["DIOR_TEST_TINY"]
    return os.path.join(d, "text.gguf"), os.path.join(d, "mmproj.gguf")


@pytest.fixture(scope="session")
def dior_bin():
    return os.environ["DIOR_TEST_BIN"]


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Generated images of several sizes (one larger than image_max_size, so it is downscaled)."""
    d = tmp_path_factory.mktemp("images")
    paths = []
    for i, (w, h) in enumerate([(64, 48), (40, 72), (90, 90), (760, 300)]):
        p = d / f"img{i}.png"
        pattern(w, h, i).save(p)
        paths.append(str(p))
    return paths
