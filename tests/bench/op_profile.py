#!/usr/bin/python3
"""Where a ResNet-34 training step's time goes, operator by operator: torchvision's model and torch's AdamW at 64 px,
batch 64, 2 threads, under torch's profiler, in NCHW or channels-last. The same ATen kernels run facet's step (its
own optimizer aside), so the shares say where a faster step must come from. Prints images/s of 5 timed steps (after
3 warm-ups), then the operators by self CPU time over 3 profiled steps. Run it on an idle machine. It runs under
glibc's malloc set as facet's ConfigureAllocator sets it (no mmap for large blocks, no trimming): with glibc's
defaults every large tensor is mapped and faulted in again on each use, and a convolution measured 7 ms or 50 ms
depending on what ran before it.

usage: /usr/bin/python3 tests/bench/op_profile.py [nchw | channels-last]
"""
import os
import sys
import time

import torch
import torchvision


# The glibc tunables equivalent of core/util/device.cc's mallopt calls; glibc reads them only at start-up.
ALLOCATOR = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def main():
    if os.environ.get("GLIBC_TUNABLES") != ALLOCATOR:
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, GLIBC_TUNABLES=ALLOCATOR))
    layout = sys.argv[1] if len(sys.argv) > 1 else "nchw"
    if layout not in ("nchw", "channels-last"):
        raise SystemExit(__doc__)
    memory_format = torch.channels_last if layout == "channels-last" else torch.contiguous_format
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = torchvision.models.resnet34(num_classes=8).to(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randn(64, 3, 64, 64).to(memory_format=memory_format)
    targets = torch.randn(64, 8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        ((model(images) - targets) ** 2).mean().backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.time()
    for _ in range(5):
        step()
    print(f"{layout}: {5 * 64 / (time.time() - start):.1f} images/s")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(3):
            step()
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
