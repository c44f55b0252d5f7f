#!/usr/bin/env bash
# The GPU checks, run on a lent GPU machine over a copy of this tree (see README "Running on a GPU").
#   bash benchmarks/gpu_check.sh A   # engine GPU paths (fp16, bf16, compile), Fashion-MNIST, text generation
#   bash benchmarks/gpu_check.sh B   # text generation (LSTM), 2D segmentation (pets), 3D segmentation (hippocampus)
# Data: $NEURALSIGHT_DATA (default .devcarry/data); extra wheels (nibabel, monai) from .whl/ when present.
# Every step has its own timeout and copies its result JSON to $OUT as soon as it ends. The benchmarks record
# (--write: benchmarks/results/<name>-<tag>.json, which the step copies); a copied tree is no git checkout, so
# they need NEURALSIGHT_GIT_COMMIT (the full hash the tree was copied from) and --allow-dirty (recorded).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src:$PWD/tests" PYTHONUNBUFFERED=1 MPLBACKEND=Agg NEURALSIGHT_OFFLINE=1
export NEURALSIGHT_DATA="${NEURALSIGHT_DATA:-$PWD/.devcarry/data}"
OUT="${OUT:-/tmp/gpu_out}"; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
if [ -z "${NEURALSIGHT_GIT_COMMIT:-}" ] && ! git rev-parse HEAD >/dev/null 2>&1; then
  echo "gpu_check: set NEURALSIGHT_GIT_COMMIT to the commit this tree was copied from (the benchmarks refuse without it)"
fi
REC="--write --allow-dirty"
TAG=$(python3 -c "import torch; from neuralsight.engine.device import hardware_tag; print(hardware_tag(torch.device('cuda')))")
step() {  # step NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  echo "=== $name (limit ${secs}s)"; local t0=$SECONDS
  timeout "$secs" "$@" 2>&1 | tail -n 40; echo "=== $name rc=${PIPESTATUS[0]} in $((SECONDS - t0))s"
  cp benchmarks/results/*-"$TAG"*.json "$OUT"/ 2>/dev/null || true
}
case "${1:-A}" in
A)
  for prec in fp16 bf16; do
    step "engine toy $prec" 90 python3 tests/engine_toy.py train toy --device cuda --precision $prec --steps 60 --out /tmp/g --no-progress
  done
  step "engine toy bf16 compile" 150 python3 tests/engine_toy.py train toy --device cuda --precision bf16 --compile --steps 60 --out /tmp/g --no-progress
  step "fashion (fashion, lecture, baseline; 10 s each)" 150 python3 benchmarks/fashion_mnist.py --hardware "$TAG" --device cuda --seeds 3 --presets fashion,lecture --no-quick $REC
  step "fashion-best (75 s)" 130 python3 benchmarks/fashion_mnist.py --hardware "$TAG-best" --device cuda --seeds 1 --presets fashion-best --best-budget 75 --no-peers --no-quick $REC
  step "textgen (120 s LSTM + 20 s per cell + romeo 20 s)" 260 python3 benchmarks/textgen.py --hardware "$TAG" --device cuda --seeds 1 --compare-budget 20 --romeo-budget 20 $REC
  ;;
B)
  step "textgen (120 s LSTM)" 190 python3 benchmarks/textgen.py --hardware "$TAG" --device cuda --seeds 1 --cells "" --romeo-budget 0 $REC
  step "segmentation pets (50 s per model)" 170 python3 benchmarks/segmentation.py --hardware "$TAG" --device cuda --seeds 1 --budget 50 --datasets pets --long-budget 0 --no-quick $REC
  step "segment3d (40 s per model)" 120 python3 benchmarks/segment3d.py --hardware "$TAG" --device cuda --seeds 1 --budget 40 $REC
  ;;
esac
ls -la "$OUT"
