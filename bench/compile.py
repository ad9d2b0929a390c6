"""Does torch.compile pay for itself within a run? Its one-off compile time against the time it saves per image.

    python bench/compile.py [--images 256] [--image-size 224] [--batch 32] [--mode default]

In one process on the same decoded images: the forward pass of EfficientNet-Lite0 in the plan a run uses
(``precision=auto``: bf16 autocast in channels_last on CPUs with native bf16, fp16 AMP on CUDA), eager and
compiled. The compiled module's first batch includes compiling; the rest are timed after it. Prints both
rates, the compile time and the break-even: how many images a run must extract before compiling is faster
than not compiling. toptune's extraction stays eager when typical runs (a few thousand images) fall short of it.
"""

from __future__ import annotations

import argparse
import time

from throughput import bare_forward

import toptune  # noqa: F401  (before torch: toptune turns on torch's huge-page allocations)
from toptune import registry
from toptune.measure.device import pick_device
from toptune.measure.precision import resolve

BACKBONE = "efficientnet_lite0"


def rate(module, compute, batches, rounds: int) -> float:
    """Images per second over ``batches``, best of ``rounds`` passes (throughput.py's bare forward pass)."""
    return sum(len(x) for x in batches) / min(bare_forward(module, batches, compute) for _ in range(rounds))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", default="default", help="torch.compile mode (default, reduce-overhead, max-autotune)")
    args = parser.parse_args()
    device = pick_device("auto")
    torch.manual_seed(0)
    module = registry.create("backbone", BACKBONE).build().eval()
    compute = resolve("auto", device, module)
    module = compute.place(module)
    batches = [torch.randn(min(args.batch, args.images - i), 3, args.image_size, args.image_size)
               for i in range(0, args.images, args.batch)]

    rate(module, compute, batches[:1], 1)  # warm the eager path
    eager = rate(module, compute, batches, args.rounds)
    compiled = torch.compile(module, mode=args.mode)
    t0 = time.perf_counter()
    with torch.inference_mode(), compute.autocast():
        compiled(compute.inputs(batches[0])).float().cpu()
    first = time.perf_counter() - t0
    fast = rate(compiled, compute, batches, args.rounds)
    compile_s = first - len(batches[0]) / fast
    saved_per_image = 1 / eager - 1 / fast
    print(f"\n{BACKBONE}, {args.image_size} px, batch {args.batch}, {device}, {compute.describe()}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, compile mode {args.mode}\n")
    print("| | images/s | × eager |")
    print("|---|---:|---:|")
    print(f"| eager forward | {eager:.1f} | 1.00× |")
    print(f"| compiled forward (after compiling) | {fast:.1f} | {fast / eager:.2f}× |")
    print(f"\ncompiling took {compile_s:.1f} s (the first batch, less its share of the compiled rate)")
    if saved_per_image <= 0:
        print("break-even: never (the compiled forward is no faster than the eager one)")
    else:
        print(f"break-even: {compile_s / saved_per_image:,.0f} images (compiling pays for itself on runs "
              f"that extract more)")


if __name__ == "__main__":
    main()
