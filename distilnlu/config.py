"""Typed recipe configuration: YAML files, ``key=value`` overrides, strict validation.

A recipe names its data (corpora built from sources), and an ordered mapping of stages. Every
model forbids unknown keys so that a typo is an error that names the key path and the file,
instead of a silently ignored setting.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, model_validator

from distilnlu.config_base import StrictModel, TrainingConfig
from distilnlu.data.labeled_config import LabeledSetConfig
from distilnlu.data.masking import MaskingConfig
from distilnlu.data.source_config import SourceConfig
from distilnlu.errors import ConfigError
from distilnlu.modeling.presets import ModelShape, resolve_shape
from distilnlu.rundir import LM_KINDS
from distilnlu.supervised_config import FinetuneStage, SupervisedStage, TaskDistillStage, ref_stage


class CorpusConfig(StrictModel):
    """A named corpus: one or more sources, mixed by language with temperature sampling."""

    sources: list[SourceConfig] = Field(min_length=1, description="Where the text comes from.")
    spoken_share: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of documents converted to spoken form (ASR-like)."
    )


class DataConfig(StrictModel):
    """Data shared by all stages."""

    root: Path | None = Field(None, description="Folder that relative source paths start from.")
    on_error: Literal["raise", "skip"] = Field(
        "raise", description="Malformed records: stop with file:line ('raise') or skip and count."
    )
    alpha: float = Field(
        0.3, ge=0.0, le=1.0, description="Language temperature: p ∝ n^alpha (1 = proportional)."
    )
    max_document_chars: int = Field(
        200_000,
        gt=0,
        description=(
            "Longer documents are cut to this many characters (at a word boundary) when read,"
            " before tokenization: memory stays bounded whatever the input."
        ),
    )
    corpora: dict[str, CorpusConfig] = Field(
        default_factory=dict,
        description="Named corpora that stages refer to (none needed to fine-tune only).",
    )
    labeled: dict[str, LabeledSetConfig] = Field(
        default_factory=dict,
        description="Named labeled sets (splits) for fine-tuning and evaluation.",
    )


class EvalConfig(StrictModel):
    """Held-out language-model evaluation (perplexity, mask-filling accuracy)."""

    corpora: list[str] = Field(default_factory=list, description="Held-out corpora to score.")
    max_texts: int = Field(500, gt=0, description="Texts (sentences/utterances) per corpus.")
    batch_size: int = Field(32, gt=0, description="Evaluation batch size.")
    max_length: int = Field(128, ge=8, description="Truncation length for evaluation texts.")
    seed: int = Field(1234, description="Seed of the fixed evaluation masks.")


class TokenizerStage(StrictModel):
    """Train a Unigram tokenizer with RoBERTa special tokens, or reuse an existing one."""

    kind: Literal["tokenizer"]
    corpora: list[str] = Field(default_factory=list, description="Corpora to train on.")
    vocab_size: int = Field(8000, ge=16, description="Target vocabulary size.")
    max_texts: int = Field(100_000, gt=0, description="Documents read for training.")
    pretrained: str | None = Field(
        None, description="Reuse this tokenizer (local folder or hub id) instead of training."
    )
    report_vocab_sizes: list[int] = Field(
        default_factory=list, description="Vocabulary sizes compared by `tokenizer --report`."
    )
    report_corpora: list[str] = Field(
        default_factory=list, description="Held-out corpora for the fertility report."
    )

    @model_validator(mode="after")
    def _needs_source(self) -> TokenizerStage:
        if not self.pretrained and not self.corpora:
            raise ValueError("a tokenizer stage needs `corpora` to train on or `pretrained`")
        return self

    def corpora_used(self) -> list[str]:
        """Corpora of data.corpora that this stage reads (part of its hash)."""
        return [*self.corpora, *self.report_corpora]

    def stage_refs(self) -> list[str]:
        """Earlier stages (or folders / hub ids) that this stage reads."""
        return []

    def references(self) -> dict[str, str]:
        """Every model or tokenizer reference of the stage, by its key (checked before a run)."""
        return {"pretrained": self.pretrained} if self.pretrained else {}


class _TrainingStage(StrictModel):
    """What pretraining and distillation stages share: a start, data, optimisation, evaluation."""

    model: str | ModelShape | None = Field(
        None, description="Preset name or explicit shape, for a freshly initialised model."
    )
    init: str | None = Field(
        None, description="Start from an earlier stage's output, a local HF folder or a hub id."
    )
    data: dict[str, float] = Field(description="Training corpora and their mixing weights.")
    training: TrainingConfig
    masking: MaskingConfig = Field(default_factory=MaskingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    keep_snapshots: int = Field(
        0,
        ge=0,
        description=(
            "Keep this many evenly spaced snapshots of the model (at steps T/N, 2T/N, ..., T),"
            " each a save_pretrained folder scored on eval.corpora, for the report's plot of"
            " held-out metrics against downstream accuracy across updates (0: none)."
        ),
    )

    @model_validator(mode="after")
    def _one_start(self) -> _TrainingStage:
        if (self.model is None) == (self.init is None):
            raise ValueError("give exactly one of `model` (a fresh model) or `init`")
        if isinstance(self.model, str):  # a misspelt preset fails here, not after earlier stages
            try:
                resolve_shape(self.model)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        if not self.data or any(w <= 0 for w in self.data.values()):
            raise ValueError("`data` needs at least one corpus with a positive weight")
        if self.training.epochs is not None:
            raise ValueError(
                "training.epochs applies to fine-tuning; this stage streams text without epochs:"
                " set training.max_steps"
            )
        return self

    @model_validator(mode="after")
    def _snapshots(self) -> _TrainingStage:
        steps = self.training.max_steps
        if self.keep_snapshots and steps is not None and self.keep_snapshots > steps:
            raise ValueError(
                f"keep_snapshots={self.keep_snapshots} is more than training.max_steps={steps}"
                " (at most one snapshot a step)"
            )
        if self.keep_snapshots and not self.eval.corpora:
            raise ValueError(
                "keep_snapshots needs eval.corpora: each snapshot is scored on them (held-out"
                " perplexity and mask-filling accuracy)"
            )
        return self

    @property
    def snapshot_steps(self) -> list[int]:
        """The steps at which a snapshot is kept: ``k·T // N`` for k = 1..N (the last is T)."""
        total, n = self.training.steps(), self.keep_snapshots
        return [k * total // n for k in range(1, n + 1)] if n else []

    def corpora_used(self) -> list[str]:
        return [*self.data, *self.eval.corpora]


class PretrainStage(_TrainingStage):
    """Masked-LM pretraining: from scratch (``model``) or continued (``init``)."""

    kind: Literal["pretrain"]
    tokenizer: str | None = Field(
        "tokenizer", description="Tokenizer stage name or folder (ignored when `init` has one)."
    )

    def stage_refs(self) -> list[str]:
        # Unlike references(), the tokenizer stays upstream when `init` is set: it is used when
        # the `init` folder has no tokenizer, and it has always been part of the stage's hash.
        return [r for r in (self.init, self.tokenizer) if r]

    def references(self) -> dict[str, str]:
        refs = {"init": self.init, "tokenizer": None if self.init else self.tokenizer}
        return {k: v for k, v in refs.items() if v}


class TeacherConfig(StrictModel):
    """One teacher of a distillation schedule."""

    model: str = Field(description="Earlier stage name, local HF folder or hub id of a masked LM.")
    until_step: int | None = Field(
        None, gt=0, description="Switch to the next teacher after this many optimizer steps."
    )
    until_converged: bool = Field(
        False, description="Switch when the student's validation loss stops improving."
    )
    patience: int = Field(3, ge=1, description="Evaluations without improvement = converged.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest loss decrease that counts.")


class StudentInitConfig(StrictModel):
    """Initialise the student from chosen layers of a teacher (same width, heads and FFN)."""

    teacher: str = Field(description="Stage name or folder to copy from.")
    layers: list[int] = Field(
        min_length=1, description="1-based teacher layers copied, in order, to student layers."
    )


class DistillLossConfig(StrictModel):
    """Weights of the distillation loss terms (DESIGN.md §5)."""

    mlm_weight: float = Field(1.0, ge=0.0, description="Weight of CE against the true tokens.")
    soft_weight: float = Field(1.0, ge=0.0, description="Weight of T²·soft-CE against the teacher.")
    temperature: float = Field(1.0, gt=0.0, description="Softmax temperature T of soft-CE.")
    hidden_weight: float = Field(0.0, ge=0.0, description="Weight of hidden-state MSE (0 = off).")
    attention_weight: float = Field(
        0.0, ge=0.0, description="Weight of attention KL (0 = off; needs equal head counts)."
    )
    layer_map: list[int] | None = Field(
        None, description="Teacher layer (1-based) for each student layer; default uniform."
    )
    monitor: str | None = Field(
        None, description="Eval corpus whose loss decides convergence (default: the first)."
    )


class TeacherCacheConfig(StrictModel):
    """Cache of the teacher's top-k logits over a fixed set of batches (off by default).

    The stream becomes the first ``batches`` batches, repeated with the same masks, and the
    soft targets keep only the teacher's k best tokens; see docs/distillation.md for the bias.
    """

    top_k: int = Field(0, ge=0, description="Teacher logits kept per masked token (0 = off).")
    batches: int = Field(256, gt=0, description="Distinct batches in the fixed dataset.")


class DistillStage(_TrainingStage):
    """Distil a student (``model``: fresh, ``init``: continued) from a schedule of teachers."""

    kind: Literal["distill"]
    init_from_teacher: StudentInitConfig | None = Field(
        None, description="Copy chosen teacher layers into the fresh student (needs `model`)."
    )
    tokenizer: str | None = Field(
        None, description="Student tokenizer; default: the first teacher's (must match all)."
    )
    teachers: list[TeacherConfig] = Field(min_length=1, description="Teachers, in order.")
    loss: DistillLossConfig = Field(default_factory=DistillLossConfig)
    teacher_cache: TeacherCacheConfig = Field(default_factory=TeacherCacheConfig)

    @model_validator(mode="after")
    def _consistent(self) -> DistillStage:
        if self.init_from_teacher is not None and self.model is None:
            raise ValueError("`init_from_teacher` needs `model` (the student shape)")
        *head, last = self.teachers
        for i, teacher in enumerate(head):
            if teacher.until_step is None and not teacher.until_converged:
                raise ValueError(
                    f"teachers[{i}] needs `until_step` or `until_converged: true` (only the last"
                    " teacher runs to the end)"
                )
        if last.until_step is not None or last.until_converged:
            raise ValueError(
                "the last teacher runs to the end: drop its until_step / until_converged"
            )
        steps = [t.until_step for t in head if t.until_step is not None]
        if steps != sorted(steps):
            raise ValueError("teachers' until_step values must increase")
        if any(t.until_converged for t in head) and not self.eval.corpora:
            raise ValueError("`until_converged` needs eval.corpora to measure the validation loss")
        if self.loss.monitor is not None and self.loss.monitor not in self.eval.corpora:
            raise ValueError(f"loss.monitor '{self.loss.monitor}' is not one of eval.corpora")
        uses_states = self.loss.hidden_weight > 0 or self.loss.attention_weight > 0
        if self.teacher_cache.top_k and uses_states:
            raise ValueError(
                "teacher_cache stores logits only; it cannot be combined with hidden_weight or"
                " attention_weight"
            )
        if self.loss.mlm_weight + self.loss.soft_weight + self.loss.hidden_weight == 0:
            raise ValueError("all loss weights are 0: nothing to train")
        return self

    @property
    def monitor(self) -> str | None:
        return self.loss.monitor or (self.eval.corpora[0] if self.eval.corpora else None)

    def stage_refs(self) -> list[str]:
        return list(dict.fromkeys(self.references().values()))

    def references(self) -> dict[str, str]:
        copy_from = self.init_from_teacher.teacher if self.init_from_teacher else None
        refs = {"init": self.init, "tokenizer": self.tokenizer}
        refs["init_from_teacher.teacher"] = copy_from
        refs.update({f"teachers[{i}].model": t.model for i, t in enumerate(self.teachers)})
        return {k: v for k, v in refs.items() if v}


StageConfig = TokenizerStage | PretrainStage | DistillStage | FinetuneStage | TaskDistillStage
"""Every stage kind's config class; a new kind adds its class here (and a runner in
``distilnlu.pipeline.RUNNERS``)."""
Stage = Annotated[StageConfig, Field(discriminator="kind")]
STAGE_CLASSES: tuple[type[StrictModel], ...] = get_args(StageConfig)


class ReportConfig(StrictModel):
    """What the report recommends shipping: the most accurate model on dev within a latency
    budget. Read when the report is written, so changing it redoes no stage."""

    latency_budget_ms: float | None = Field(
        None,
        gt=0,
        description="Latency budget (p50 ms, one utterance on one thread); unset: latency_factor"
        " × the p50 of the smallest student (a model a distill / task_distill stage trained).",
    )
    latency_factor: float = Field(
        2.0, ge=1.0, description="Budget = this × the smallest student's p50 (no budget set)."
    )


class Recipe(StrictModel):
    """A whole pipeline: data, and stages run in the order written."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Run name (letters, digits, . _ -); outputs go to <output_dir>/<name>/.",
    )
    seed: int = Field(0, description="Global seed (data order, masks, initialisation).")
    output_dir: Path = Field(Path("runs"), description="Parent folder of run folders.")
    data: DataConfig
    stages: dict[str, Stage] = Field(min_length=1, description="Stages, in execution order.")
    report: ReportConfig = Field(
        default_factory=ReportConfig, description="How the report chooses the model to ship."
    )

    @model_validator(mode="after")
    def _references_exist(self) -> Recipe:
        names = list(self.stages)
        for i, (name, stage) in enumerate(self.stages.items()):
            for corpus in stage.corpora_used():
                if corpus not in self.data.corpora:
                    raise ValueError(
                        f"stage '{name}' uses corpus '{corpus}', which data.corpora does not define"
                        f" (known: {', '.join(self.data.corpora)})"
                    )
            for ref in stage.stage_refs():
                if ref in self.stages and names.index(ref) >= i:
                    raise ValueError(f"stage '{name}' uses stage '{ref}', which runs after it")
            if isinstance(stage, FinetuneStage):
                self._check_finetune(name, stage)
            if isinstance(stage, TaskDistillStage):
                self._check_task_distill(name, stage)
        return self

    def _check_finetune(self, name: str, stage: FinetuneStage) -> None:
        for ref in stage.models:
            if ref in self.stages and self.stages[ref].kind not in LM_KINDS:
                raise ValueError(f"stage '{name}' fine-tunes '{ref}', which trains no encoder")
        for i, ref in enumerate(stage.snapshots.stages if stage.snapshots else []):
            key = f"stages.{name}.snapshots.stages[{i}]"
            source = self.stages.get(ref)
            if not isinstance(source, _TrainingStage):
                what = "trains no masked LM" if source else "is not a stage of this recipe"
                raise ValueError(
                    f"{key}: '{ref}' {what} (snapshots are kept by pretrain and distill stages)"
                )
            if not source.keep_snapshots:
                raise ValueError(
                    f"{key}: stage '{ref}' keeps no snapshots; set stages.{ref}.keep_snapshots"
                )
        self._check_labeled(name, stage, stage.task)

    def _check_task_distill(self, name: str, stage: TaskDistillStage) -> None:
        encoders = {"student": stage.student}
        if stage.augment is not None:
            encoders["augment.model"] = stage.augment.model
        for key, ref in encoders.items():
            if ref in self.stages and self.stages[ref].kind not in LM_KINDS:
                raise ValueError(f"stage '{name}': {key} '{ref}' is a stage that trains no encoder")
        tasks = set()
        for teacher in stage.teachers:
            teacher_stage = self.stages.get(ref_stage(teacher))
            if teacher_stage is None:
                continue
            if not isinstance(teacher_stage, FinetuneStage) or "/" not in teacher:
                raise ValueError(
                    f"stage '{name}': teacher '{teacher}' must be a fine-tuned model,"
                    " '<finetune stage>/<model>' (e.g. finetune/teacher_stage2)"
                )
            tasks.add(teacher_stage.task)
        if len(tasks) > 1:
            raise ValueError(f"stage '{name}': its teachers mix tasks ({', '.join(sorted(tasks))})")
        self._check_labeled(name, stage, tasks.pop() if tasks else "intent_slot")

    def _check_labeled(self, name: str, stage: SupervisedStage, task: str) -> None:
        for set_name in stage.labeled_sets:
            labeled = self.data.labeled.get(set_name)
            if labeled is None:
                known = ", ".join(self.data.labeled) or "none"
                raise ValueError(
                    f"stage '{name}' uses labeled set '{set_name}', which data.labeled does not"
                    f" define (known: {known})"
                )
            if labeled.task != task:
                raise ValueError(
                    f"stage '{name}' (task {task}) uses labeled set '{set_name}', which"
                    f" holds {labeled.task} data"
                )

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def upstream(self, name: str) -> list[str]:
        """Names of the earlier stages that stage ``name`` reads."""
        return [r for r in self.stages[name].stage_refs() if r in self.stages]

    def stage_hash(self, name: str) -> str:
        """Hash of everything that determines a stage's output, upstream stages included.

        A stage is redone when this changes, and so is every stage that reads it.
        """
        stage = self.stages[name]
        payload = {
            # Settings left at their defaults are not hashed, so a new option (with a default
            # that keeps the old behaviour) does not redo finished stages.
            "kind": stage.kind,
            # training.threads, .attention and .compile are never hashed, set or not: a thread
            # count, an attention kernel or compilation changes how fast a stage runs, not what
            # it trains (float sums may round in another order, as on another machine, and
            # compiled dropout draws other masks of the same rate), so changing one
            # must neither redo a finished stage nor refuse to resume a killed one (the
            # checkpoint checks this hash).
            "stage": stage.model_dump(
                mode="json",
                exclude_defaults=True,
                exclude={"training": {"threads", "attention", "compile"}},
            ),
            "corpora": {
                c: self.data.corpora[c].model_dump(mode="json", exclude_defaults=True)
                for c in stage.corpora_used()
            },
            "data_root": str(self.data.root) if self.data.root else None,
            "alpha": self.data.alpha,
            "seed": self.seed,
            "upstream": {u: self.stage_hash(u) for u in self.upstream(name)},
        }
        if stage.corpora_used():  # the cut changes what is read; hashed only when not default
            payload |= self.data.model_dump(include={"max_document_chars"}, exclude_defaults=True)
        if isinstance(stage, SupervisedStage):  # only here: other stages' hashes stay as they were
            payload["labeled"] = {
                s: self.data.labeled[s].model_dump(mode="json", exclude_defaults=True)
                for s in stage.labeled_sets
            }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' is not of the form key=value (e.g. seed=3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc})") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``key=value`` in the raw dict; validation later rejects unknown keys."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return raw


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``<file>: <key.path>: <message>``."""
    lines = []
    for err in exc.errors():
        parts = list(err["loc"])
        if len(parts) > 2 and parts[0] == "stages" and _is_union_tag(parts[2]):
            del parts[2]  # the kind tag after the stage name (which may itself be 'tokenizer')
        loc = ".".join(str(p) for p in parts)
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {loc or '<top>'}: {msg}")
    return "invalid recipe\n  " + "\n  ".join(lines)


def _is_union_tag(part: Any) -> bool:
    # Discriminated unions add the tag ('pretrain') or the class name to error locations.
    return part in _UNION_TAGS


_UNION_TAGS = frozenset(
    name
    for cls in STAGE_CLASSES
    for name in (cls.__name__, *get_args(cls.model_fields["kind"].annotation))
)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe, apply overrides, validate. Errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of keys to values")
    raw = apply_overrides(raw, overrides or [])
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        source = f"{path}" + (" (with overrides)" if overrides else "")
        raise ConfigError(format_validation_error(exc, source)) from None


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML, written next to every stage output."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
