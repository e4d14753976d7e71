#!/usr/bin/env bash
# Every GPU check in one call, each step bounded so the figures of the earlier ones survive a slow one:
# what each claim is charged beside the work it did (both accounting rules), the GPU tests (compute,
# transformer, memory), then the share benchmark. Output goes to $OUT (default: ./gpu-out).
#
#     OUT=/some/dir tests/gpu/run_all.sh      # from the repository root, with PyTorch's interpreter
#
# Where the image lacks cffi and pydantic, their wheels are installed from .whl/ (see conftest.py).
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH=$PWD:/tmp/site
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
timeout 150 python3 tests/gpu/share_charges.py --seconds 4 --alone 30 70 10 90 2>&1 | tee "$OUT/share-charges.log"
timeout 240 python3 -m pytest -p no:cacheprovider -m gpu tests/gpu/test_torch_compute.py \
    tests/gpu/test_torch_transformer.py -rs -v 2>&1 | tee "$OUT/gpu-compute.log"
timeout 90 python3 -m pytest -p no:cacheprovider -m gpu tests/gpu/test_torch_memory.py -rs -v 2>&1 \
    | tee "$OUT/gpu-memory.log"
timeout 100 python3 benchmarks/share_accuracy_torch.py --seconds 4 2>&1 | tee "$OUT/share-torch.log"
