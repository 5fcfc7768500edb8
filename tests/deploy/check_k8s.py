"""Static checks of deploy/k8s: every document parses, has the fields Kubernetes requires, and the replicas follow
the primary behind a headless Service. No cluster is needed (none is reachable here)."""
import sys

import yaml

docs = []
for path in sys.argv[1:]:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            for field in ("apiVersion", "kind", "metadata"):
                assert field in doc, f"{path}: a document without {field}"
            docs.append(doc)
by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
primary = by_name[("StatefulSet", "facet-primary")]
replicas = by_name[("Deployment", "facet-replicas")]
assert by_name[("Service", "facet-primary")]["spec"]["ports"][0]["port"] == 7070
assert by_name[("Service", "facet-replicas")]["spec"]["clusterIP"] == "None", "replicas need a headless Service"
args = replicas["spec"]["template"]["spec"]["containers"][0]["args"]
assert args[args.index("--follow") + 1] == "facet-primary:7070", args
for workload in (primary, replicas):
    labels = workload["spec"]["template"]["metadata"]["labels"]
    assert workload["spec"]["selector"]["matchLabels"] == labels, workload["metadata"]["name"]
probe = replicas["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]
assert probe["service"] == "facet.v1.InferenceService", "a replica is ready only when it serves a model"
print(f"deploy/k8s: {len(docs)} documents ok")
