#!/usr/bin/python3
"""`make bench`: facet's speed beside the plain-PyTorch reference, on this machine, in one run.

Runs the C++ measurements (facet-bench, facetctl bench predict against a real facet-server) and the reference
(../shared/reference/mtl_reference.py with Debian's /usr/bin/python3) on the same data, threads, model, image size
and batch size; prints a table and writes docs/benchmarks.md with a latency/throughput plot of Predict.

usage: run_bench.py --build BUILD_DIR [--data DIR] [--sample DIR] [--out docs/benchmarks.md] [--quick]
       run_bench.py --only training|distributed ...   (re-measures that section alone, keeps the rest of the JSON)
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PYTHON = "/usr/bin/python3"
SERVING_MAX_BATCH = 64  # facet-server's default --max-batch-size
TRAINING_ROUNDS = 3  # the training comparison is repeated, so that a margin is seen to hold from run to run
REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "mtl_reference.py")


def log(message):
    print(message, file=sys.stderr, flush=True)


def run_json(cmd, **kwargs):
    """Runs a command; returns the JSON objects of its stdout lines."""
    log("$ " + " ".join(cmd))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kwargs).stdout
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distributed(bench, data, images):
    """Data-parallel training (c10d Gloo on loopback): ResNet-34, 64 px, global batch 64, the same images, as one
    process and as two processes of one thread each (torchrun's environment)."""
    rows = []
    common = ["train", "--data", data, "--arch", "resnet34", "--images", str(images), "--workers", "1"]
    for threads in (1, 2):
        row = run_json(bench + common + ["--threads", str(threads)])[0]
        rows.append({"processes": 1, **row})
    port = str(free_port())
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE="2")
    log(f"$ 2 x {' '.join(bench + common)} --threads 1")
    procs = [subprocess.Popen(bench + common + ["--threads", "1"], stdout=subprocess.PIPE, text=True,
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in (0, 1)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode != 0 for p in procs):
        raise RuntimeError(f"distributed facet-bench failed: {[p.returncode for p in procs]}")
    row = next(json.loads(l) for l in outs[0].splitlines() if l.startswith("{"))
    rows.append(row)
    return rows


def training(bench, data, images, quick):
    """Section 1: every training configuration, C++ and the reference, measured in rounds; each round runs all of
    them once in the same order, so that drift in the machine's speed touches both sides alike. Each row keeps
    every round's figure ("runs") and their median ("images_per_s")."""
    configs = []
    for arch in ("resnet34",) if quick else ("resnet34", "resnet18"):
        for workers in (1, 2):
            configs.append(({"impl": "C++", "arch": arch, "workers": workers},
                            bench + ["train", "--data", data, "--arch", arch, "--images", str(images), "--workers",
                                     str(workers)]))
        if arch == "resnet34":  # the opt-in mixed precision, beside (not instead of) the fp32 figures
            configs.append(({"impl": "C++ bf16", "arch": arch, "workers": 1},
                            bench + ["train", "--data", data, "--arch", arch, "--images", str(images), "--workers",
                                     "1", "--precision", "bf16"]))
        for workers in (0, 1):
            configs.append(({"impl": "Python", "arch": arch, "workers": workers},
                            [PYTHON, REFERENCE, "train", "--data-dir", data, "--arch", arch, "--size", "64", "--batch",
                             "64", "--threads", "2", "--workers", str(workers), "--epochs", "1", "--max-images",
                             str(images + images // 32), "--val-fraction", str(1 / 33)]))
    rows = [dict(key, runs=[]) for key, _ in configs]
    for round_index in range(1 if quick else TRAINING_ROUNDS):
        log(f"training round {round_index + 1}")
        for row, (key, cmd) in zip(rows, configs):
            out = run_json(cmd)
            figure = out[-1]["train_images_per_s_last"] if key["impl"] == "Python" else out[0]["images_per_s"]
            row["runs"].append(figure)
    for row in rows:
        row["images_per_s"] = statistics.median(row["runs"])
    return rows


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def scrape(metrics_address):
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        m = re.match(r"^(facet_predict_batch_size_(?:sum|count))\s+(\S+)$", line)
        if m:
            values[m.group(1)] = float(m.group(2))
    return values


def model_flops(arch, size):
    """Multiply-adds x 2 of one image through the model (convolutions and linear layers), counted by forward hooks
    on the reference's own model class."""
    code = f"""
import sys, json, torch
sys.path.insert(0, {os.path.dirname(REFERENCE)!r})
import mtl_reference as r
model = r.MultiTaskNet({arch!r}).eval()
total = [0]
def conv(m, i, o): total[0] += 2 * o.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
def linear(m, i, o): total[0] += 2 * o.numel() * m.in_features
for m in model.modules():
    if isinstance(m, torch.nn.Conv2d): m.register_forward_hook(conv)
    if isinstance(m, torch.nn.Linear): m.register_forward_hook(linear)
with torch.no_grad(): model(torch.zeros(1, 3, {size}, {size}))
print(json.dumps({{"flops": total[0]}}))
"""
    return run_json([PYTHON, "-c", code])[0]["flops"]


class Server:
    def __init__(self, build, data_root, state, extra=()):
        self.grpc = f"127.0.0.1:{free_port()}"
        self.metrics = f"127.0.0.1:{free_port()}"
        self.log = open(os.path.join(state + ".log"), "w")
        self.proc = subprocess.Popen([os.path.join(build, "server", "facet-server"), f"--listen={self.grpc}",
                                      f"--metrics-listen={self.metrics}", f"--data-root={data_root}",
                                      f"--state-dir={state}", "--device=cpu", "--threads=2", "--log-level=warn",
                                      *extra], stdout=self.log, stderr=subprocess.STDOUT)
        self.ctl = [os.path.join(build, "client", "facetctl"), "--server", self.grpc]
        deadline = time.time() + 60
        while subprocess.run(self.ctl + ["--timeout", "1", "health"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit("facet-server did not start")
            time.sleep(0.3)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def serving(args, build, tmp, model_file, faces_dir):
    """facetctl bench predict at each concurrency, batching on and off; mean batch size from the server's metrics."""
    data_root = os.path.join(tmp, "serve-data")
    os.makedirs(data_root, exist_ok=True)
    shutil.copy(model_file, os.path.join(data_root, "model.pt"))
    results = {}
    # The server's defaults (max batch 64, 2 ms), batching off, and max batch 32 at c=64 to show the trade-off.
    for mode, extra, concurrencies in (
            ("batching", [f"--max-batch-size={SERVING_MAX_BATCH}", "--max-queue-delay-us=2000"], args.concurrency),
            ("no_batching", ["--max-batch-size=1", "--max-queue-delay-us=0"], args.concurrency),
            ("batching_32", ["--max-batch-size=32", "--max-queue-delay-us=2000"],
             [c for c in args.concurrency if c == 64])):
        if not concurrencies:
            continue
        server = Server(build, data_root, os.path.join(tmp, f"state-{mode}"), extra)
        try:
            model = subprocess.run(server.ctl + ["register", "model.pt"], check=True, stdout=subprocess.PIPE,
                                   text=True).stdout.split()[1]
            subprocess.run(server.ctl + ["activate", model], check=True, stdout=subprocess.DEVNULL)
            rows, rss = [], []
            for concurrency in concurrencies:
                before = scrape(server.metrics)
                sampler_stop = threading.Event()

                def sample():
                    while not sampler_stop.wait(0.5) and server.proc.poll() is None:
                        rss.append(rss_mb(server.proc.pid))

                sampler = threading.Thread(target=sample)
                sampler.start()
                try:
                    row = run_json(server.ctl + ["bench", "predict", "--images", faces_dir, "--concurrency",
                                                str(concurrency), "--seconds", str(args.serve_seconds),
                                                "--warm-up", "2", "--json"])[0]
                finally:
                    sampler_stop.set()
                    sampler.join()
                after = scrape(server.metrics)
                count = after["facet_predict_batch_size_count"] - before["facet_predict_batch_size_count"]
                row["mean_batch"] = (after["facet_predict_batch_size_sum"] - before["facet_predict_batch_size_sum"]) / \
                    max(count, 1)
                rows.append(row)
            results[mode] = {"rows": rows, "peak_rss_mb": max(rss) if rss else None}
            if mode == "batching":
                results["idle_rss_mb"] = None
        finally:
            server.stop()
    return results


def memory(build, tmp, train_dir):
    """RSS of a fresh server: idle, then while a ResNet-34 job trains on 2,048 images."""
    # The data root is the training folder's parent: a symbolic link out of a data root is refused (security.md).
    train_dir = os.path.abspath(train_dir)
    server = Server(build, os.path.dirname(train_dir), os.path.join(tmp, "state-mem"))
    try:
        time.sleep(2)
        idle = rss_mb(server.proc.pid)
        job = subprocess.run(server.ctl + ["train", "--data", os.path.basename(train_dir), "--max-images", "2200",
                                           "--arch", "resnet34",
                                           "--frozen-epochs", "0", "--unfrozen-epochs", "1", "--batch", "64"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        job_id = re.search(r"(job-[0-9a-f]+)", job).group(1)
        peak, deadline = idle, time.time() + 40
        while time.time() < deadline:
            time.sleep(0.5)
            peak = max(peak, rss_mb(server.proc.pid))
        subprocess.run(server.ctl + ["cancel", job_id], stdout=subprocess.DEVNULL)
        return {"idle_rss_mb": idle, "training_peak_rss_mb": peak}
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "utkface-train"))
    parser.add_argument("--sample", default=os.path.join(ROOT, "..", "shared", "data", "utkface-sample"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--quick", action="store_true", help="fewer, shorter measurements (a smoke run)")
    parser.add_argument("--only", choices=["training", "distributed"], help="re-measure one section, keep the rest")
    args = parser.parse_args()
    for path in (args.data, args.sample, REFERENCE):
        if not os.path.exists(path):
            print(f"SKIP: {path} is absent (the benchmarks need ../shared's data and reference)")
            return 77
    args.concurrency = [1, 8] if args.quick else [1, 8, 64, 256]
    args.serve_seconds = 3 if args.quick else 10
    images = 256 if args.quick else 2048
    bench = [os.path.join(args.build, "tests", "bench", "facet-bench")]
    json_path = os.path.splitext(args.out)[0] + ".json"
    if args.only:
        with open(json_path) as f:
            results = json.load(f)
        if args.only == "training":
            results["train"] = training(bench, args.data, images, args.quick)
        else:
            results["distributed"] = distributed(bench, args.data, images)
        results[args.only + "_machine"] = machine()
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)
        subprocess.run([PYTHON, os.path.join(ROOT, "tests", "bench", "report.py"), json_path, args.out], check=True)
        return 0
    results = {"quick": args.quick}
    tmp = tempfile.mkdtemp(prefix="facet-bench-")
    try:
        results["conv"] = run_json(bench + ["conv", "--threads", "2"])
        results["train"] = training(bench, args.data, images, args.quick)
        results["loader"] = run_json(bench + ["loader", "--data", args.data, "--images", str(min(images, 1024)),
                                              "--workers-list", "0,1,2"])
        batches = ["1", "8", "32", str(SERVING_MAX_BATCH), "128"]
        results["infer"] = run_json(bench + ["infer", "--arch", "resnet34", "--batches", ",".join(batches)])
        ref = run_json([PYTHON, REFERENCE, "infer-bench", "--arch", "resnet34", "--size", "64", "--threads", "2",
                        "--batch-sizes", *batches])[-1]
        results["infer_reference"] = ref["results"]
        results["ceiling"] = run_json(bench + ["ceiling", "--data", args.sample, "--batches", "1,8,16,32,64"])
        results["flops"] = {arch: model_flops(arch, 64) for arch in ("resnet34", "resnet18")}
        model_file = os.path.join(tmp, "model.pt")
        run_json(bench + ["export", "--arch", "resnet34", "--out", model_file])
        results["serving_max_batch"] = SERVING_MAX_BATCH
        results["serving"] = serving(args, args.build, tmp, model_file, args.sample)
        results["memory"] = memory(args.build, tmp, args.data)
        results["distributed"] = distributed(bench, args.data, images)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["machine"] = machine()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {json_path}")
    subprocess.run([PYTHON, os.path.join(ROOT, "tests", "bench", "report.py"), json_path, args.out], check=True)
    return 0


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    flags = open("/proc/cpuinfo").read()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    torch_version = subprocess.run([PYTHON, "-c", "import torch; print(torch.__version__)"], stdout=subprocess.PIPE,
                                   text=True).stdout.strip()
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cpu": cpu, "cores": os.cpu_count(), "avx512": "avx512f" in flags, "memory_gb": round(mem_gb, 1),
            "os": platform.platform(), "commit": commit + ("+dirty" if dirty else ""),
            "torch": torch_version, "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")}


if __name__ == "__main__":
    sys.exit(main())
