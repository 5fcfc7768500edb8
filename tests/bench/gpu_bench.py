#!/usr/bin/env python3
"""The Python torch side of tests/bench/gpu_bench.sh: the reference's model, loss and AdamW step (the recipe
facet's core implements) on random inputs, with the same sizes, batch, precision and memory format as
facet-gpu-bench. One JSON line per figure.

usage: gpu_bench.py REFERENCE_DIR [--device cuda] [--arch resnet34] [--sizes 64,128] [--batch 256] [--steps 20]
"""
import argparse
import json
import sys
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("reference_dir")
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", default="resnet34")
    p.add_argument("--sizes", default="64,128")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    sys.path.insert(0, a.reference_dir)
    import mtl_reference as ref
    dev = torch.device(a.device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for size in [int(s) for s in a.sizes.split(",")]:
        for precision in ("fp32", "bf16"):
            for channels_last in (False, True):
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                torch.manual_seed(0)
                model = ref.MultiTaskNet(a.arch).to(dev).to(memory_format=fmt)
                loss_fn = ref.MultiTaskLoss("uncertainty").to(dev)
                opt = torch.optim.AdamW(list(model.parameters()) + [loss_fn.log_vars], lr=1e-3)
                x = torch.randn(a.batch, 3, size, size, device=dev).contiguous(memory_format=fmt)
                age = torch.rand(a.batch, device=dev)
                gender = torch.randint(2, (a.batch,), device=dev)
                race = torch.randint(5, (a.batch,), device=dev)
                model.train()
                for i in range(a.steps + 3):
                    if i == 3:
                        sync()
                        start = time.perf_counter()
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        loss = loss_fn.combine(loss_fn.task_losses(model(x), age, gender, race))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    loss.item()
                sync()
                row = {"impl": "Python", "arch": a.arch, "size": size, "batch": a.batch, "precision": precision,
                       "channels_last": channels_last}
                print(json.dumps({**row, "bench": "train",
                                  "images_per_s": round(a.steps * a.batch / (time.perf_counter() - start), 1)}),
                      flush=True)
                model.eval()
                with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16,
                                                            enabled=precision == "bf16"):
                    for _ in range(3):
                        model(x)
                    sync()
                    start = time.perf_counter()
                    for _ in range(a.steps):
                        model(x)
                    sync()
                print(json.dumps({**row, "bench": "infer",
                                  "images_per_s": round(a.steps * a.batch / (time.perf_counter() - start), 1)}),
                      flush=True)


if __name__ == "__main__":
    main()
