"""The deployment commands of the CLI: ``export``, ``predict``, ``serve``, ``pick-student``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from distilnlu.errors import ConfigError, DataError, DistilNLUError

if TYPE_CHECKING:
    from distilnlu.deploy.parser import Parser

BACKEND_HELP = "auto (fastest exported: onnx-int8, onnx, then torch) | torch | onnx | onnx-int8."


def export(
    model_dir: Path = typer.Argument(..., help="A fine-tuned model folder."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Write model.onnx (fp32)."),
    int8: bool = typer.Option(
        False, "--int8", help="Also write model.int8.onnx (static int8, calibrated on the dev set)."
    ),
    data: Path | None = typer.Option(
        None, help="Labeled file for the parity check (default: the model's dev predictions)."
    ),
    data_format: str = typer.Option(
        "auto", "--format", help="auto (from what --data holds) | massive | bio | spans."
    ),
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
    """The examples of one labeled file or folder given on the command line.

    With ``--partition``, every MASSIVE record must say which partition it is in: the reader
    drops the records of other partitions silently, and would drop the ones with none too, so a
    file without the field would be scored on a part of itself (or nothing) without a word.
    """
    from distilnlu.data.format_guess import guess_format
    from distilnlu.data.labeled import load_labeled
    from distilnlu.data.labeled_config import LabeledSetConfig

    guessed = data_format == "auto"
    if guessed:
        data_format = guess_format(data)
    try:
        cfg = LabeledSetConfig(format=data_format, path=str(data), partition=partition)
    except ValueError as exc:
        raise ConfigError(f"--format/--data: {exc}") from None
    if partition is not None and data_format == "massive":
        check_partitions(str(data), partition)
    how = "read as" if guessed else "--format"
    # The readers' own hint speaks of a recipe key (data.on_error); here the flags are ours.
    hint = f" ({how} {data_format}; give --format if that is not its format, or fix the record)"
    return load_labeled(cfg, hint=hint)


def check_partitions(path: str, partition: str) -> None:
    """A one-line :class:`DataError` naming the first file under ``path`` with records that
    have no ``partition`` (bad lines are left to the reader, which reports them)."""
    from distilnlu.data.paths import resolve_paths
    from distilnlu.data.records import Problems, iter_json_records

    for file in resolve_paths(path):
        total = missing = 0
        for _, record in iter_json_records(file, Problems("skip", None)):  # streamed, not held
            total += 1
            missing += not isinstance(record.get("partition"), str)
        if missing:
            raise DataError(
                f"{file}: {missing} of {total} records have no 'partition' field, so"
                f" --partition {partition} would skip them silently; leave out --partition to"
                " score every record, or give each record its partition (train, dev or test)"
            )


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
    threads: int | None = typer.Option(
        None, min=1, help="CPU threads (default: distilnlu --threads, else all)."
    ),
) -> None:
    """Parse utterances: one JSON line each with intent, confidence and slots (type, value,
    character start/end). With --input, one line per input line: a line that cannot be parsed
    gets {"line", "error"}, the others are answered, and the command then exits with status 2."""
    from distilnlu.deploy.parser import Parser
    from distilnlu.deploy.texts import check_text

    if bool(texts) == bool(input_file):
        raise ConfigError("give utterances as arguments or --input FILE (one of the two)")
    if texts:  # an argument the parser cannot take stops the command before the model loads
        records = [{"text": check_text(t, f"utterance {i}")} for i, t in enumerate(texts, 1)]
    else:
        assert input_file is not None  # exactly one of the two, checked above
        records = list(read_inputs(input_file))
    parser = Parser.load(model_dir, backend=backend, threads=threads)
    # stderr, so stdout stays one JSON line per utterance: which backend answered matters, as
    # `auto` switches to int8 once `export --int8` has run and int8 scores differ slightly.
    origin = "" if backend == parser.backend else f", chosen by --backend {backend}"
    typer.echo(f"predict: {parser.backend} backend{origin} ({model_dir})", err=True)
    for start in range(0, len(records), batch_size):
        for row in answer_records(parser, records[start : start + batch_size]):
            sys.stdout.write(json_line(row))
    failed = [r for r in records if "error" in r]
    if failed:
        raise DataError(
            f"{input_file}: {len(failed)} of {len(records)} lines could not be parsed (their"
            f" output rows hold an 'error'); line {failed[0]['line']}: {failed[0]['error']}"
        )


def json_line(row: dict[str, Any]) -> str:
    """``row`` as one JSON line; with ``\\u`` escapes if it holds what UTF-8 cannot spell (an
    ``id`` with a lone surrogate), which would otherwise fail the write to stdout."""
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(row)
    return line + "\n"


def answer_records(parser: Parser, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One output row per record, in order: the parse (with the record's ``id``, if any), or
    for a record that already carries an ``error``, ``{"line", "error"}`` (and ``id``)."""
    good = [r for r in records if "error" not in r]
    results = iter(parser.parse([r["text"] for r in good]))
    rows = []
    for record in records:
        extra = {"id": record["id"]} if "id" in record else {}
        if "error" in record:
            rows.append({**extra, "line": record["line"], "error": record["error"]})
        else:
            rows.append({**extra, **next(results)})
    return rows


def read_inputs(path: Path) -> Iterator[dict[str, Any]]:
    """One record per line of a .txt or .jsonl file: ``{"line", "text"}`` (and ``id``, from
    .jsonl), or ``{"line", "error"}`` for a line the parser cannot take (blank, not JSON, no
    usable ``text``, not UTF-8, too long), so that outputs line up with inputs.

    A UTF-8 byte order mark is not part of the first text. Undecodable bytes are kept as
    ``surrogateescape`` characters, so that only their own line is refused, by the text check.
    """
    from distilnlu.deploy.texts import check_text

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    jsonl = path.suffix == ".jsonl"
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as handle:
        for number, line in enumerate(handle, 1):
            record: dict[str, Any] = {}
            try:
                record = _jsonl_record(line) if jsonl else {"text": line.strip()}
                check_text(record["text"])
            except DistilNLUError as exc:
                ident = {"id": record["id"]} if "id" in record else {}
                yield {"line": number, **ident, "error": str(exc)}
                continue
            yield {"line": number, **record}


def _jsonl_record(line: str) -> dict[str, Any]:
    """``{"text"}`` (and ``id``) of one .jsonl line; a :class:`DataError` saying what is wrong."""
    if not line.strip():
        raise DataError("the line is blank: there is nothing to parse")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"not JSON ({exc.msg})") from None
    if not isinstance(record, dict) or "text" not in record:
        raise DataError("expected an object with a 'text' field")
    return {"text": record["text"], **({"id": record["id"]} if "id" in record else {})}


def serve(
    model_dir: Path = typer.Argument(..., help="A fine-tuned intent + slot model folder."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    backend: str = typer.Option("auto", help=BACKEND_HELP),
    threads: int | None = typer.Option(
        None, min=1, help="CPU threads for the model (default: distilnlu --threads, else all)."
    ),
    max_chars: int = typer.Option(1000, min=1, help="Longest text accepted (characters)."),
    max_texts: int = typer.Option(64, min=1, help="Most texts in one request."),
    max_batch: int = typer.Option(32, min=1, help="Most texts in one model call."),
    max_wait_ms: float = typer.Option(
        2.0, min=0.0, help="How long a request waits for others to share its model call."
    ),
    read_timeout: float = typer.Option(
        10.0,
        min=0.001,
        help="Seconds a client may take to send a request's headers, then its body (408 after"
        " that, and the connection is closed).",
    ),
    max_body_bytes: int | None = typer.Option(
        None,
        min=1,
        help="Largest request body (413 over it). Default: the largest legal request, from"
        " --max-texts and --max-chars.",
    ),
) -> None:
    """HTTP service: POST /v1/parse, GET /health, and a try-it page at GET /."""
    from distilnlu.deploy.serve import ServeSettings, run_server

    settings = ServeSettings(
        max_chars=max_chars,
        max_texts=max_texts,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
        read_timeout_s=read_timeout,
    )
    run_server(model_dir, host=host, port=port, backend=backend, threads=threads, settings=settings)


def pick_student(
    budget_ms: float = typer.Option(2.0, min=0.0, help="Latency budget: p50 per utterance, ms."),
    threads: int | None = typer.Option(
        None,
        min=1,
        help="CPU threads (default: distilnlu --threads, else 1: what one request gets).",
    ),
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
    from distilnlu.threads import current

    result = run_pick(
        budget_ms=budget_ms,
        # Its own default is one thread, not the libraries' choice: the budget is per request.
        threads=threads or current() or 1,
        backend=backend,
        candidates=candidates,
        tokenizer=tokenizer,
        tokens=tokens,
        repeats=repeats,
    )
    typer.echo(result.table())
    if output:
        output.write_text(json.dumps(result.to_json(), indent=2) + "\n")
