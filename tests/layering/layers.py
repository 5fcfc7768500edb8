#!/usr/bin/env python3
"""The layers of facet's code, read from its #include lines.

Each folder is a module; an #include of another module's header is an arrow. RULES says which arrows may exist:
a module uses only modules below it, so the arrows point one way. `layers.py --check DOC` fails on an arrow the rules
do not allow, or when DOC's picture (the Mermaid block between the markers) is not the one the code makes today;
`layers.py --mermaid` prints that picture.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BEGIN, END = "<!-- layers:begin (tests/layering/layers.py --mermaid) -->", "<!-- layers:end -->"

CORE_BASE = ["core/util", "core/labels"]
# module -> the modules it may include, each with the reason the arrow exists.
RULES = {
    "core/util": [],                      # helpers: files, flags, devices, seeds, ranges, setting tables
    "core/labels": [],                    # the UTKFace label set
    "core/image": [],                     # image view, normalisation constants, the one resize: plain C++
    "core/model": CORE_BASE,              # the network, its files (export and load live with the model)
    "core/loss": ["core/model"] + CORE_BASE,
    "core/distributed": CORE_BASE,        # c10d process groups
    "core/data": ["core/image"] + CORE_BASE,  # data sets, decoding, augmentation, loaders; owns DataConfig
    "core/infer": ["core/model", "core/image"] + CORE_BASE,  # serving never needs the trainer
    "core/train": ["core/data", "core/model", "core/loss", "core/distributed", "core/image"] + CORE_BASE,
    "core/tools": ["core/data"] + CORE_BASE,
    "core/examples": ["core/data", "core/infer", "core/train", "core/model", "core/loss", "core/image"] + CORE_BASE,
    "proto": [],                          # the API, generated, and reflection by field path
    "client": ["proto"],                  # the gRPC client library: the generated API alone
    "client/tools": ["client", "proto", "core/train", "core/util"],  # facetctl: plain settings only (no LibTorch)
    "server": ["client", "proto", "core/data", "core/infer", "core/train", "core/model", "core/loss",
               "core/distributed", "core/image"] + CORE_BASE,
}


def module_of(path):
    parts = path.split("/")
    if parts[0] == "core":
        if len(parts) == 2:
            return "core/" + os.path.splitext(parts[1])[0]  # core/labels.h
        return "core/" + parts[1]
    if parts[0] == "client":
        return "client/tools" if len(parts) > 2 and parts[1] == "tools" else "client"
    if parts[0] in ("proto", "facet", "grpc"):  # generated headers are included as facet/v1/...
        return "proto"
    if parts[0] == "server":
        return "server"
    return None


def arrows():
    files = subprocess.check_output(["git", "ls-files", "core", "client", "server", "proto"], cwd=ROOT, text=True)
    edges = collections.defaultdict(lambda: collections.defaultdict(list))
    for path in files.split():
        if not path.endswith((".h", ".cc")):
            continue
        source = module_of(path)
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            for included in re.findall(r'^#include "([^"]+)"', f.read(), re.M):
                target = module_of(included)
                if target and target != source:
                    edges[source][target].append(f"{path} includes {included}")
    return edges


def mermaid(edges):
    lines = ["```mermaid", "flowchart TD"]
    for source in sorted(edges):
        for target in sorted(edges[source]):
            lines.append(f"  {source.replace('/', '_')}[{source}] --> {target.replace('/', '_')}[{target}]")
    lines.append("```")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mermaid", action="store_true", help="print the picture")
    parser.add_argument("--check", metavar="DOC", help="check the rules and DOC's picture")
    args = parser.parse_args()
    edges = arrows()
    if args.mermaid:
        print(mermaid(edges))
    if args.check:
        failures = []
        for source, targets in sorted(edges.items()):
            if source not in RULES:
                failures.append(f"{source}: a module the rules do not name (add it to RULES in {__file__})")
                continue
            for target, where in sorted(targets.items()):
                if target not in RULES[source]:
                    failures.append(f"{source} -> {target}: an arrow the layers do not allow ({where[0]})")
        with open(os.path.join(ROOT, args.check), encoding="utf-8") as f:
            doc = f.read()
        if BEGIN not in doc or END not in doc:
            failures.append(f"{args.check}: no picture between {BEGIN} and {END}")
        elif doc.split(BEGIN)[1].split(END)[0].strip() != mermaid(edges):
            failures.append(f"{args.check}: the picture is not the code's; paste `tests/layering/layers.py --mermaid`")
        for failure in failures:
            print("layers:", failure, file=sys.stderr)
        if failures:
            return 1
        print(f"layers: {sum(len(t) for t in edges.values())} arrows between {len(edges)} modules, all pointing down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
