"""What the end-to-end deployment tests share: the end-to-end observability test (a local server and Prometheus) and
the container test (the compose stack). Free ports, waiting, and every PromQL query of the Grafana dashboards in
deploy/grafana/dashboards asked of a running Prometheus."""
import glob
import json
import os
import socket
import time
import urllib.parse
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, seconds):
    """Calls check() until it returns true (exceptions count as false); SystemExit after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def query(prometheus, expr):
    """The result vector of an instant query; prometheus is host:port."""
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return body["data"]["result"]


def queries_without_data(prometheus, job_id):
    """(number of queries asked, ["dashboard / panel: expr" for each that returned no data])."""
    checked, empty = 0, []
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy/grafana/dashboards/*.json"))):
        for panel in json.load(open(path))["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$job_id", job_id).replace("$__rate_interval", "1m")
                checked += 1
                if not query(prometheus, expr):
                    empty.append(f"{os.path.basename(path)} / {panel['title']}: {expr}")
    return checked, empty
