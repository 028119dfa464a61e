"""The ``distilnlu`` command line."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from distilnlu.deploy import commands as deploy_commands
from distilnlu.errors import DistilNLUError

try:  # typer vendors click since 0.2x; the exceptions it raises are that copy's
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - an older typer on the user's machine
    from click.exceptions import ClickException  # type: ignore[assignment]

if TYPE_CHECKING:
    from distilnlu.config import Recipe, ReportConfig

app = typer.Typer(
    help=(
        "Pretrain a masked-LM teacher and distill it into a small, fast NLU student "
        "(the Alexa Teacher Model recipe).\n\n"
        "Start with:  distilnlu run configs/demo.yaml   (tiny models, built-in data, minutes on a "
        "laptop CPU). Any recipe value can be overridden as key=value, e.g. "
        "stages.teacher_stage1.training.max_steps=50."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

OVERRIDES = typer.Argument(None, help="Recipe overrides as key=value (dotted keys).")


@app.callback()
def options(
    threads: str | None = typer.Option(
        None,
        "--threads",
        metavar="N",
        help=(
            "CPU threads for every command (torch, ONNX Runtime, tokenizers, child processes);"
            " goes before the command: distilnlu --threads 4 run configs/demo.yaml. Wins over a"
            " stage's training.threads. Default: each library's own choice (docs/sizing.md)."
        ),
    ),
) -> None:
    # Parsed here rather than by typer's int type, for one `error:` line that says the fix; set
    # before the command imports anything that starts a thread pool (distilnlu.threads).
    if threads is not None:
        from distilnlu.threads import parse_threads, use_flag

        use_flag(parse_threads(threads))


def _load(recipe: Path, overrides: list[str] | None) -> Recipe:
    from distilnlu.config import load_recipe

    return load_recipe(recipe, overrides or [])


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML, e.g. configs/demo.yaml."),
    overrides: list[str] | None = OVERRIDES,
    until: str | None = typer.Option(None, help="Stop after this stage (e.g. teacher_stage2)."),
) -> None:
    """Run the whole recipe: finished stages skipped, changed ones redone, killed ones resumed."""
    from distilnlu.distributed import is_main
    from distilnlu.evaluation.report import heldout_summary
    from distilnlu.pipeline import run_recipe

    cfg = _load(recipe, overrides)
    main_process = is_main()  # under a multi-process launch, one process reports
    results = run_recipe(cfg, until=until, log=print if main_process else lambda _: None)
    if not main_process:
        return
    finetuned = any(r.get("models") for r in results.values())
    if not finetuned:  # no report: the held-out LM table of the stages run, on its own
        table = heldout_summary(cfg.run_dir, stages=results)
        if table:
            typer.echo("\n" + table)
    typer.echo(f"\nOutputs: {cfg.run_dir}")
    if finetuned:  # report it; the summary holds the held-out LM table
        _report(cfg.run_dir, cfg.report)
        _deploy_hint(cfg)


def _deploy_hint(cfg: Recipe) -> None:
    """Where to go next: the commands that ship the intent + slot model the report recommends."""
    from distilnlu.evaluation.recommend import shipping_folder

    folder = shipping_folder(cfg.run_dir, cfg.report)
    if folder is not None and folder.is_dir():
        typer.echo(
            f"\nShip it (the report's recommendation; docs/deployment.md):\n"
            f"  distilnlu export {folder} --int8\n"
            f"  distilnlu serve {folder}    # try-it page at http://127.0.0.1:8080/"
        )


def _report(run_dir: Path, config: ReportConfig | None = None) -> None:
    from distilnlu.evaluation.report import report_summary, write_report
    from distilnlu.rundir import REPORT_MARKDOWN

    index = write_report(run_dir, config=config)
    typer.echo("\n" + report_summary(run_dir, config))
    typer.echo(f"\nReport: {index.resolve()}  (also {index.parent / REPORT_MARKDOWN})")


@app.command()
def plan(
    recipe: Path = typer.Argument(..., help="Recipe YAML, e.g. configs/alexatm.yaml."),
    overrides: list[str] | None = OVERRIDES,
    gpu: str = typer.Option("h100", help="GPU to plan for: h100, h200, a100, a100-40gb, l40s."),
    gpus: int = typer.Option(1, help="Devices the stages run on (data-parallel)."),
    mfu: float = typer.Option(0.4, help="Model-FLOPs utilisation the hours assume."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    measure: bool = typer.Option(
        False, "--measure", help="Also time every stage on this machine from a short run."
    ),
    steps: int = typer.Option(12, help="Steps per stage of the --measure run."),
) -> None:
    """What the recipe's masked-LM stages cost before they run: parameters, tokens, FLOPs,
    memory per device under DDP / FSDP / ZeRO-2 / ZeRO-3, devices needed, hours on a GPU;
    with --measure, every stage's time on this machine."""
    from distilnlu.plan import make_plan, measured_text, plan_table

    cfg = _load(recipe, overrides)
    planned = make_plan(cfg, gpu, gpus, mfu)
    if measure:
        from distilnlu.plan_measure import measure as measure_stages

        planned.measured_s = measure_stages(recipe, overrides or [], cfg, steps)
    if as_json:
        typer.echo(json.dumps(planned.to_json(), indent=2))
    else:
        typer.echo(plan_table(planned) + measured_text(planned))


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder, e.g. runs/demo."),
    latency_budget_ms: float | None = typer.Option(
        None, help="Recommend within this p50 budget (ms); default: the recipe's report: keys."
    ),
    latency_factor: float | None = typer.Option(
        None, help="Budget = this × the smallest student's p50 (when no ms budget is set)."
    ),
) -> None:
    """Write RUN_DIR/report/ (index.html, report.md, PNG plots) comparing every model, with
    the model to ship: the most accurate on dev within a latency budget."""
    from distilnlu.evaluation.recommend import report_config

    _report(run_dir, report_config(run_dir, latency_budget_ms, latency_factor))


@app.command()
def finetune(
    recipe: Path = typer.Argument(..., help="Recipe YAML that defines the stage."),
    overrides: list[str] | None = OVERRIDES,
    stage: str = typer.Option("finetune", help="Name of the finetune stage to run."),
) -> None:
    """Run one fine-tuning stage on its own (the encoders it lists must exist)."""
    from distilnlu.config import FinetuneStage
    from distilnlu.errors import ConfigError
    from distilnlu.pipeline import read_manifest, run_one

    cfg = _load(recipe, overrides)
    if not isinstance(cfg.stages.get(stage), FinetuneStage):
        raise ConfigError(f"'{stage}' is not a finetune stage of {recipe}")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    metrics = run_one(cfg, stage, read_manifest(cfg.run_dir))
    summary = {key: m["eval"] for key, m in metrics["models"].items()}
    typer.echo(json.dumps(summary, indent=2))


@app.command()
def pretrain(
    recipe: Path = typer.Argument(..., help="Recipe YAML that defines the stage."),
    overrides: list[str] | None = OVERRIDES,
    stage: str = typer.Option(
        ..., help="Name of the pretrain or distill stage to run (e.g. teacher_stage1, final)."
    ),
) -> None:
    """Run one pretraining or distillation stage on its own (its inputs must exist).

    Works under `accelerate launch -m distilnlu pretrain ...` for multi-GPU training.
    """
    from distilnlu.errors import ConfigError
    from distilnlu.pipeline import read_manifest, run_one
    from distilnlu.rundir import LM_KINDS

    cfg = _load(recipe, overrides)
    if stage not in cfg.stages or cfg.stages[stage].kind not in LM_KINDS:
        raise ConfigError(f"'{stage}' is not a pretrain or distill stage of {recipe}")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    metrics = run_one(cfg, stage, read_manifest(cfg.run_dir))
    typer.echo(json.dumps(metrics.get("eval", {}), indent=2))


@app.command()
def tokenizer(
    recipe: Path = typer.Argument(..., help="Recipe YAML with a tokenizer stage."),
    overrides: list[str] | None = OVERRIDES,
    stage: str = typer.Option("tokenizer", help="Name of the tokenizer stage."),
    report: bool = typer.Option(
        False, "--report", help="Print fertility / unknown rate per language instead of training."
    ),
    vocab_sizes: str | None = typer.Option(
        None, help="Comma-separated vocabulary sizes to compare with --report (e.g. 4000,8000)."
    ),
) -> None:
    """Train the recipe's tokenizer, or compare vocabulary sizes with --report."""
    from distilnlu.config import TokenizerStage
    from distilnlu.errors import ConfigError
    from distilnlu.pipeline import read_manifest, run_one
    from distilnlu.stages.tokenizer import report as tokenizer_report

    cfg = _load(recipe, overrides)
    if not isinstance(cfg.stages.get(stage), TokenizerStage):
        raise ConfigError(f"'{stage}' is not a tokenizer stage of {recipe} (--stage)")
    if report:
        try:
            sizes = [int(s) for s in vocab_sizes.split(",")] if vocab_sizes else []
        except ValueError:
            raise ConfigError(
                f"--vocab-sizes {vocab_sizes!r}: give comma-separated integers, e.g. 4000,8000"
            ) from None
        typer.echo(tokenizer_report(cfg, stage, sizes))
        return
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    metrics = run_one(cfg, stage, read_manifest(cfg.run_dir))
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
def evaluate(
    model_dir: Path = typer.Argument(..., help="A saved model folder (masked LM or fine-tuned)."),
    data: Path | None = typer.Option(
        None, help="Fine-tuned model: labeled file or folder to score."
    ),
    data_format: str = typer.Option(
        "auto",
        "--format",
        help="auto (from what --data holds) | massive | bio | spans | xnli_tsv | xnli_jsonl.",
    ),
    partition: str | None = typer.Option(None, help="MASSIVE partition (train/dev/test)."),
    texts: Path | None = typer.Option(None, help="Masked LM: held-out texts, one per line."),
    recipe: Path | None = typer.Option(None, help="Recipe whose corpus to score (with --corpus)."),
    corpus: str | None = typer.Option(None, help="Corpus name in --recipe."),
    language: str = typer.Option("en", help="Language of --texts (stop words for mask filling)."),
    max_texts: int = typer.Option(500, help="Texts scored at most."),
    max_length: int = typer.Option(128, help="Truncation length."),
    seed: int = typer.Option(1234, help="Seed of the fixed masks."),
) -> None:
    """Score a model. Fine-tuned: intent accuracy, slot F1, exact match, SemER (or pair accuracy)
    on --data. Masked LM: perplexity (fixed seeded masks) and mask-filling accuracy."""
    from distilnlu.modeling.classifier import NLU_CONFIG

    if (model_dir / NLU_CONFIG).is_file():
        typer.echo(
            json.dumps(_evaluate_finetuned(model_dir, data, data_format, partition), indent=2)
        )
        return
    if data is not None:
        from distilnlu.errors import ModelError

        raise ModelError(f"{model_dir} is not a fine-tuned model: --data needs one")
    items = _lm_texts(texts, recipe, corpus, language, max_texts)
    from distilnlu.evaluation.lm import evaluate_lm
    from distilnlu.modeling.loading import load_masked_lm
    from distilnlu.tokenization import load_tokenizer

    model = load_masked_lm(model_dir)
    tok = load_tokenizer(model_dir)
    result = evaluate_lm(
        model, tok, [t for t, _ in items], language=items[0][1], max_length=max_length, seed=seed
    )
    typer.echo(json.dumps(result, indent=2))


def _evaluate_finetuned(
    model_dir: Path, data: Path | None, data_format: str, partition: str | None
) -> dict[str, Any]:
    from distilnlu.data.labeled import unseen_labels
    from distilnlu.errors import ConfigError
    from distilnlu.modeling.classifier import load_nlu_model, read_nlu_config
    from distilnlu.tokenization import load_tokenizer

    if data is None:
        raise ConfigError("a fine-tuned model is scored on labeled data: give --data FILE")
    examples = deploy_commands.labeled_file(data, data_format, partition)
    max_length = int(read_nlu_config(model_dir).get("max_length", 128))
    model = load_nlu_model(model_dir)
    unseen = unseen_labels(examples, model.labels)
    if unseen:
        typer.echo(f"warning: {data}: {unseen}", err=True)
    metrics, _ = model.task.evaluate(model, examples, load_tokenizer(model_dir), max_length)
    return metrics


def _lm_texts(
    texts: Path | None, recipe: Path | None, corpus: str | None, language: str, max_texts: int
) -> list[tuple[str, str]]:
    from distilnlu.errors import ConfigError

    if texts:
        lines = [t.strip() for t in texts.read_text(encoding="utf-8").splitlines() if t.strip()]
        return [(t, language) for t in lines[:max_texts]]
    if recipe and corpus:
        from distilnlu.data.corpus import heldout_texts

        cfg = _load(recipe, [])
        if corpus not in cfg.data.corpora:
            raise ConfigError(f"corpus '{corpus}' is not defined in {recipe}")
        return heldout_texts(cfg.data.corpora[corpus], cfg.data, max_texts, cfg.seed)
    raise ConfigError("give --texts FILE, or --recipe R --corpus NAME")


# Deployment (export, predict, serve, pick-student) lives with the deployment code.
app.command()(deploy_commands.export)
app.command()(deploy_commands.predict)
app.command()(deploy_commands.serve)
app.command("pick-student")(deploy_commands.pick_student)


def main() -> None:
    """Entry point: user errors print one clear line (no traceback) and exit with status 2; a
    signal prints how to resume and exits with 128 + its number."""
    from distilnlu.training.signals import Interrupted, install_process_handlers

    install_process_handlers()
    try:
        check_arguments(sys.argv[1:])
        # Not standalone: usage errors come back here and are printed as one `error:` line too.
        code = app(standalone_mode=False)
    except ClickException as exc:  # usage errors: a missing argument, an unknown option
        if not exc.format_message():  # no arguments: the help was shown (status as click's)
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "distilnlu"
        where = misplaced_threads(exc.format_message(), command)
        typer.echo(f"error: {exc.format_message()}{where} (see `{command} --help`)", err=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(1)
    except DistilNLUError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Interrupted as exc:
        typer.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        typer.echo(f"error: {os_error_message(exc)}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def misplaced_threads(message: str, command: str) -> str:
    """The fix when ``--threads`` was put after a command that has no option of that name: it
    is the ``distilnlu`` command's own option, so it goes before the command."""
    if "No such option: --threads" not in message:
        return ""
    name = command.split()[-1]
    return f"; --threads goes before the command: distilnlu --threads N {name} ..."


def check_arguments(args: list[str]) -> None:
    """Refuse arguments that are not valid UTF-8 (Python passes their bytes on as lone
    surrogates, which would fail deep inside a tokenizer or a YAML writer)."""
    for position, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            raise DistilNLUError(
                f"argument {position} ({shown}) is not valid UTF-8; check the terminal's encoding"
                " (or rename the file)"
            ) from None


def os_error_message(exc: OSError) -> str:
    """One line for what the machine refused (permissions, a full disk, a missing file)."""
    where = f" {exc.filename}" if exc.filename else ""
    what = exc.strerror or str(exc)
    hints = {
        errno.EACCES: "check the folder's permissions (or choose another output_dir)",
        errno.EPERM: "check the folder's permissions (or choose another output_dir)",
        errno.EROFS: "the file system is read-only: choose another output_dir",
        errno.ENOSPC: "free some space, then run the same command again to resume",
        errno.EDQUOT: "free some space, then run the same command again to resume",
        errno.ENOENT: "check the path",
    }
    hint = hints.get(exc.errno or 0, "fix it and run the same command again")
    return f"{what}:{where}; {hint}"


if __name__ == "__main__":
    main()
