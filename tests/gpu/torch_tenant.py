"""A compute tenant: fixed-size matmuls, or a small transformer generating tokens, in a loop, counting the
matmuls (tokens) completed per window of wall time.

Run by ``torchlib.run_tenants`` under the interpreter that has PyTorch (standard library and torch only,
so it runs without the project installed). It initialises CUDA and warms cuBLAS up, touches
``--ready-file``, then waits for the common start time (CLOCK_MONOTONIC nanoseconds) on stdin, so every
tenant of a run starts together whatever its start-up took. Work is issued in batches of ``--batch``
matmuls followed by a synchronize, and a batch counts in the window in which it completed (each step's
completion time is reported too); with
``--gap-ms`` the loop sleeps after each batch (a serving loop). With ``--model=gpt2`` each step is
instead one greedy ``generate`` of ``--batch`` new tokens for 64 sequences by a GPT-2-shaped model built
from a config with random weights (``transformers``; nothing is downloaded), and the counts are tokens.
With ``--model=graph`` the batch is captured once into a CUDA graph and each step replays it.
Prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--window", type=float, default=1.0, help="window length in seconds")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--batch", type=int, default=8, help="matmuls between synchronizes")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="host time after each batch")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", choices=("matmul", "graph", "gpt2"), default="matmul")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--ready-file", type=Path, required=True)
    return parser.parse_args(argv)


def _count(step: Callable[[], None], *, epoch: int, windows: int, window_ns: int, batch: int,
           gap_s: float) -> tuple[list[int], list[int]]:
    """Work completed per window, and when each step completed (ns after the epoch): windows hold whole
    steps, so a rate meant to within 1 % is taken from the step times instead."""
    counts = [0] * windows
    ends: list[int] = []
    end = epoch + windows * window_ns
    while True:
        step()
        now = time.monotonic_ns()
        if now >= end:
            return counts, ends
        counts[max(0, now - epoch) // window_ns] += batch
        ends.append(now - epoch)
        if gap_s > 0:
            time.sleep(gap_s)


def _matmuls(torch: Any, device: Any, dtype: Any, args: argparse.Namespace,
             synchronize: Callable[[], None]) -> tuple[Callable[[], None], int]:
    a = torch.randn(args.size, args.size, device=device, dtype=dtype)
    b = torch.randn(args.size, args.size, device=device, dtype=dtype)
    out = torch.empty(args.size, args.size, device=device, dtype=dtype)

    def step() -> None:
        for _ in range(args.batch):
            torch.matmul(a, b, out=out)
        synchronize()

    return step, args.batch


def _graph(torch: Any, device: Any, dtype: Any, args: argparse.Namespace,
           synchronize: Callable[[], None]) -> tuple[Callable[[], None], int]:
    """The same batch of matmuls captured once into a CUDA graph and replayed: one cuGraphLaunch a step,
    the way compiled and serving stacks issue their work."""
    a = torch.randn(args.size, args.size, device=device, dtype=dtype)
    b = torch.randn(args.size, args.size, device=device, dtype=dtype)
    out = torch.empty(args.size, args.size, device=device, dtype=dtype)
    capture = torch.cuda.Stream()
    capture.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(capture):
        torch.matmul(a, b, out=out)  # cuBLAS picks its kernels and workspace outside the capture
    torch.cuda.current_stream().wait_stream(capture)
    synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(args.batch):
            torch.matmul(a, b, out=out)

    def step() -> None:
        graph.replay()
        synchronize()

    return step, args.batch


SEQUENCES = 64


def _generator(torch: Any, device: Any, dtype: Any, args: argparse.Namespace,
               synchronize: Callable[[], None]) -> tuple[Callable[[], None], int]:
    transformers = importlib.import_module("transformers")
    # About 1.9 B parameters (3.8 GB in bf16). 64 sequences a step: the GPU, not the host's launches,
    # sets the pace (with 16, an H200 waited on the host and tokens/s varied by 10-20 % between runs).
    config = transformers.GPT2Config(n_layer=16, n_embd=3072, n_head=24, n_positions=1024, vocab_size=32000)
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)  # built on the device in its dtype: no host copy, no fp32 detour
    try:
        with device:
            model = transformers.GPT2LMHeadModel(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    prompt = torch.randint(0, config.vocab_size, (SEQUENCES, 64), device=device)
    mask = torch.ones_like(prompt)

    def step() -> None:
        with torch.no_grad():
            model.generate(prompt, attention_mask=mask, max_new_tokens=args.batch, min_new_tokens=args.batch,
                           do_sample=False, pad_token_id=0)
        synchronize()

    return step, args.batch * SEQUENCES


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    torch: Any = importlib.import_module("torch")
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    synchronize: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    build = {"gpt2": _generator, "graph": _graph}.get(args.model, _matmuls)
    step, per_step = build(torch, device, dtype, args, synchronize)

    for _ in range(max(1, args.warmup // args.batch)):
        step()
    args.ready_file.write_text("ready\n")
    line = sys.stdin.readline()
    if not line.strip().isdigit():
        print(f"no start time on stdin (got {line!r})", file=sys.stderr)
        return 2
    epoch = int(line)
    time.sleep(max(0.0, (epoch - time.monotonic_ns()) / 1e9))
    window_ns = int(args.window * 1e9)
    windows = max(1, round(args.seconds / args.window))
    counts, ends = _count(step, epoch=epoch, windows=windows, window_ns=window_ns, batch=per_step,
                          gap_s=args.gap_ms / 1000)
    print("RESULT " + json.dumps({"counts": counts, "window_s": args.window, "size": args.size,
                                  "dtype": args.dtype, "batch": args.batch, "model": args.model,
                                  "per_step": per_step, "step_ends_ns": ends}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
