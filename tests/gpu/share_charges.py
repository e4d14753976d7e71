"""What each claim of a share pair was charged on a real GPU, beside the work it did: the first thing to
look at when a split misses its target (charged time right, work wrong: the measurement; both wrong: the
throttle).

    PYTHONPATH=$PWD python3 tests/gpu/share_charges.py [--seconds 4] [30 70] [10 90]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shim.ledger import read_claim_usage
from tests.gpu.torchlib import Claim, Gpu, GpuNode, Tenant, find_shim, probe, run_tenants, splits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("shares", nargs="*", type=int, default=[30, 70, 10, 90])
    args = parser.parse_args()
    gpu, shim = probe(), find_shim()
    if not isinstance(gpu, Gpu) or isinstance(shim, str):
        print(f"no GPU run: {gpu if isinstance(gpu, str) else shim}")
        return 0
    pairs = list(zip(args.shares[::2], args.shares[1::2], strict=True))
    for pair in pairs:
        node = GpuNode(Path(tempfile.mkdtemp(prefix="share-charges-")), gpu, shim)
        tenants = [Tenant(Claim(f"t{share}", cores=share)) for share in pair]
        runs = run_tenants(node, tenants, args.seconds)
        split = [round(statistics.median(s), 1) for s in splits(runs)]
        print(f"{pair[0]}/{pair[1]}: split of the work {split[0]}/{split[1]}")
        for tenant in tenants:
            usage = read_claim_usage(node.ledger_path(tenant.claim))
            print(f"  {tenant.claim.name}: charged {usage.used_ns / 1e9:.3f} s, throttled "
                  f"{usage.throttled_ns / 1e9:.3f} s, bucket {usage.tokens_ns / 1e6:+.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
