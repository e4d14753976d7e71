"""What each claim of a share pair was charged on a real GPU, beside the work it did: the first thing to
look at when a split misses its target (charged time right, work wrong: the measurement; both wrong: the
throttle).

    PYTHONPATH=$PWD python3 tests/gpu/share_charges.py [--seconds 4] [--accounting both] [30 70] [10 90]

``--accounting`` is what the limits files tell the shim of the GPU: ``time-sliced`` (what the plugin
writes for NVIDIA GPUs), ``serial`` (charging in completion order, as for a device that runs work in
turns), or ``both``, one after the other.

``--batches 2 32`` runs the first pair again with those many matmuls between synchronizes. The
time-sliced rule charges a window shared with k other busy contexts 1/(k+1) of its length, which is
exact when slices are short against the work. A batch shorter than the GPU's time slice may instead run
whole in one slice after waiting for the other context's to end; if that is what favoured the small claim
on the H200 (33-35 % of the matmuls at 30/70 with batches of 8), the bias grows with shorter batches and
fades with longer ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dra_driver.core.devices import Scheduling
from shim.ledger import read_claim_usage
from tests.gpu.torchlib import Claim, Gpu, GpuNode, Tenant, Workload, find_shim, probe, run_tenants, splits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--accounting", choices=("time-sliced", "serial", "both"), default="both")
    parser.add_argument("--alone", action="store_true",
                        help="also a 100 %% claim and a fixed 30 %% claim alone: work per charged second")
    parser.add_argument("--batches", nargs="*", type=int, default=[],
                        help="the first pair again, time-sliced, with these many matmuls per synchronize")
    parser.add_argument("shares", nargs="*", type=int, default=[30, 70, 10, 90])
    args = parser.parse_args()
    gpu, shim = probe(), find_shim()
    if not isinstance(gpu, Gpu) or isinstance(shim, str):
        print(f"no GPU run: {gpu if isinstance(gpu, str) else shim}")
        return 0
    pairs = list(zip(args.shares[::2], args.shares[1::2], strict=True))
    modes = [Scheduling.TIME_SLICED, Scheduling.SERIAL] if args.accounting == "both" else [
        Scheduling(args.accounting)]
    for pair, mode in ((pair, mode) for pair in pairs for mode in modes):
        _pair(gpu, shim, pair, mode, seconds=args.seconds, work=Workload())
    for batch in args.batches:
        _pair(gpu, shim, pairs[0], Scheduling.TIME_SLICED, seconds=args.seconds, work=Workload(batch=batch))
    if args.alone:
        _alone(gpu, shim, args.seconds)
    return 0


def _pair(gpu: Gpu, shim: Path, pair: tuple[int, int], mode: Scheduling, *, seconds: float,
          work: Workload) -> None:
    node = GpuNode(Path(tempfile.mkdtemp(prefix="share-charges-")), gpu, shim, mode)
    tenants = [Tenant(Claim(f"t{share}", cores=share)) for share in pair]
    runs = run_tenants(node, tenants, seconds, work=work)
    split = [round(statistics.median(s), 1) for s in splits(runs)]
    clocks = runs[0].clocks.describe() if runs[0].clocks else "clock not sampled"
    print(f"{pair[0]}/{pair[1]} ({mode} accounting, {work.batch} matmuls a batch): split of the work "
          f"{split[0]}/{split[1]} ({clocks})")
    for tenant in tenants:
        usage = read_claim_usage(node.ledger_path(tenant.claim))
        print(f"  {tenant.claim.name}: charged {usage.used_ns / 1e9:.3f} s, throttled "
              f"{usage.throttled_ns / 1e9:.3f} s, bucket {usage.tokens_ns / 1e6:+.1f} ms")


def _alone(gpu: Gpu, shim: Path, seconds: float) -> None:
    """Whether a capped claim's extra throughput is the measurement's (charged less than it used) or the
    GPU's (more work per second of device time when it runs a fraction of the time: clocks)."""
    for claim in (Claim("full", cores=100), Claim("fixed30", cores=30, policy="fixed")):
        node = GpuNode(Path(tempfile.mkdtemp(prefix="share-alone-")), gpu, shim)
        (run,) = run_tenants(node, [Tenant(claim)], seconds)
        usage = read_claim_usage(node.ledger_path(claim))
        print(f"{claim.name} alone: {run.total} matmuls, charged {usage.used_ns / 1e9:.3f} s "
              f"({run.total / (usage.used_ns / 1e9):.0f} matmuls per charged second, warm-up included), "
              f"throttled {usage.throttled_ns / 1e9:.3f} s; "
              f"{run.clocks.describe() if run.clocks else 'clock not sampled'}")


if __name__ == "__main__":
    raise SystemExit(main())
