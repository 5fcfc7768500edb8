#!/usr/bin/env bash
# The main job, end to end on this machine: make a synthetic UTKFace-format data set, train the multi-task model
# on it, export it and predict a few faces. Until the service lands (facet-server, facetctl) this runs the core
# library's example; the service will take this script over.
set -euo pipefail
BUILD_DIR=${1:-build}
OUT=${FACET_DEMO_DIR:-out/demo}
mkdir -p "$OUT"
echo "demo: writing outputs to $OUT"
"$BUILD_DIR/core/facet-train-example" \
  --synthetic-dir "$OUT/synthetic" --images 800 \
  --arch resnet18 --width 32 --size 64 --batch 32 \
  --frozen-epochs 1 --unfrozen-epochs 5 \
  --out "$OUT/model.pt"
echo "demo: done. Model: $OUT/model.pt (a dict of tensors: /usr/bin/python3 -c \"import torch; print(list(torch.load('$OUT/model.pt'))[:5])\")"
