"""Score fine-tuned models from raw text through ``distilnlu predict``, as a user would.

For each MASSIVE record of a partition, the raw ``utt`` goes through the ``distilnlu predict``
command (a subprocess, so nothing of the training code path is shared beyond what the command
itself runs); a prediction is an exact match when the intent is right and the multiset of
(slot type, slot text) equals the annotation's. Slot precision / recall / F1 count the same
(type, text) pairs.

    python benchmarks/predict_accuracy.py runs/massive/finetune/baselines \\
        runs/massive/final_task/final --data ../shared/data/massive/data/en-US.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

SLOT = re.compile(r"\[\s*([^\]:]+?)\s*:\s*([^\]]*?)\s*\]")


def gold_slots(annot: str) -> Counter[tuple[str, str]]:
    return Counter((t.strip(), " ".join(v.split())) for t, v in SLOT.findall(annot))


def load(path: Path, partition: str) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r.get("partition") == partition]


def predict(model: Path, texts: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "texts.txt"
        source.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        done = subprocess.run(
            ["distilnlu", "predict", str(model), "--input", str(source), "--backend", "torch"],
            capture_output=True,
            text=True,
            check=True,
        )
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def score(records: list[dict], parsed: list[dict]) -> dict[str, float]:
    if len(parsed) != len(records):
        raise SystemExit(f"predict returned {len(parsed)} lines for {len(records)} utterances")
    intents = em = tp = n_pred = n_gold = 0
    for record, out in zip(records, parsed, strict=True):
        gold = gold_slots(record["annot_utt"])
        pred = Counter((s["type"], " ".join(s["value"].split())) for s in out["slots"])
        right_intent = out["intent"] == record["intent"]
        intents += right_intent
        em += right_intent and gold == pred
        tp += sum((gold & pred).values())
        n_pred += sum(pred.values())
        n_gold += sum(gold.values())
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = len(records)
    return {
        "n": n,
        "intent_accuracy": round(100 * intents / n, 2),
        "slot_f1": round(100 * f1, 2),
        "exact_match": round(100 * em / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="Fine-tuned model folders.")
    parser.add_argument("--data", type=Path, required=True, help="MASSIVE <locale>.jsonl")
    parser.add_argument("--partition", default="test")
    args = parser.parse_args()
    records = load(args.data, args.partition)
    texts = [r["utt"] for r in records]
    for model in args.models:
        result = score(records, predict(model, texts))
        print(json.dumps({"model": str(model), **result}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
