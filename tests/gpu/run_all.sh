#!/usr/bin/env bash
# Every GPU check, in parts, each bounded so the figures of the earlier ones survive a slow one:
#   charges      what each claim is charged beside the work it did, at 30/70 also with batches of 2 and 32
#                matmuls (whether the split depends on the batch's length against the time slice) (about 90 s)
#   compute      tests/gpu/test_torch_compute.py: matmul tenants' shares (about 90 s)
#   graphs       tests/gpu/test_torch_graphs.py: the same issued by CUDA graph replay (about 60 s)
#   transformer  tests/gpu/test_torch_transformer.py: token split and speed under the shim (about 240 s)
#   memory       tests/gpu/test_torch_memory.py (about 40 s)
#   bench        benchmarks/share_accuracy_torch.py, rows printed as they finish (about 150 s)
# Output goes to $OUT (default: ./gpu-out). One device call runs at most 10 minutes: run
# "charges compute graphs transformer" in one and "memory bench" in another.
#
#     OUT=/some/dir tests/gpu/run_all.sh [part ...]   # from the repository root, with PyTorch's python
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
PYTEST="python3 -m pytest -p no:cacheprovider -m gpu -rsP -v"  # -rP: what passing tests printed
for part in "${@:-charges compute graphs transformer memory bench}"; do
    for step in $part; do
        case $step in
        charges) timeout 150 python3 tests/gpu/share_charges.py --seconds 4 --accounting time-sliced --alone \
            --batches 2 32 -- 30 70 10 90 ;;
        compute) timeout 180 $PYTEST tests/gpu/test_torch_compute.py ;;
        graphs) timeout 150 $PYTEST tests/gpu/test_torch_graphs.py ;;
        transformer) timeout 300 $PYTEST tests/gpu/test_torch_transformer.py ;;
        memory) timeout 90 $PYTEST tests/gpu/test_torch_memory.py ;;
        bench) timeout 200 python3 benchmarks/share_accuracy_torch.py --seconds 4 ;;
        *) echo "unknown part: $step" >&2; exit 2 ;;
        esac 2>&1 | tee "$OUT/$step.log"
    done
done
