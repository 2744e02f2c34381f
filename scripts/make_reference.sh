#!/usr/bin/env bash
# Regenerate the repository's reference output, measured by mlee itself on this machine:
#   results/reference/   experiment folders (runs/), the merged database (merged.json) and README.md (provenance)
#   labels/reference/    a PDF and a PNG label per model, and the interactive report (report.html)
# Usage: scripts/make_reference.sh            (after scripts/setup.sh; takes a few minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
mlee=.venv/bin/mlee
models=ResNet50,ResNet101,MobileNetV2,MobileNetV3Small,EfficientNetB0,DenseNet121,VGG16
rm -rf results/reference labels/reference
"$mlee" demo --dataset synthetic -o results/reference --labels-dir labels/reference --models "$models" \
  --batch-size 8 --n-batches 4 --repeat 3
"$mlee" label results/reference/merged.json --all --format png -o labels/reference
# The report picks up the PNG labels beside it.
"$mlee" report results/reference/merged.json -o labels/reference/report.html
.venv/bin/python scripts/provenance.py results/reference/merged.json > results/reference/README.md
echo "reference output regenerated: results/reference, labels/reference" >&2
