"""Fixtures of the GPU tests: the real shim preloaded into PyTorch on a real NVIDIA GPU.

Every test here is skipped, with the reason shown by ``-rs``, unless ``nvidia-smi -L`` lists a GPU and
``torch.cuda.is_available()`` is true in the interpreter that runs the GPU work (``$GPU_TEST_PYTHON``,
else the one running pytest). Both are checked in subprocesses, so a broken driver cannot crash the
collection. The tests use the first GPU nvidia-smi lists (pinned with ``CUDA_VISIBLE_DEVICES=<uuid>``)
and assume nothing else uses it while they run (about 3 minutes; compute shares are timing-sensitive).

Running them on a GPU machine, from the repository root, with the interpreter that has PyTorch::

    PYTHONPATH=$PWD python3 -m pytest -m gpu tests/gpu -rs -v
    PYTHONPATH=$PWD python3 benchmarks/share_accuracy_torch.py --seconds 5

The shim is its test build (``find_shim``): compiled with gcc as the package build does, plus the test
hooks, so ``XPUSHARE_LIMITS_FILE`` names each claim's limits file (the packaged
``shim/_lib/libxpushare.so`` reads only ``/etc/xpushare/limits`` and ignores the variable). The GPU's
board and each claim's ledger are created as the node plugin creates them, through ``shim.ledger``
(cffi); where cffi is missing the shim creates its claim's ledger itself at the first allocation, no
board exists (so claims do not see each other: compute shares between them are not enforced) and the
ledger checks are left out.

With the session's device tool (the sources are sent; the shim is compiled there into tests/.build,
which stays between calls on a warm machine), output kept under ``$OUT``. The machine's image has
PyTorch but neither cffi nor pydantic: carry their wheels for CPython 3.12 (``pip download
--only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl cffi pycparser pydantic
pydantic-core annotated-types typing-inspection typing-extensions``, with ``.whl`` ignored by git) and
name ``.whl`` in ``carry``. ``tests/gpu/run_all.sh`` installs them and runs the checks in parts, each
bounded; one call runs at most 10 minutes, so two calls::

    run(timeout_s=590, carry=[".whl"],
        command="OUT=$OUT tests/gpu/run_all.sh 'charges compute graphs transformer'")
    run(timeout_s=400, carry=[".whl"], command="OUT=$OUT tests/gpu/run_all.sh 'memory bench'")
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shim import LIBRARY_ENV
from tests.gpu.torchlib import Gpu, GpuNode, find_shim, probe


@pytest.fixture(scope="session")
def gpu() -> Gpu:
    found = probe()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def shim_library(gpu: Gpu) -> Path:
    found = find_shim()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(autouse=True)
def _gpu_and_shim(monkeypatch: pytest.MonkeyPatch, shim_library: Path) -> None:
    """Every test needs both; the ledger binding must load the library that is preloaded."""
    monkeypatch.setenv(LIBRARY_ENV, str(shim_library))


@pytest.fixture
def node(tmp_path: Path, gpu: Gpu, shim_library: Path) -> GpuNode:
    return GpuNode(tmp_path, gpu, shim_library)
