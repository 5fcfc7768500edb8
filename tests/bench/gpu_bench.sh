#!/usr/bin/env bash
# On a machine with a GPU and python3's CUDA torch (and CMake, ninja; nothing else needed): builds the core library
# and facet-gpu-bench against that torch's LibTorch, then measures training and inference images/s for ResNet-34 at
# 64 and 128 px, batch 256, fp32 and bf16 autocast, contiguous and channels-last, in C++ and in Python torch on the
# same GPU. Prints a table; writes the JSON lines to $OUT (or ./gpu-bench) as gpu_bench.jsonl.
# usage: tests/bench/gpu_bench.sh [REFERENCE_DIR]   (default ../shared/reference; a copy of mtl_reference.py)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
reference=${1:-$root/../shared/reference}
out=${OUT:-$root/gpu-bench}
mkdir -p "$out"
python=${PYTHON:-python3}
prefix=$($python -c 'import torch; print(torch.utils.cmake_prefix_path)')
$python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' \
  | tee "$out/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$out/env.txt" 2>/dev/null
results=$out/gpu_bench.jsonl
: > "$results"
build=$out/build
build_bench() {  # extra CMake flags; logs to $out/cmake.log
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_BUILD_TESTS=OFF \
    -DCMAKE_PREFIX_PATH="$prefix" "$@" >> "$out/cmake.log" 2>&1 \
    && cmake --build "$build" --target facet-gpu-bench >> "$out/cmake.log" 2>&1
}
: > "$out/cmake.log"
built=yes
if ! build_bench; then
  # The bench needs no data-parallel code: if c10d's API in this LibTorch breaks its build, measure without it.
  echo "gpu_bench: the full build failed (first errors below); again with -DFACET_DISTRIBUTED=OFF" >&2
  grep -m 5 "error" "$out/cmake.log" >&2
  build_bench -DFACET_DISTRIBUTED=OFF || built=no
fi
if [ "$built" = yes ]; then
  "$build/tests/bench/facet-gpu-bench" --device cuda | tee -a "$results"
else
  echo "gpu_bench: the C++ build failed; see $out/cmake.log (the Python side still runs)" >&2
  tail -20 "$out/cmake.log" >&2
fi
$python "$root/tests/bench/gpu_bench.py" "$reference" --device cuda | tee -a "$results"
$python - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
key = lambda r: (r["bench"], r["size"], r["precision"], r["channels_last"])
table = {}
for r in rows:
    table.setdefault(key(r), {})[r["impl"]] = r["images_per_s"]
print(f"{'bench':6} {'size':>4} {'precision':9} {'layout':14} {'C++ img/s':>10} {'Python img/s':>12} {'ratio':>6}")
for k in sorted(table):
    cpp, py = table[k].get("C++"), table[k].get("Python")
    ratio = f"{cpp / py:.2f}" if cpp and py else "-"
    print(f"{k[0]:6} {k[1]:>4} {k[2]:9} {'channels_last' if k[3] else 'contiguous':14} "
          f"{cpp or '-':>10} {py or '-':>12} {ratio:>6}")
PY
