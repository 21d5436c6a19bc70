#!/bin/sh
# Reproduces the bundled model: data, training, evaluation (see training/README.md).
set -e
PROJECT_PY=${PROJECT_PY:-/work/venv-model/bin/python}
TRAIN_PY=${TRAIN_PY:-/work/venv-train/bin/python}
DATA=${DATA:-/work/wdp_train}
cd "$(dirname "$0")/.."
"$PROJECT_PY" training/data.py --split train --clips 600 --duration 20 --hop 24 --dense --out "$DATA"
"$TRAIN_PY" training/train.py --train "$DATA.npz" --out python/wifi_densepose/models/default.onnx \
    --minutes 20 --dropout 0.2 --wd 0.01
"$PROJECT_PY" -m wifi_densepose.evaluate --clips 24 --duration 20
