#!/usr/bin/env bash
# Every CUDA measurement of docs/gpu.md's tables, in one run on one GPU (H100/H200).
#
# The GPU machine has torch, transformers and sentence-transformers but not this project's
# other packages, and no network: the embedded default's weights (converted to fp16, ~45 MB)
# and the vital-articles file travel in an ignored folder, .gpu/site, that `python benchmarks/gpu_carry.py`
# builds (name .gpu in the device call's carry; see docs/gpu.md).
#
#   OUT=/tmp/out bash benchmarks/gpu_session.sh     # one JSON file per step under $OUT
#
# Steps run in order of importance, each in a fresh process under its own time limit, and a
# step starts only while the session is inside BUDGET seconds, so a slow step loses the
# steps after it, not the figures before it.
set -u
OUT=${OUT:?set OUT to a folder}
BUDGET=${BUDGET:-430}
export PYTHONPATH="$PWD/.gpu/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
start=$(date +%s)
log="$OUT/session.log"

step() { # step NAME LIMIT_SECONDS COMMAND...; ONLY="name ..." runs only those steps
  local name=$1 limit=$2
  shift 2
  local now=$(( $(date +%s) - start ))
  if [[ -n "${ONLY:-}" && " $ONLY " != *" $name "* ]]; then
    return
  fi
  if (( now + 20 > BUDGET )); then
    echo "== $name: skipped at ${now}s (budget ${BUDGET}s)" | tee -a "$log"
    return
  fi
  echo "== $name at ${now}s: $*" | tee -a "$log"
  local t0=$(date +%s)
  timeout "$limit" "$@" >>"$log" 2>&1
  echo "== $name: rc $? in $(( $(date +%s) - t0 ))s" | tee -a "$log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee -a "$log"
python3 -c "import torch, transformers, sentence_transformers as s; print(torch.__version__, torch.version.cuda, transformers.__version__, s.__version__)" | tee -a "$log"

B="python3 benchmarks/embed.py"
QWEN=/tmp/random-qwen3-0.6b
step build-qwen 120 python3 -c "from knowledge_map.devtools.random_model import build_random_qwen3 as b; b('$QWEN', device='cuda')"
# Qwen3-0.6B-shaped, 512-token texts: naive, careful user, eager workflow, compiled workflow as a 20,000-text job.
step qwen-long 240 $B --paths "${QWEN_LONG_PATHS:-naive,careful,eager,workflow}" --model $QWEN --long --max-seq-length 512 --texts 20000 --baseline-texts 768 \
  --eager-texts 4096 --repeats 1 --compile true --out "$OUT/qwen_long.json"
# The embedded default's first pass, three ways, each in a fresh process (the warm-up is per process).
step minilm-eager 60 $B --paths eager --texts 10033 --repeats 1 --out "$OUT/minilm_eager.json"
step minilm-eager-m32 60 $B --paths eager --texts 10033 --repeats 1 --length-multiple 32 --out "$OUT/minilm_eager_m32.json"
step minilm-eager-nocudnn 60 $B --paths eager --texts 10033 --repeats 1 \
  --sdpa flash_attention,efficient_attention,math --out "$OUT/minilm_eager_nocudnn.json"
# A whole shard job of the embedded default (5,017 articles, half the corpus), as the workflow runs it.
step minilm-shard 90 python3 -c "
import json, logging, time
logging.basicConfig(level=logging.INFO)
from knowledge_map.corpus import load_corpus, vital_articles_path, write_corpus
from knowledge_map.embed import embed_shard
write_corpus(load_corpus('vital-articles', str(vital_articles_path())), '/tmp/corpus.parquet')
attrs = embed_shard('/tmp/corpus.parquet', 0, 2, '/tmp/shard-0.h5', 'all-MiniLM-L6-v2', 256, 64)
json.dump({k: v for k, v in attrs.items() if k in ('elapsed_seconds', 'compiled', 'row_stop', 'precision', 'attention')},
          open('$OUT/minilm_shard.json', 'w'))
"
# Real weights: every path against float32, the compiled blocks included.
step minilm-all 120 $B --paths naive,careful,eager,workflow --texts 10033 --baseline-texts 2000 --repeats 2 \
  --compile true --out "$OUT/minilm_all.json"
# Texts of every length (vital articles, a shard of the embedded default): how many compiles; warm compile cache.
step qwen-vital 120 $B --model $QWEN --max-seq-length 512 --texts 10033 --paths workflow --compile true \
  --repeats 1 --out "$OUT/qwen_vital.json"
# Where the time goes: kernel time by kind (torch.profiler), then the host's share (features made beforehand).
step qwen-profile 150 python3 benchmarks/gpu_profile.py --model $QWEN --texts 2048 --encoder compiled --out "$OUT/qwen_profile.json"
step qwen-decompose 200 python3 benchmarks/gpu_decompose.py --model $QWEN
# A bigger token budget, then CUDA graphs.
step qwen-long-b128 120 $B --model $QWEN --long --max-seq-length 512 --texts 8192 --paths workflow --compile true \
  --batch-size 128 --repeats 1 --out "$OUT/qwen_long_b128.json"
step qwen-long-graphs 150 $B --model $QWEN --long --max-seq-length 512 --texts 8192 --paths workflow --compile true \
  --compile-mode reduce-overhead --repeats 1 --out "$OUT/qwen_long_graphs.json"
# Matrix products tuned by Inductor (a longer compile).
step qwen-long-autotune 200 $B --model $QWEN --long --max-seq-length 512 --texts 8192 --paths workflow --compile true \
  --compile-mode max-autotune-no-cudagraphs --repeats 1 --out "$OUT/qwen_long_autotune.json"
echo "== done at $(( $(date +%s) - start ))s" | tee -a "$log"
python3 - "$OUT" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    r = json.loads(path.read_text())
    keep = {k: r[k] for k in ("device_name", "texts", "mean_tokens", "workflow_vs_careful", "workflow_job_vs_careful",
                              "workflow_vs_naive") if k in r}
    for key in ("naive", "careful", "eager", "workflow"):
        if key in r:
            keep[key] = {k: v for k, v in r[key].items() if k not in ("steady_s", "seconds")}
    print(path.name, json.dumps(keep or r))
EOF
