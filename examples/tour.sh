#!/usr/bin/env bash
# The README's tour, end to end on a tiny stand-in: plan, lint, strategy, build (both engines), load.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "== plan: the seed's 39B config"
uplab plan "$here/seed-39b.yml" --num-layers 55 --no-table
echo; echo "== lint: the seed's proposed config (a 56-layer source)"
uplab plan "$here/seed-proposed.yml" --num-layers 56 --no-table
echo; echo "== strategy: the proposed technique done right"
uplab strategy interleaved --start 19 --end 41 --copies 2 --num-layers 55 -o interleaved.yml
uplab plan interleaved.yml --num-layers 55 --no-table --strict
echo; echo "== build on a tiny 55-layer stand-in"
uplab tiny base --layers 55 --hidden 32
uplab upscale "$here/seed-39b.yml" up --source base --quiet
uplab upscale "$here/seed-39b.yml" up-mk --source base --engine mergekit --quiet 2>/dev/null
python - <<'PY'
import torch, transformers
base = transformers.AutoModelForCausalLM.from_pretrained("base")
for path in ("up", "up-mk"):
    up = transformers.AutoModelForCausalLM.from_pretrained(path)
    ids = torch.randint(0, 256, (1, 16))
    with torch.no_grad():
        diff = (up(ids).logits - base(ids).logits).abs().max().item()
    print(f"{path}: {up.config.num_hidden_layers} layers, max |logit - base logit| = {diff:.2e}")
    assert up.config.num_hidden_layers == 99
PY
echo; echo "== train the seed's layout at tiny depth, then diff its first and last snapshot"
uplab strategy contiguous --start 6 --end 12 --copies 2 --num-layers 16 -o seed-at-tiny.yml
uplab train --plan seed-at-tiny.yml --cache cache --quiet
run="$(dirname "$(ls cache/*/step-000064.safetensors | head -n 1)")"
uplab diff "$run/step-000000.safetensors" "$run/step-000064.safetensors" --plan seed-at-tiny.yml --out diff --quiet
head -n 3 diff/deltas.csv
echo "tour ok"
