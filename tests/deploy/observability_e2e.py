#!/usr/bin/python3
"""End-to-end observability: the real facet-server and a real Prometheus (Debian's binary) on loopback, configured
from deploy/prometheus/prometheus.yml with the target rewritten; a short training job and some Predict calls; then
every PromQL expression of both Grafana dashboards must return data from Prometheus's HTTP API.

usage: observability_e2e.py FACET_SERVER FACETCTL   (exit 77 when prometheus is not installed)"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from e2e_support import ROOT, free_port, queries_without_data, query, wait_until

def main(server_bin, ctl_bin):
    if not shutil.which("prometheus"):
        print("SKIP: the prometheus binary (Debian package prometheus) is not installed")
        return 77
    tmp = tempfile.mkdtemp(prefix="facet-observability-")
    procs = []
    try:
        grpc_port, metrics_port, prom_port = free_port(), free_port(), free_port()
        server, prom = f"127.0.0.1:{grpc_port}", f"127.0.0.1:{prom_port}"
        ctl = [ctl_bin, "--server", server]
        # facet-make-dataset is built beside facetctl: build/core/ next to build/client/.
        make_dataset = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(ctl_bin))), "core",
                                    "facet-make-dataset")
        subprocess.run([make_dataset, "--out", f"{tmp}/data/faces", "--count", "120", "--size", "48"], check=True,
                       stdout=subprocess.DEVNULL)

        # The project's Prometheus config, with the target and intervals rewritten for a test.
        config = yaml.safe_load(open(os.path.join(ROOT, "deploy/prometheus/prometheus.yml")))
        config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
        config["rule_files"] = [os.path.abspath(os.path.join(ROOT, "deploy/prometheus/alerts.yml"))]
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "facet")
        job["scrape_interval"] = "1s"
        job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
        with open(f"{tmp}/prometheus.yml", "w") as f:
            yaml.safe_dump(config, f)

        log = open(f"{tmp}/server.log", "w")
        procs.append(subprocess.Popen([server_bin, f"--listen={server}", f"--metrics-listen=127.0.0.1:{metrics_port}",
                                       f"--data-root={tmp}/data", f"--state-dir={tmp}/state", "--device=cpu",
                                       "--threads=2"], stdout=log, stderr=log))
        procs.append(subprocess.Popen(["prometheus", f"--config.file={tmp}/prometheus.yml",
                                       f"--storage.tsdb.path={tmp}/tsdb", f"--web.listen-address={prom}"],
                                      stdout=open(f"{tmp}/prometheus.log", "w"), stderr=subprocess.STDOUT))
        wait_until("facet-server", lambda: subprocess.run(ctl + ["--timeout", "1", "health"],
                                                          capture_output=True).returncode == 0, 60)
        wait_until("Prometheus to scrape facet", lambda: any(
            r["value"][1] == "1" for r in query(prom, 'up{job="facet"}')), 60)

        out = subprocess.run(ctl + ["train", "--data", "faces", "--arch", "resnet18", "--width", "8", "--size", "32",
                                    "--batch", "16", "--frozen-epochs", "1", "--unfrozen-epochs", "2", "--watch"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"training failed:\n{out.stdout}\n{out.stderr}")
        job_id = next(l.split()[1] for l in out.stdout.splitlines() if l.startswith("submitted"))
        model = next(l.split()[1] for l in out.stdout.splitlines() if l.startswith("produced"))
        subprocess.run(ctl + ["activate", model], check=True, stdout=subprocess.DEVNULL)
        images = sorted(glob.glob(f"{tmp}/data/faces/*.jpg"))[:8]
        for _ in range(6):  # Predict traffic spread over a few scrapes, so that rates have two samples
            subprocess.run(ctl + ["predict", "--batch", "4"] + images, check=True, stdout=subprocess.DEVNULL)
            time.sleep(0.7)
        time.sleep(3)

        checked, empty = queries_without_data(prom, job_id)
        print(f"{checked} dashboard queries checked against Prometheus, {len(empty)} returned no data")
        for e in empty:
            print("  no data:", e)
        return 1 if empty else 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
