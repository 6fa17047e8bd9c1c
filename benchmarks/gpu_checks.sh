#!/usr/bin/env bash
# The GPU checks of issue 11 as one device call: the pipeline's cost (benchmarks/pipeline.py), then the
# serving benchmark (benchmarks/serve.py, whose REST flow runs discover and edit on the server), both on
# the GPU, each section written into a copy of BENCHMARKS.md under $OUT. benchmarks/README.md says how
# the packages and the embedded model travel (.whl, .gpua, .gpub).
#   OUT=... bash benchmarks/gpu_checks.sh
# PIPELINE_S=0 skips the pipeline; DEVICE_TESTS="tests/a.py tests/b.py" first runs those tests' $DEVICE cases.
# Rehearsal here, on the CPU with a Python like the device's:
#   PY=/tmp/sim/bin/python DEVICE=cpu OUT=runs/gpu_rehearsal SERVE_ARGS=--tiny bash benchmarks/gpu_checks.sh
set -uo pipefail
OUT=${OUT:-runs/gpu_checks}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/gpu_checks}
PIPELINE_S=${PIPELINE_S:-240}
SERVE_S=${SERVE_S:-300}
PARTS=${PARTS:-.gpua .gpub}
SERVE_ARGS=${SERVE_ARGS:---requests-1 2000 --concurrent 1280 --rounds 16}
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 BENTOML_DO_NOT_TRACK=True

"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
  || exit 1
# shellcheck disable=SC2086
"$PY" benchmarks/device_payload.py unpack $PARTS --target "$SITE" || exit 1
export PYTHONPATH="$SITE:$PWD"
{
  nvidia-smi 2>&1 | head -15
  "$PY" -c "import torch, transformers, bentoml; print('torch', torch.__version__, 'transformers', transformers.__version__,
'bentoml', bentoml.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
  nproc
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
cp BENCHMARKS.md "$OUT/BENCHMARKS.md"

if [ -n "${DEVICE_TESTS:-}" ]; then  # the device-parametrised tests, on this device only
  # shellcheck disable=SC2086
  timeout 180 "$PY" -m pytest -q -p no:cacheprovider $DEVICE_TESTS -k "$DEVICE" 2>&1 | tee "$OUT/tests.log" | tail -5
fi
[ "$PIPELINE_S" = 0 ] || {
SECONDS=0
timeout "$PIPELINE_S" "$PY" benchmarks/pipeline.py --device "$DEVICE" --out "$WORK/pipeline" \
  --write "$OUT/BENCHMARKS.md" 2>&1 | tee "$OUT/pipeline.log"
echo "pipeline.py: exit ${PIPESTATUS[0]} after $SECONDS s"
}
SECONDS=0
# shellcheck disable=SC2086
timeout "$SERVE_S" "$PY" benchmarks/serve.py --device "$DEVICE" --home "$WORK/serve" $SERVE_ARGS \
  --write "$OUT/BENCHMARKS.md" --json "$OUT/serve.json" 2>&1 | tee "$OUT/serve.log"
echo "serve.py: exit ${PIPESTATUS[0]} after $SECONDS s"
cp "$WORK/serve/server.log" "$OUT/server.log" 2>/dev/null
true
