#!/usr/bin/python3
"""Each convolution of a torchvision ResNet's training step, timed alone: forward, the gradient of the input and
the gradient of the weights, with the GFLOP/s each reaches. The same ATen and oneDNN kernels run facet's step, so
this says which convolutions run below the machine's rate and how much a faster kernel could save. Convolutions of
the same shape are measured once and counted as often as the network has them. Runs under glibc's malloc set as
facet's ConfigureAllocator sets it (see op_profile.py). Run it on an idle machine.

usage: /usr/bin/python3 tests/bench/conv_shapes.py [--arch resnet34] [--size 64] [--batch 64] [--threads 2]
"""
import argparse
import collections
import os
import sys
import time

import torch
import torchvision

# The glibc tunables equivalent of core/util/device.cc's mallopt calls; glibc reads them only at start-up.
ALLOCATOR = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def median_ms(fn, repeats=9):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def conv_shapes(arch, size, batch):
    """(in, out, kernel, stride, padding, input side) -> how many convolutions of the network have it."""
    model = getattr(torchvision.models, arch)()
    shapes = collections.Counter()

    def record(module, inputs, _output):
        shapes[(module.in_channels, module.out_channels, module.kernel_size[0], module.stride[0], module.padding[0],
                inputs[0].shape[-1])] += 1

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(record)
    with torch.no_grad():
        model(torch.zeros(batch, 3, size, size))
    return shapes


def main():
    if os.environ.get("GLIBC_TUNABLES") != ALLOCATOR:
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, GLIBC_TUNABLES=ALLOCATOR))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"{args.arch}, {args.size} px, batch {args.batch}, {args.threads} threads; ms per call (median), GFLOP/s "
          "counting a multiply-add as 2 and the padded taps as computed")
    print("| in -> out | kernel, stride | input | count | forward | input gradient | weight gradient |")
    print("|---|---|---|---|---|---|---|")
    totals = collections.Counter()
    for (cin, cout, k, stride, pad, side), count in sorted(conv_shapes(args.arch, args.size, args.batch).items(),
                                                          key=lambda item: (item[0][5] * -1, item[0][1])):
        x = torch.randn(args.batch, cin, side, side)
        w = torch.randn(cout, cin, k, k)
        y = torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)
        dy = torch.randn_like(y)
        gflop = 2 * y.numel() * cin * k * k / 1e9

        def backward(mask):
            return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [stride] * 2, [pad] * 2, [1, 1], False,
                                                               [0, 0], 1, mask)

        forward_ms = median_ms(lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=pad))
        # The stem's input is the image, whose gradient training never asks for.
        input_ms = median_ms(backward([True, False, False])) if cin != 3 else 0.0
        weight_ms = median_ms(backward([False, True, False]))
        cells = [f"{ms:.2f} ms, {gflop / ms * 1e3:.0f} GFLOP/s" if ms else "-"
                 for ms in (forward_ms, input_ms, weight_ms)]
        print(f"| {cin} -> {cout} | {k}x{k}, {stride} | {side}x{side} | {count} | " + " | ".join(cells) + " |")
        totals["forward"] += count * forward_ms
        totals["input gradient"] += count * input_ms
        totals["weight gradient"] += count * weight_ms
    print("per step: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in totals.items()))


if __name__ == "__main__":
    main()
