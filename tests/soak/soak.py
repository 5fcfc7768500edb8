#!/usr/bin/python3
"""Soak test: the real facet-server on loopback under concurrent Predict clients sending real face images, while a
training job runs and the active model is switched back and forth, with a share of malformed requests.

Reports requests served, outcomes by kind and gRPC code, Predict latency percentiles and the server's RSS after
warm-up and at the end. Fails (exit 1) when a well-formed request fails, a malformed one gets another answer than
its documented error, the server's RSS grows by more than --rss-growth-mb, or the server does not exit 0 on SIGTERM.

usage: soak.py --build BUILD_DIR [--seconds 300] [--clients 8] [--images DIR] [--rss-growth-mb 256]
"""
import argparse
import collections
import glob
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from predict_client import generate_stubs  # noqa: E402  (stubs from proto/ at run time)

MAX_IMAGES = 8          # the server's --max-images-per-request in this test
MAX_IMAGE_BYTES = 200_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def png_bomb():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100.0 * len(values)))]


class Soak:
    def __init__(self, args, pb, stubs):
        self.args, self.pb, self.stubs = args, pb, stubs
        self.outcomes = collections.Counter()   # (kind, outcome)
        self.unexpected = collections.Counter()
        self.latencies = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.activations = 0
        self.activation_failures = 0

    def record(self, kind, outcome, ok, latency=None):
        with self.lock:
            self.outcomes[(kind, outcome)] += 1
            if not ok:
                self.unexpected[(kind, outcome)] += 1
            if latency is not None:
                self.latencies.append(latency)

    def predict_client(self, seed, faces):
        rng = random.Random(seed)
        stub = self.stubs.InferenceServiceStub(self.channel)
        bomb, Request = png_bomb(), self.pb.PredictRequest
        while not self.stop.is_set():
            roll = rng.random()
            if roll < 0.85:
                kind, images = "valid", [rng.choice(faces) for _ in range(rng.randint(1, 4))]
            elif roll < 0.88:
                kind, images = "empty", []
            elif roll < 0.91:
                kind, images = "too_many", [faces[0]] * (MAX_IMAGES + 1)
            elif roll < 0.94:
                kind, images = "garbage", [bytes(rng.getrandbits(8) for _ in range(300))]
            elif roll < 0.97:
                kind, images = "oversize", [b"\xff\xd8" + b"\0" * MAX_IMAGE_BYTES]
            else:
                kind, images = "bomb", [bomb]
            started = time.monotonic()
            try:
                response = stub.Predict(Request(images=images), timeout=30)
                code = grpc.StatusCode.OK
            except grpc.RpcError as e:
                response, code = None, e.code()
            latency = time.monotonic() - started
            if kind == "valid":
                ok = code == grpc.StatusCode.OK and all(r.error_code == 0 and len(r.faces) == 1
                                                        for r in response.results)
                self.record(kind, code.name, ok, latency if ok else None)
            elif kind in ("empty", "too_many"):
                self.record(kind, code.name, code == grpc.StatusCode.INVALID_ARGUMENT)
            else:  # one bad image: the call succeeds and that image carries INVALID_ARGUMENT
                image_code = response.results[0].error_code if response else -1
                self.record(kind, f"{code.name}/image:{image_code}",
                            code == grpc.StatusCode.OK and image_code == grpc.StatusCode.INVALID_ARGUMENT.value[0])

    def activator(self, model_ids):
        stub = self.stubs.ModelServiceStub(self.channel)
        i = 0
        while not self.stop.wait(1.0):
            i += 1
            try:
                stub.ActivateModel(self.pb.ActivateModelRequest(id=model_ids[i % 2]), timeout=60)
                self.activations += 1
            except grpc.RpcError as e:
                self.activation_failures += 1
                print(f"ActivateModel failed: {e.code().name}: {e.details()}", file=sys.stderr)


def wait_for_job(training, pb, job_id, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = training.GetJob(pb.GetJobRequest(id=job_id), timeout=10)
        if job.state in (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
            return job
        time.sleep(0.5)
    raise SystemExit(f"job {job_id} did not finish within {seconds} s")


def tiny_config(pb, frozen, unfrozen):
    return pb.TrainingConfig(data_dir="faces", arch="resnet18", base_width=8, image_size=32, batch_size=16,
                             frozen=pb.StageConfig(epochs=frozen), unfrozen=pb.StageConfig(epochs=unfrozen),
                             loader_workers=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "data", "utkface-sample"))
    parser.add_argument("--rss-growth-mb", type=float, default=256)
    args = parser.parse_args()
    server_bin = os.path.join(args.build, "server", "facet-server")
    ctl_bin = os.path.join(args.build, "client", "facetctl")

    tmp = tempfile.mkdtemp(prefix="facet-soak-")
    server = None
    try:
        stubs_dir = os.path.join(tmp, "stubs")
        os.makedirs(stubs_dir)
        generate_stubs(os.path.join(ROOT, "proto"), stubs_dir)
        from facet.v1 import facet_pb2 as pb, facet_pb2_grpc as stubs

        data = os.path.join(tmp, "data")
        subprocess.run([os.path.join(args.build, "core", "facet-make-dataset"), "--out", os.path.join(data, "faces"),
                        "--count", "200", "--size", "48"], check=True, stdout=subprocess.DEVNULL)
        face_files = sorted(glob.glob(os.path.join(args.images, "*.jpg")))[:200]
        source = "real UTKFace faces"
        if not face_files:
            face_files = sorted(glob.glob(os.path.join(data, "faces", "*.jpg")))
            source = f"synthetic faces ({args.images} is absent)"
        faces = [open(f, "rb").read() for f in face_files]

        address = f"127.0.0.1:{free_port()}"
        log = open(os.path.join(tmp, "server.log"), "w")
        server = subprocess.Popen([server_bin, f"--listen={address}", f"--metrics-listen=127.0.0.1:{free_port()}",
                                   f"--data-root={data}", f"--state-dir={os.path.join(tmp, 'state')}", "--device=cpu",
                                   f"--max-images-per-request={MAX_IMAGES}", f"--max-image-bytes={MAX_IMAGE_BYTES}",
                                   "--max-image-pixels=4000000"], stdout=log, stderr=subprocess.STDOUT)
        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=60)
        training = stubs.TrainingServiceStub(channel)
        models = stubs.ModelServiceStub(channel)

        # Two models to switch between: one trained here, one registered from its file.
        first = training.StartTraining(pb.StartTrainingRequest(config=tiny_config(pb, 1, 1)), timeout=30)
        first = wait_for_job(training, pb, first.id, 600)
        if first.state != pb.JOB_STATE_SUCCEEDED:
            raise SystemExit(f"the first training job failed: {first.error}")
        shutil.copy(os.path.join(tmp, "state", "models", first.model_id + ".pt"), os.path.join(data, "copy.pt"))
        second = models.RegisterModel(pb.RegisterModelRequest(path="copy.pt"), timeout=60)
        models.ActivateModel(pb.ActivateModelRequest(id=first.model_id), timeout=60)
        background = training.StartTraining(pb.StartTrainingRequest(config=tiny_config(pb, 1, 1000)), timeout=30)

        soak = Soak(args, pb, stubs)
        soak.channel = channel
        threads = [threading.Thread(target=soak.predict_client, args=(i, faces)) for i in range(args.clients)]
        threads.append(threading.Thread(target=soak.activator, args=([first.model_id, second.id],)))
        started = time.monotonic()
        for t in threads:
            t.start()
        warm_up = max(3.0, 0.1 * args.seconds)
        time.sleep(warm_up)
        rss_start, rss_max = rss_mb(server.pid), 0.0
        while time.monotonic() - started < args.seconds:
            time.sleep(1.0)
            rss_max = max(rss_max, rss_mb(server.pid))
        rss_end = rss_mb(server.pid)
        soak.stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        job = training.GetJob(pb.GetJobRequest(id=background.id), timeout=10)
        training.CancelJob(pb.CancelJobRequest(id=background.id), timeout=10)
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=60)
        server = None

        served = sum(soak.outcomes.values())
        report = {
            "seconds": round(elapsed, 1), "clients": args.clients, "images": source,
            "requests": served, "requests_per_s": round(served / elapsed, 1),
            "outcomes": {f"{k}:{o}": n for (k, o), n in sorted(soak.outcomes.items())},
            "unexpected": {f"{k}:{o}": n for (k, o), n in sorted(soak.unexpected.items())},
            "valid_latency_ms": {q: round(1000 * percentile(soak.latencies, q), 1) for q in (50, 90, 99)},
            "activations": soak.activations, "activation_failures": soak.activation_failures,
            "training_epochs_during_soak": job.progress.epoch,
            "rss_mb": {"after_warm_up": round(rss_start, 1), "end": round(rss_end, 1), "max": round(rss_max, 1),
                       "growth": round(rss_end - rss_start, 1), "bound": args.rss_growth_mb},
            "server_exit_code": exit_code,
        }
        print(json.dumps(report, indent=2))
        failures = []
        if soak.unexpected:
            failures.append(f"unexpected outcomes: {dict(soak.unexpected)}")
        if soak.activation_failures:
            failures.append(f"{soak.activation_failures} activations failed")
        if rss_end - rss_start > args.rss_growth_mb:
            failures.append(f"RSS grew by {rss_end - rss_start:.0f} MB (bound {args.rss_growth_mb:.0f} MB)")
        if exit_code != 0:
            failures.append(f"facet-server exited with {exit_code} on SIGTERM")
        if served == 0 or not soak.latencies:
            failures.append("no request was served")
        if failures:
            print("SOAK FAILED: " + "; ".join(failures), file=sys.stderr)
            print(open(os.path.join(tmp, "server.log")).read()[-5000:], file=sys.stderr)
            return 1
        print("soak passed")
        return 0
    finally:
        if server is not None:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
