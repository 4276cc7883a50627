#!/usr/bin/env bash
# The GPU path checked in one command, in under 5 minutes on one H100-class GPU with 16 cores, in an
# environment installed with `pip install -c envs/lock-gpu.txt -e ".[gpu,demo,test]"`:
#
#   bash benchmarks/gpu_check.sh
#
# It prints nvidia-smi, runs the GPU-marked tests, times the embedding stage at the paper's sizes
# on synthetic full-size JPEGs (decoded in the workers and on the GPU), Adaptor pre-training at batch
# 1024 in bf16, faiss on the GPU, and the tiny DAG; progress goes to stderr, and the last line of
# stdout is one JSON object with every figure. Sizes: GPU_CHECK_IMAGES (default 2000 images of
# 2,500 x 3,000), GPU_CHECK_PAIRS (default 131072 pre-training pairs).
set -euo pipefail
cd "$(dirname "$0")/.."
images=${GPU_CHECK_IMAGES:-2000}
pairs=${GPU_CHECK_PAIRS:-131072}
cores=$(nproc)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
started=$(date +%s)

step() { echo "== $1 ($(($(date +%s) - started)) s)" >&2; }

step "nvidia-smi"
nvidia-smi >&2 || echo "nvidia-smi: not found or failed (no NVIDIA driver here?)" >&2

step "GPU-marked tests"
tests_rc=0
python -m pytest -m gpu -q -p no:cacheprovider tests/gpu > "$out/pytest.txt" 2>&1 || tests_rc=$?
tail -n 5 "$out/pytest.txt" >&2

step "embedding at the paper's sizes, $images full-size JPEGs"
python benchmarks/embed_throughput.py --preset paper --n "$images" --batch 256 --decode cpu gpu \
  --workers "$cores" --threads "$cores" --writers "$cores" > "$out/embed.json"

step "Adaptor pre-training, $pairs pairs, batch 1024, bf16"
python benchmarks/pretrain_throughput.py --n "$pairs" --batch 1024 --epochs 2 --threads "$cores" \
  > "$out/pretrain.json"

step "faiss"
python benchmarks/retrieval_throughput.py > "$out/faiss.json"

step "the tiny DAG"
dag_started=$(date +%s)
dag_rc=0
python -m snakemake --snakefile Snakefile --directory "$out/tiny" --configfile tests/workflow/tiny.yaml \
  --cores "$cores" > "$out/tiny.log" 2>&1 || dag_rc=$?
dag_seconds=$(($(date +%s) - dag_started))
tail -n 3 "$out/tiny.log" >&2

step "done"
python - "$out" "$tests_rc" "$dag_rc" "$dag_seconds" "$(($(date +%s) - started))" <<'EOF'
import json
import sys
from pathlib import Path

out, tests_rc, dag_rc, dag_seconds, total = Path(sys.argv[1]), *map(int, sys.argv[2:])
parts = [json.loads(p.read_text()) for p in (out / "tiny").glob("results/cache/*/*/*.parts/*.json")]
summary = {
    "gpu_tests": {"exit_status": tests_rc, "summary": (out / "pytest.txt").read_text().strip().splitlines()[-1]},
    "embed": json.loads((out / "embed.json").read_text()),
    "pretrain": json.loads((out / "pretrain.json").read_text()),
    "faiss": json.loads((out / "faiss.json").read_text()),
    "tiny_dag": {
        "exit_status": dag_rc,
        "seconds": dag_seconds,
        "embed_parts": len(parts),
        "embed_parts_on_cuda": sum(str(p.get("device", "")).startswith("cuda") for p in parts),
    },
    "total_seconds": total,
}
print(json.dumps(summary, separators=(",", ":")))
EOF
