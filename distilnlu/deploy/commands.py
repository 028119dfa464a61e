"""The deployment commands of the CLI: ``export``, ``predict``, ``serve``, ``pick-student``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from distilnlu.errors import ConfigError, DataError

BACKEND_HELP = "auto (fastest exported: onnx-int8, onnx, then torch) | torch | onnx | onnx-int8."


def export(
    model_dir: Path = typer.Argument(..., help="A fine-tuned model folder."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Write model.onnx (fp32)."),
    int8: bool = typer.Option(False, "--int8", help="Also write model.int8.onnx (dynamic int8)."),
    data: Path | None = typer.Option(
        None, help="Labeled file for the parity check (default: the model's dev predictions)."
    ),
    data_format: str = typer.Option("massive", "--format", help="massive | bio | spans."),
    partition: str | None = typer.Option(None, help="MASSIVE partition (train/dev/test)."),
    sample: int = typer.Option(2000, help="Utterances in the parity check at most."),
) -> None:
    """Export to ONNX (dynamic batch and length), optionally int8, and check parity with PyTorch.

    Writes model.onnx / model.int8.onnx and export.json (max |Δ logit|, intent and slot
    agreement, accuracy with gold labels) into MODEL_DIR."""
    from distilnlu.data.examples import NLUExample
    from distilnlu.deploy.export import dev_sample, export_model

    if not onnx and not int8:
        raise ConfigError("nothing to export: give --onnx and/or --int8")
    examples = labeled_file(data, data_format, partition) if data else None
    if examples and not isinstance(examples[0], NLUExample):
        raise ConfigError("the parity check takes intent + slot data (massive, bio or spans)")
    examples = examples[:sample] if examples else None
    report = export_model(
        model_dir, int8=int8, sample=examples if examples else dev_sample(model_dir, sample)
    )
    typer.echo(_parity_table(report))
    typer.echo(f"\nParity report: {model_dir / 'export.json'}")


def labeled_file(data: Path, data_format: str, partition: str | None) -> list:
    """The examples of one labeled file or folder given on the command line."""
    from distilnlu.data.labeled import load_labeled
    from distilnlu.data.labeled_config import LabeledSetConfig

    try:
        cfg = LabeledSetConfig(format=data_format, path=str(data), partition=partition)
    except ValueError as exc:
        raise ConfigError(f"--format/--data: {exc}") from None
    return load_labeled(cfg)


def _parity_table(report: dict) -> str:
    lines = [
        f"{'file':<18}{'MB':>7}{'max|Δ intent|':>15}{'max|Δ slot|':>13}"
        f"{'intent agree':>14}{'tag agree':>11}{'slot F1 Δ':>11}"
    ]
    for entry in report["files"].values():
        p = entry["parity"]
        f1 = f"{100 * p['slot_f1_change']:+.2f}" if "slot_f1_change" in p else "-"
        lines.append(
            f"{entry['file']:<18}{entry['megabytes']:>7.2f}"
            f"{p['max_abs_diff_intent_logits']:>15.2e}{p['max_abs_diff_slot_logits']:>13.2e}"
            f"{100 * p['intent_agreement']:>13.2f}%{100 * p['slot_tag_agreement']:>10.2f}%{f1:>11}"
        )
    n = next(iter(report["files"].values()))["parity"]["n"]
    lines.append(f"({n} utterances; slot F1 Δ in points against gold labels, exported − PyTorch)")
    return "\n".join(lines)


def predict(
    model_dir: Path = typer.Argument(..., help="A fine-tuned intent + slot model folder."),
    texts: list[str] | None = typer.Argument(None, help="Utterances to parse."),
    input_file: Path | None = typer.Option(
        None, "--input", help="Utterances: .txt (one per line) or .jsonl (a 'text' field)."
    ),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    batch_size: int = typer.Option(32, min=1, help="Utterances per model call."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads (default: all)."),
) -> None:
    """Parse utterances: one JSON line each with intent, confidence and slots (type, value,
    character start/end)."""
    from distilnlu.deploy.parser import Parser

    if bool(texts) == bool(input_file):
        raise ConfigError("give utterances as arguments or --input FILE (one of the two)")
    if texts:
        records = [{"text": t} for t in texts]
    else:
        assert input_file is not None  # exactly one of the two, checked above
        records = list(read_inputs(input_file))
    parser = Parser.load(model_dir, backend=backend, threads=threads)
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        for record, result in zip(chunk, parser.parse([r["text"] for r in chunk]), strict=True):
            extra = {"id": record["id"]} if "id" in record else {}
            sys.stdout.write(json.dumps({**extra, **result}, ensure_ascii=False) + "\n")


def read_inputs(path: Path) -> Iterator[dict]:
    """Records with a non-empty ``text`` (and an optional ``id``) from a .txt or .jsonl file;
    blank lines are skipped, anything else unusable is a ``file:line`` error."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    jsonl = path.suffix == ".jsonl"
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if not jsonl:
                yield {"text": line.strip()}
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not JSON ({exc.msg})") from None
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{path}:{number}: expected an object with a non-empty 'text'")
            yield {"text": text, **({"id": record["id"]} if "id" in record else {})}


def serve(
    model_dir: Path = typer.Argument(..., help="A fine-tuned intent + slot model folder."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    threads: int | None = typer.Option(None, min=1, help="CPU threads for the model."),
    max_chars: int = typer.Option(1000, min=1, help="Longest text accepted (characters)."),
    max_texts: int = typer.Option(64, min=1, help="Most texts in one request."),
    max_batch: int = typer.Option(32, min=1, help="Most texts in one model call."),
    max_wait_ms: float = typer.Option(
        2.0, min=0.0, help="How long a request waits for others to share its model call."
    ),
) -> None:
    """HTTP service: POST /v1/parse, GET /health, and a try-it page at GET /."""
    from distilnlu.deploy.serve import ServeSettings, run_server

    settings = ServeSettings(
        max_chars=max_chars, max_texts=max_texts, max_batch=max_batch, max_wait_ms=max_wait_ms
    )
    run_server(model_dir, host=host, port=port, backend=backend, threads=threads, settings=settings)


def pick_student(
    budget_ms: float = typer.Option(2.0, min=0.0, help="Latency budget: p50 per utterance, ms."),
    threads: int = typer.Option(1, min=1, help="CPU threads (1: what one request gets)."),
    backend: str = typer.Option(
        "onnx-int8", help="onnx-int8 (what `serve` runs once exported) | onnx | torch."
    ),
    candidates: str | None = typer.Option(
        None, help="Comma-separated presets or LxH shapes (default: a grid of 2-12 layers)."
    ),
    tokenizer: Path | None = typer.Option(
        None, help="Tokenizer folder (default: a built-in one trained on the demo data)."
    ),
    tokens: str = typer.Option("12-16", help="Utterance length range in sub-tokens."),
    repeats: int = typer.Option(100, min=5, help="Timed utterances per candidate."),
    output: Path | None = typer.Option(None, help="Also write the measurements as JSON here."),
) -> None:
    """Measure candidate student shapes on this machine; report the largest within the budget.

    Each candidate (random weights, MASSIVE-sized heads) parses one utterance at a time, raw text
    to intent and slots; deeper shapes of a width are skipped once a shallower one is over."""
    from distilnlu.deploy.pick import pick_student as run_pick

    result = run_pick(
        budget_ms=budget_ms,
        threads=threads,
        backend=backend,
        candidates=candidates,
        tokenizer=tokenizer,
        tokens=tokens,
        repeats=repeats,
    )
    typer.echo(result.table())
    if output:
        output.write_text(json.dumps(result.to_json(), indent=2) + "\n")
