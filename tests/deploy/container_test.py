#!/usr/bin/python3
"""The deployment, for real (`make test-deploy`): builds runtime-cpu from the Dockerfile and brings up the real
docker-compose.yml (the cpu profile, Prometheus, and Grafana where its image can be had), then drives it from the
host as the README's deploy section does, through deploy/facetctl:
  - a token made and mounted, so that the published gRPC port answers;
  - training on faces mounted into the container (../shared/data, or synthetic faces without it), watched;
  - `docker-compose restart` of facet in the middle of training, then `docker kill -s KILL`: the job resumes from
    the state volume each time and finishes with every epoch once;
  - the model activated, Predict on real held-out faces; a wrong data path and an undecodable image get clear errors;
  - Prometheus scrapes the container and every dashboard query returns data; facet_server_info names the device;
  - `down` keeps the volumes (the job is still there after the next `up`).
Prints what it measured: build times (first, unchanged, after a one-line change), image sizes, `up` to healthy.

Sets up what it needs and stops only what it started: installs docker.io when there is no Docker, starts dockerd
when none runs (and then stops it and removes the firewall rules and docker0 link it left), makes a Debian base
image with debootstrap when debian:trixie cannot be pulled, and builds Prometheus from Debian's package when
prom/prometheus cannot be pulled. The compose project, its volumes and the temporary files are removed at the end;
the images stay, so that the next run builds warm.

usage: container_test.py [--json FILE] [--keep] [--cold]   (root; image names: DEBIAN_IMAGE, FACET_CPU_IMAGE,
                                                    PROMETHEUS_IMAGE, GRAFANA_IMAGE in the environment)"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from e2e_support import ROOT, free_port, queries_without_data, query, wait_until

ROOT = os.path.abspath(ROOT)
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"
SERVICE = "facet-server-cpu"


def log(message):
    print(f"[container-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd, env=None, check=True, cwd=None, timeout=None, quiet=False):
    """Runs cmd (a list); returns its CompletedProcess with text output. check: SystemExit with the output on failure."""
    if not quiet:
        log("$ " + " ".join(cmd))
    result = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return result


def docker_mounts():
    """Mount points that dockerd makes and leaves (its network namespaces, overlays under /var/lib/docker)."""
    with open("/proc/mounts") as f:
        points = {line.split()[1] for line in f}
    return {p for p in points if p.startswith(("/run/docker", "/var/run/docker", "/var/lib/docker"))}


class DockerEngine:
    """A Docker engine for the test: the running one, or dockerd started here (and installed when missing), which
    is stopped at the end with what it left behind: its iptables rules, the docker0 link and its mounts."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.process = None

    def __enter__(self):
        if not shutil.which("dockerd") and not shutil.which("docker"):
            log("no Docker here: installing Debian's docker.io")
            run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io"],
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if run([DOCKER, "info"], check=False, quiet=True).returncode == 0:
            log("using the Docker engine that is running")
            return self
        self.had_docker0 = os.path.exists("/sys/class/net/docker0")
        self.mounts = docker_mounts()
        self.rules = {tool: run([tool], check=False, quiet=True).stdout
                      for tool in ("iptables-save", "ip6tables-save") if shutil.which(tool)}
        log("starting dockerd (stopped again at the end)")
        self.process = subprocess.Popen(["dockerd", "--pidfile", os.path.join(self.scratch, "dockerd.pid")],
                                        stdout=open(os.path.join(self.scratch, "dockerd.log"), "w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_until("dockerd", lambda: run([DOCKER, "info"], check=False, quiet=True).returncode == 0, 90)
        return self

    def __exit__(self, *exc):
        if not self.process:
            return
        log("stopping the dockerd this test started")
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for mount in sorted(docker_mounts() - self.mounts, reverse=True):  # e.g. /run/docker/netns/default
            run(["umount", mount], check=False, quiet=True)
        if not self.had_docker0 and os.path.exists("/sys/class/net/docker0"):
            run(["ip", "link", "delete", "docker0"], check=False, quiet=True)
        for save, before in self.rules.items():
            restore = save.replace("-save", "-restore")
            subprocess.run([restore], input=before, text=True, check=False)
            # Tables that held nothing before are not in the snapshot: empty what dockerd put there, and give
            # back the ACCEPT policy it took from FORWARD.
            tool = save.replace("-save", "")
            for table, chains in (("nat", ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")),
                                  ("filter", ("INPUT", "FORWARD", "OUTPUT"))):
                if f"*{table}\n" not in before:
                    run([tool, "-t", table, "-F"], check=False, quiet=True)
                    run([tool, "-t", table, "-X"], check=False, quiet=True)
                    for chain in chains:
                        run([tool, "-t", table, "-P", chain, "ACCEPT"], check=False, quiet=True)


def image_available(name, env):
    """True when the image is here, or could be pulled (within a minute: no registry may be reachable)."""
    if run([DOCKER, "image", "inspect", name], env=env, check=False, quiet=True).returncode == 0:
        return True
    try:
        return run([DOCKER, "pull", name], env=env, check=False, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def image_size_mb(name, env):
    return int(run([DOCKER, "image", "inspect", "-f", "{{.Size}}", name], env=env, quiet=True).stdout) / 1e6


class Stack:
    """The compose project under test, and facetctl on the host (deploy/facetctl) pointed at it."""

    def __init__(self, env, settings, scratch, services):
        self.env = env
        self.settings = settings  # what a user writes in .env; the test's .env is .env.example with these set
        self.scratch = scratch
        self.services = services
        self.project = f"facettest{os.getpid()}"
        self.env_file = os.path.join(scratch, ".env")
        self.compose = ["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml"), "-p", self.project,
                        "--env-file", self.env_file]

    def write_env_file(self):
        lines, seen = [], set()
        for line in open(os.path.join(ROOT, ".env.example")):
            name = line.split("=", 1)[0]
            if "=" in line and not line.startswith("#") and name in self.settings:
                line = f"{name}={self.settings[name]}\n"
                seen.add(name)
            lines.append(line)
        lines += [f"{name}={value}\n" for name, value in self.settings.items() if name not in seen]
        with open(self.env_file, "w") as f:
            f.writelines(lines)

    def compose_run(self, *args, check=True, timeout=None, quiet=False):
        self.write_env_file()
        env = {k: v for k, v in self.env.items() if k not in self.settings}  # the environment would beat .env
        return run(self.compose + list(args), env=env, check=check, cwd=ROOT, timeout=timeout, quiet=quiet)

    def facetctl(self, *args, check=True, quiet=False):
        cmd = [os.path.join(ROOT, "deploy", "facetctl"), "--token-file", ".facet-token"] + list(args)
        return run(cmd, env=self.env, check=check, cwd=self.scratch, quiet=quiet)

    def make_dataset(self, *args):
        return run([os.path.join(ROOT, "deploy", "facet-make-dataset")] + list(args), env=self.env, cwd=self.scratch)

    def container(self):
        return self.compose_run("ps", "-q", SERVICE, quiet=True).stdout.strip()

    def health(self):
        container = self.container()
        if not container:
            return "absent"
        return run([DOCKER, "inspect", "-f", "{{.State.Health.Status}}", container], env=self.env, check=False,
                   quiet=True).stdout.strip()

    def wait_healthy(self, seconds=180):
        wait_until(f"{SERVICE} to be healthy", lambda: self.health() == "healthy", seconds)

    def job(self, job_id):
        return json.loads(self.facetctl("job", job_id, "--json", quiet=True).stdout)


def require(condition, message):
    if not condition:
        raise SystemExit("FAILED: " + message)
    log("ok: " + message)


def copy_faces(folder, out, count):
    os.makedirs(out, exist_ok=True)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))[:count]
    for name in names:
        shutil.copy(os.path.join(folder, name), out)
    return [os.path.join(out, n) for n in names]


def choose_base_images(env, settings, figures):
    """DEBIAN_IMAGE and DEBIAN_SLIM_IMAGE: pulled, or made here with debootstrap when they cannot be."""
    wanted = env.get("DEBIAN_IMAGE", "debian:trixie"), env.get("DEBIAN_SLIM_IMAGE", "debian:trixie-slim")
    if all(image_available(name, env) for name in wanted):
        settings["DEBIAN_IMAGE"], settings["DEBIAN_SLIM_IMAGE"] = wanted
        return
    local = "facet-base/debian:trixie"
    if run([DOCKER, "image", "inspect", local], env=env, check=False, quiet=True).returncode != 0:
        log(f"{wanted[0]} cannot be pulled: making {local} with debootstrap")
        started = time.time()
        run(["bash", os.path.join(ROOT, "deploy", "debian-image.sh"), local, "trixie"], env=env)
        figures["base_image_seconds"] = round(time.time() - started, 1)
    settings["DEBIAN_IMAGE"] = settings["DEBIAN_SLIM_IMAGE"] = local


def build(stack, env, figures):
    image = stack.settings["FACET_CPU_IMAGE"]
    had_image = run([DOCKER, "image", "inspect", image], env=env, check=False, quiet=True).returncode == 0
    started = time.time()
    stack.compose_run("build", SERVICE, timeout=5400)
    figures["build_seconds" if had_image else "build_seconds_cold"] = round(time.time() - started, 1)
    started = time.time()
    stack.compose_run("build", SERVICE)
    figures["rebuild_unchanged_seconds"] = round(time.time() - started, 1)

    # A one-line change, built from a copy of the checkout with the same caches: ccache and Docker's layers.
    context = os.path.join(stack.scratch, "context")
    files = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, quiet=True).stdout.split()
    for name in files:
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.join(context, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(context, name))
    with open(os.path.join(context, "server", "status.cc"), "a") as f:
        f.write("// container test: a one-line change\n")
    probe = image + "-one-line-change"
    started = time.time()
    run([DOCKER, "build", "--target", "runtime-cpu", "--build-arg", f"DEBIAN_IMAGE={stack.settings['DEBIAN_IMAGE']}",
         "--build-arg", f"DEBIAN_SLIM_IMAGE={stack.settings['DEBIAN_SLIM_IMAGE']}", "-t", probe, context], env=env)
    figures["rebuild_one_line_change_seconds"] = round(time.time() - started, 1)
    run([DOCKER, "image", "rm", probe], env=env, check=False, quiet=True)
    shutil.rmtree(context, ignore_errors=True)
    figures["image_runtime_cpu_mb"] = round(image_size_mb(image, env))


def train_through_restarts(stack, job_id):
    """A restart and a SIGKILL of facet while the job trains; returns the job once it has finished and the epoch
    it was in when it was killed. The server logs "job ID resuming" each time it takes the job up again; the job's
    resumed_from_epoch is set when it finishes."""
    def epoch():
        job = stack.job(job_id)
        if job.get("state") in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            raise SystemExit(f"the job ended ({job.get('state')}, epoch {job.get('progress', {}).get('epoch')}) "
                             f"before facet could be restarted under it: {job.get('error', '')}")
        return job.get("progress", {}).get("epoch", 0)

    def resumptions():
        logs = stack.compose_run("logs", "--no-color", SERVICE, quiet=True).stdout
        return logs.count(f"job {job_id} resuming")

    wait_until("epoch 2 of training", lambda: epoch() >= 2, 600)
    stack.compose_run("restart", SERVICE)
    stack.wait_healthy()
    wait_until("the job to resume after `docker-compose restart`", lambda: resumptions() >= 1, 60)
    restarted_in = epoch()
    log(f"ok: after `docker-compose restart` the job resumes (epoch {restarted_in})")
    wait_until(f"epoch {restarted_in + 2}", lambda: epoch() >= restarted_in + 2, 600)
    killed_in = epoch()
    run([DOCKER, "kill", "-s", "KILL", stack.container()], env=stack.env)
    stack.compose_run("up", "-d", SERVICE)  # a killed container stays down under `unless-stopped`
    stack.wait_healthy()
    wait_until("the job to resume after `docker kill -s KILL`", lambda: resumptions() >= 2, 60)
    log(f"ok: after `docker kill -s KILL` in epoch {killed_in} the job resumes again")
    stack.facetctl("watch", job_id)
    return stack.job(job_id), killed_in


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the measured figures to this file")
    parser.add_argument("--keep", action="store_true", help="leave the stack up and its folder in place")
    parser.add_argument("--cold", action="store_true",
                        help="measure a cold build: remove the facet image and Docker's build cache first")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("container_test.py: run as root (it may install and start Docker)")
    if not shutil.which("docker-compose"):
        sys.exit("container_test.py: docker-compose is missing (deploy/install-deps.sh installs it)")

    scratch = tempfile.mkdtemp(prefix="facet-container-test-")
    os.chmod(scratch, 0o755)  # the container's uid 10001 reads the data and config folders inside
    figures = {}
    env = dict(os.environ)
    # Debian's docker client has BuildKit built in; a newer one on PATH may want the buildx plugin instead.
    env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    env.update(DOCKER=DOCKER, DOCKER_BUILDKIT="1", COMPOSE_DOCKER_CLI_BUILD="1")
    ports = {name: free_port() for name in ("FACET_GRPC_PORT", "FACET_METRICS_PORT", "PROMETHEUS_PORT",
                                             "GRAFANA_PORT")}
    # The test's .env: the README's settings for a CPU host, on ports of its own.
    settings = {"COMPOSE_PROFILES": "cpu", "FACET_CPU_IMAGE": env.get("FACET_CPU_IMAGE", "facet:cpu"),
                **{name: str(port) for name, port in ports.items()}}
    env["FACET_CPU_IMAGE"] = settings["FACET_CPU_IMAGE"]  # deploy/facetctl's image
    env["FACET_SERVER"] = f"127.0.0.1:{ports['FACET_GRPC_PORT']}"
    stack = None
    with DockerEngine(scratch):
        try:
            choose_base_images(env, settings, figures)
            settings["PROMETHEUS_IMAGE"] = env.get("PROMETHEUS_IMAGE", "prom/prometheus:v2.42.0")
            if not image_available(settings["PROMETHEUS_IMAGE"], env):
                settings["PROMETHEUS_IMAGE"] = "facet-prometheus:debian"
                log("prom/prometheus cannot be pulled: Prometheus from Debian's package (deploy/prometheus)")
                run([DOCKER, "build", "--build-arg", f"DEBIAN_IMAGE={settings['DEBIAN_IMAGE']}", "-t",
                     settings["PROMETHEUS_IMAGE"], os.path.join(ROOT, "deploy", "prometheus")], env=env)
            services = [SERVICE, "prometheus"]
            settings["GRAFANA_IMAGE"] = env.get("GRAFANA_IMAGE", "grafana/grafana:10.2.3")
            if image_available(settings["GRAFANA_IMAGE"], env):
                services.append("grafana")
            else:
                log(f"Grafana: {settings['GRAFANA_IMAGE']} cannot be pulled here, and Debian has no package: "
                    "not started")
            stack = Stack(env, settings, scratch, services)
            if args.cold:
                run([DOCKER, "image", "rm", "-f", settings["FACET_CPU_IMAGE"]], env=env, check=False)
                run([DOCKER, "builder", "prune", "-af"], env=env)
            build(stack, env, figures)

            # The README's first steps: a token, its line in the mounted token file, the file named in .env.
            token = stack.facetctl("token", "create", "--role", "admin", "--name", "container-test").stdout
            secret = next(l.split(": ", 1)[1] for l in token.splitlines() if l.startswith("token: "))
            line = next(l.split(": ", 1)[1] for l in token.splitlines() if l.startswith("token file line: "))
            os.makedirs(f"{scratch}/config", mode=0o755)
            with open(f"{scratch}/config/tokens", "w") as f:
                f.write(line + "\n")
            os.chmod(f"{scratch}/config/tokens", 0o644)
            with open(f"{scratch}/.facet-token", "w") as f:
                f.write(secret + "\n")
            settings.update(FACET_CONFIG_DIR=f"{scratch}/config", FACET_AUTH_TOKENS="/etc/facet/tokens",
                            FACET_DATA_DIR=f"{scratch}/data", FACET_HEALTHCHECK_INTERVAL="2s")

            real = os.path.isdir(os.path.join(SHARED, "utkface-train"))
            if real:
                copy_faces(os.path.join(SHARED, "utkface-train"), f"{scratch}/data/faces", 800)
                faces = copy_faces(os.path.join(SHARED, "utkface-sample"), f"{scratch}/predict", 8)
            else:
                log("../shared/data is absent: synthetic faces instead of real ones")
                os.makedirs(f"{scratch}/data", exist_ok=True)
                stack.make_dataset("--out", f"{scratch}/data/faces", "--count", "800")
                faces = copy_faces(f"{scratch}/data/faces", f"{scratch}/predict", 8)
            with open(f"{scratch}/predict/not-an-image.jpg", "wb") as f:
                f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
            run(["chmod", "-R", "a+rX", f"{scratch}/data"], quiet=True)

            started = time.time()
            stack.compose_run("up", "-d", *services)
            stack.wait_healthy()
            figures["up_to_healthy_seconds"] = round(time.time() - started, 1)
            health = stack.facetctl("health").stdout
            require("(server)" in health and "SERVING" in health.splitlines()[0],
                    "facetctl on the host reaches the published port with its token: " + health.splitlines()[0])
            metrics_url = f"http://127.0.0.1:{ports['FACET_METRICS_PORT']}/metrics"
            metrics = (run(["curl", "-s", metrics_url]).stdout if shutil.which("curl")
                       else urllib.request.urlopen(metrics_url, timeout=10).read().decode())
            info = [l for l in metrics.splitlines() if l.startswith("facet_server_info{")]
            require(info and 'device="cpu"' in info[0], f"the metrics name the device: {info}")
            refused = run([os.path.join(ROOT, "deploy", "facetctl"), "jobs"], env=env, check=False, cwd=scratch)
            require(refused.returncode != 0 and "UNAUTHENTICATED" in refused.stdout + refused.stderr,
                    "without its token the same call is UNAUTHENTICATED")

            wrong = stack.facetctl("train", "--data", "no-such-folder", check=False)
            require(wrong.returncode == 1 and "no-such-folder" in wrong.stdout + wrong.stderr,
                    "a wrong data path is refused with a message that names it: " + wrong.stderr.strip())

            submitted = stack.facetctl("train", "--data", "faces", "--arch", "resnet18", "--width", "16", "--size",
                                       "64", "--batch", "32", "--frozen-epochs", "1", "--unfrozen-epochs", "9")
            job_id = submitted.stdout.split()[1]
            job, killed_in = train_through_restarts(stack, job_id)
            epochs = [h["epoch"] for h in job.get("history", [])]
            total = job["progress"]["total_epochs"]
            require(job["state"] == "JOB_STATE_SUCCEEDED" and epochs == list(range(1, total + 1)),
                    f"the job finished with every epoch once: {epochs}")
            require(job.get("resumed_from_epoch", 0) >= killed_in - 1,
                    f"after the SIGKILL in epoch {killed_in} it went on from the checkpoint of epoch "
                    f"{job.get('resumed_from_epoch')}")

            model_id = job["model_id"]
            stack.facetctl("activate", model_id)
            relative_faces = [os.path.relpath(f, scratch) for f in faces]
            out = stack.facetctl("predict", "--json", *relative_faces).stdout
            answers = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
            require(len(answers) == len(faces) and all(a["result"]["faces"][0]["age_years"] > 0 for a in answers),
                    f"Predict answers every one of {len(faces)} {'real held-out' if real else 'synthetic'} faces")
            bad = stack.facetctl("predict", "predict/not-an-image.jpg", check=False)
            require(bad.returncode != 0 and " error 3: " in bad.stdout,  # 3: gRPC's INVALID_ARGUMENT
                    "an image that cannot be decoded gets INVALID_ARGUMENT: " + bad.stdout.splitlines()[-1])

            prometheus = f"127.0.0.1:{ports['PROMETHEUS_PORT']}"
            wait_until("Prometheus to scrape facet", lambda: any(
                r["value"][1] == "1" for r in query(prometheus, 'up{job="facet"}')), 120)
            for _ in range(6):  # Predict traffic over a few scrapes, so that rates have two samples
                stack.facetctl("predict", *relative_faces)
                time.sleep(2)
            time.sleep(12)
            info = query(prometheus, "facet_server_info")
            require(info and info[0]["metric"].get("device") == "cpu",
                    f"Prometheus scrapes the container; facet_server_info says {info[0]['metric'] if info else None}")
            checked, empty = queries_without_data(prometheus, job_id)
            require(not empty, f"every one of {checked} dashboard queries returns data" +
                    "".join(f"\n  no data: {e}" for e in empty))

            stack.compose_run("down")
            volumes = run([DOCKER, "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"],
                          env=env, quiet=True).stdout.split()
            require(f"{stack.project}_facet-state" in volumes, f"`down` keeps the volumes: {volumes}")
            stack.compose_run("up", "-d", *services)
            stack.wait_healthy()
            require(job_id in stack.facetctl("jobs").stdout and model_id in stack.facetctl("models").stdout,
                    "after `down` and `up` the job and its model are still there")
        finally:
            if stack and not args.keep:
                stack.compose_run("down", "-v", "--remove-orphans", check=False)
            if not args.keep:
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                log(f"kept: project {stack.project if stack else '-'}, folder {scratch}")

    log("measured: " + json.dumps(figures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    print("container test: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
