#!/usr/bin/env bash
# Regenerates the request fuzzer's seed corpus: one file per RPC, its selector byte then the request encoded from
# text format by protoc. usage: make_request_corpus.sh (from anywhere)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../../proto
out=$here/corpus/request
mkdir -p "$out"
seed() {  # seed NAME SELECTOR MESSAGE TEXT
  { printf "\\x$(printf %02x "$2")"; printf '%s' "$4" | protoc -I"$proto" --encode="facet.v1.$3" facet/v1/facet.proto; } \
    > "$out/$1"
}
seed start-valid 0 StartTrainingRequest 'config { data_dir: "faces" arch: "resnet18" base_width: 8 image_size: 32 batch_size: 8 frozen { epochs: 1 } unfrozen { epochs: 1 } }'
seed start-traversal 0 StartTrainingRequest 'config { data_dir: "../faces" val_dir: "/etc" pretrained_encoder: "faces" }'
seed start-nonsense 0 StartTrainingRequest 'config { data_dir: "empty" batch_size: -3 image_size: 100000 val_fraction: 2 loss_weighting: LOSS_WEIGHTING_FIXED fixed_weights: 1 }'
seed get-job 1 GetJobRequest 'id: "job-000000000001"'
seed list-jobs 2 ListJobsRequest 'state: JOB_STATE_QUEUED page_size: 3 page_token: "MTIz"'
seed cancel-job 3 CancelJobRequest 'id: "job-000000000001"'
seed get-model 4 GetModelRequest 'id: "model-1"'
seed activate-model 5 ActivateModelRequest 'id: "model-1"'
seed register-model 6 RegisterModelRequest 'path: "faces"'
seed predict 7 PredictRequest 'images: "\377\330\377\340" images: "" detect_faces: true'
seed watch-job 8 WatchJobRequest 'id: "job-x"'
ls "$out"
