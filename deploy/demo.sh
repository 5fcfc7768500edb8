#!/usr/bin/env bash
# The main job, end to end on this machine: a synthetic UTKFace-format data set, facet-server on localhost,
# a short training job watched live, its model activated, predictions on a few images, and where the metrics are.
# The server is left running; the last lines say how to stop it.
set -euo pipefail
BUILD_DIR=${1:-build}
OUT=${FACET_DEMO_DIR:-out/demo}
PORT=${FACET_DEMO_PORT:-7070}
METRICS_PORT=${FACET_DEMO_METRICS_PORT:-9464}
SERVER="127.0.0.1:$PORT"
CTL=("$BUILD_DIR/client/facetctl" --server "$SERVER")

mkdir -p "$OUT"
if [ -f "$OUT/facet-server.pid" ] && kill -0 "$(cat "$OUT/facet-server.pid")" 2>/dev/null; then
  echo "demo: stopping the server a previous demo left running"
  kill "$(cat "$OUT/facet-server.pid")"
  while kill -0 "$(cat "$OUT/facet-server.pid")" 2>/dev/null; do sleep 0.2; done
fi

if [ ! -d "$OUT/data/faces" ]; then
  "$BUILD_DIR/core/facet-make-dataset" --out "$OUT/data/faces" --count 1000 --size 128
fi

echo "demo: starting facet-server on $SERVER (log: $OUT/facet-server.log)"
nohup "$BUILD_DIR/server/facet-server" --listen "$SERVER" --metrics-listen "127.0.0.1:$METRICS_PORT" \
  --data-root "$OUT/data" --state-dir "$OUT/state" >"$OUT/facet-server.log" 2>&1 &
echo $! >"$OUT/facet-server.pid"
for _ in $(seq 1 100); do
  "${CTL[@]}" --timeout 1 health >/dev/null 2>&1 && break
  if ! kill -0 "$(cat "$OUT/facet-server.pid")" 2>/dev/null; then
    echo "demo: facet-server did not start:" >&2; cat "$OUT/facet-server.log" >&2; exit 1
  fi
  sleep 0.2
done
"${CTL[@]}" health

echo
echo "demo: training a small model (ResNet-18, width 32, 64 px): stage 1 frozen encoder, stage 2 unfrozen"
"${CTL[@]}" train --data faces --arch resnet18 --width 32 --size 64 --batch 32 \
  --frozen-epochs 1 --unfrozen-epochs 5 --watch | tee "$OUT/train.txt"
JOB=$(sed -n 's/^submitted \(job-[0-9a-f]*\).*/\1/p' "$OUT/train.txt")
MODEL=$("${CTL[@]}" job "$JOB" | sed -n 's/^produced *\(model-[0-9a-f]*\)/\1/p')

echo
"${CTL[@]}" activate "$MODEL"
echo
echo "demo: predicting five images"
"${CTL[@]}" predict $(ls -d "$OUT"/data/faces/* | awk 'NR % 200 == 1')

cat <<MSG

demo: done.
  server    $SERVER (pid $(cat "$OUT/facet-server.pid"), log $OUT/facet-server.log), still running
  metrics   http://127.0.0.1:$METRICS_PORT/metrics
  try       $BUILD_DIR/client/facetctl --server $SERVER jobs | models | job $JOB | predict FILE...
  stop      kill \$(cat $OUT/facet-server.pid)     (SIGTERM: a clean shutdown)
MSG
