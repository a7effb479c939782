#!/usr/bin/env bash
# Every GPU check of issue 23 in one command (about 6-8 minutes on one H100; no network, no hub weights):
# random-init Llama-3.2-1B / Llama-2-7B shapes with SmolLM2's real tokenizer (benchmarks/random_model.py).
#   1. 1B LoRA: TRL (authors' recipe, best settings) vs ours (fp32, bf16, packed token-budget batches):
#      tokens/s end to end and steady (after 3 steps), MFU (4N) against the measured matmul peak;
#   2. 7B LoRA bf16: TRL-best vs ours vs ours packed, on one token budget;
#   3. 1B sampling (k=4, T=0.8, top-p 0.95): tokens/s with the dynamic and the static (compiled) KV cache, at
#      sample's default prompts per call and at 4x as many.
# Writes OUT/train-1b.json, OUT/train-large-7b.json, OUT/sampling-1b*.json and OUT/gpu_checks.md (a summary);
# a check that fails or runs out of time is named at the end (exit 1) and the others still run.
# Usage: benchmarks/gpu_checks.sh [OUT] [SHAPE_SMALL] [SHAPE_LARGE]   (a CPU smoke test, ~3 min: BUDGET=2000 ROWS=32 SAMPLE_ROWS=4 NEW_TOKENS=8 benchmarks/gpu_checks.sh OUT tiny tiny)
set -uo pipefail
OUT=${1:-${OUT:-benchmarks/results/gpu}}
SMALL=${2:-1b}
LARGE=${3:-7b}
BUDGET=${BUDGET:-120000}  # real tokens of every 7B run (a CPU smoke test: BUDGET=2000 ROWS=32)
ROWS=${ROWS:-512}
SAMPLE_ROWS=${SAMPLE_ROWS:-32}  # sampling prompts (x k=4) and tokens each (a CPU smoke test: SAMPLE_ROWS=4 NEW_TOKENS=8)
NEW_TOKENS=${NEW_TOKENS:-128}
DEVICE=$(python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute: the checks run from the repository root
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
log() { echo "== $* ($(date +%T))"; }
STEPS=${STEPS:-1,2,3}  # which checks (two calls on a rented GPU: STEPS=1,3 then STEPS=2)
FAILED=()
step() {  # a failing or timed-out check is reported and the next one still runs
  local n=$1; shift
  [[ ",$STEPS," == *",$n,"* ]] || return 0
  log "$n/3 $1"; shift
  "$@" || { echo "!! check $n failed (exit $?)"; FAILED+=("$n"); }
}
step 1 "train throughput, $SMALL" timeout 240 python benchmarks/train_throughput.py --device "$DEVICE" \
  --random-init "$SMALL" --workdir "$WORK" --steps 12 --rows 96 --batch-tokens 4096 --json "$OUT/train-$SMALL.json"
step 2 "train throughput, $LARGE" timeout 300 python benchmarks/train_throughput.py --device "$DEVICE" \
  --random-init "$LARGE" --workdir "$WORK" --runs trl-best,ours-bf16 --batch-tokens 4096 --budget "$BUDGET" \
  --rows "$ROWS" --no-heldout --json "$OUT/train-large-$LARGE.json"
step 3 "sampling, $SMALL" timeout 150 python benchmarks/sampling_speed.py --random-init "$SMALL" --workdir "$WORK" \
  --rows "$SAMPLE_ROWS" --k 4 --max-new-tokens "$NEW_TOKENS" --kv-cache dynamic,static --precision auto \
  --json "$OUT/sampling-$SMALL.json"
step 3 "sampling, $SMALL, 4x the prompts per call" timeout 120 python benchmarks/sampling_speed.py \
  --random-init "$SMALL" --workdir "$WORK" --rows "$SAMPLE_ROWS" --k 4 --batch-size 32 \
  --max-new-tokens "$NEW_TOKENS" --kv-cache dynamic,static --precision auto --json "$OUT/sampling-$SMALL-batch32.json"
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
lines = ["# GPU checks (issue 23)", ""]
for path in sorted(out.glob("*.json")):
    r = json.loads(path.read_text())
    lines += [f"## {path.stem}", "", "| number | value | target |", "|---|---|---|"]
    lines += [f"| {h['name']} | {h['value']} {h['unit']} | {h['target'] if h['target'] is not None else '-'} |"
              for h in r.get("headline", [])]
    for name, run in r.get("runs", {}).items():
        extra = f", MFU {run['mfu']} (steady {run.get('mfu_steady')})" if "mfu" in run else ""
        lines.append(f"- {name}: {run['tokens_per_s']} tokens/s"
                     + (f", steady {run.get('steady_tokens_per_s')}" if "steady_tokens_per_s" in run else "") + extra)
    lines.append("")
(out / "gpu_checks.md").write_text("\n".join(lines))
print("\n".join(lines))
PY
log "done: $OUT/gpu_checks.md${FAILED:+ (failed checks: ${FAILED[*]})}"
[[ ${#FAILED[@]} -eq 0 ]]
