#!/usr/bin/env bash
# The one GPU job that trained the shipped weights (run on a lent NVIDIA H100 through the
# workplace's device tool, with the data folders copied into .gpudata/).  Trains the three
# models side by side for MIN minutes, then measures CUDA speed with the trained weights.
# Usage: OUT=dir bash models/gpu_job.sh MIN
set -u
MIN=${1:-4.5}
DEV=${DEV:-cuda}
PY=$(command -v python3)
export PYTHONUNBUFFERED=1
# Run as `bash models/gpu_job.sh 5.8`, three trainers side by side ran 8x slower than one alone
# (base: 6.4 vs 51 steps/s).  The likely cause is OpenMP spin-waiting (each process took all 16
# cores; the same loop on a busy 2-core CPU ran 20x faster with 1 thread than with 2), so the
# threads are capped now.  The shipped base then got a second, solo run from those weights:
#   OMP_NUM_THREADS=4 python3 -m models train --model base --device cuda --minutes 2.0 \
#       --batch 32 --lr 1e-3 --init models/weights/base.safetensors --data .gpudata
export OMP_NUM_THREADS=4
nvidia-smi -L || true
$PY -c "import torch, cv2, safetensors; print('torch', torch.__version__, 'cv2', cv2.__version__)"
R=/tmp/runs; mkdir -p $R
$PY -m models train --model base --device $DEV --minutes "$MIN" --batch 32 --data .gpudata --out $R/base > $R/base.log 2>&1 &
$PY -m models train --model fast --device $DEV --minutes "$MIN" --batch 64 --data .gpudata --out $R/fast > $R/fast.log 2>&1 &
$PY -m models.lab.train_temporal --model base-temporal --device $DEV --minutes "$MIN" --lr 1e-3 --data .gpudata --out $R/base-temporal > $R/temporal.log 2>&1 &
wait
# Candidates go to $OUT only: shipping one means measuring it against the shipped weights first
# (README), never overwriting them here.
for m in base fast base-temporal; do cp $R/$m/$m.safetensors "$OUT/"; done
tail -n 4 $R/*.log
if true; then
  timeout ${CHECK_S:-100} $PY -m engines.cuda_timings --budget 70 --image .gpudata/bsds500/val/101087.jpg --json "$OUT/cuda_timings.json" > $R/gpu_check.log 2>&1
  tail -n 40 $R/gpu_check.log
fi
tar -C $R -cf "$OUT/logs.tar" $(cd $R && ls *.log)
