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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from distilnlu.data.labeled_config import LabeledSetConfig
from distilnlu.data.masking import MaskingConfig
from distilnlu.data.source_config import SourceConfig
from distilnlu.errors import ConfigError
from distilnlu.modeling.presets import ModelShape
from distilnlu.rundir import LM_KINDS
from distilnlu.tasks import TaskName


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
    corpora: dict[str, CorpusConfig] = Field(description="Named corpora that stages refer to.")
    labeled: dict[str, LabeledSetConfig] = Field(
        default_factory=dict,
        description="Named labeled sets (splits) for fine-tuning and evaluation.",
    )


class TrainingConfig(StrictModel):
    """Optimisation settings of one training stage."""

    max_steps: int = Field(gt=0, description="Optimizer steps.")
    batch_size: int = Field(32, gt=0, description="Sequences per micro-batch per process.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    seq_len: int = Field(128, ge=8, description="Packed sequence length incl. <s> and </s>.")
    lr: float = Field(5e-4, gt=0, description="Peak learning rate.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        "linear", description="Decay after warm-up."
    )
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay (not on norms/bias).")
    adam_betas: tuple[float, float] = Field((0.9, 0.98), description="AdamW betas.")
    adam_eps: float = Field(1e-6, gt=0, description="AdamW epsilon.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping; 0 disables it.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="Mixed precision mode.")
    log_every: int = Field(10, gt=0, description="Progress-bar refresh interval in steps.")
    eval_every: int = Field(100, gt=0, description="Held-out evaluation interval in steps.")
    checkpoint_every: int = Field(100, gt=0, description="Resumable checkpoint interval in steps.")
    max_nonfinite: int = Field(
        20, ge=0, description="Stop when this many consecutive steps had a non-finite loss."
    )
    shuffle_buffer: int = Field(256, ge=1, description="Packed sequences shuffled together.")
    packing: Literal["isolated", "concatenated"] = Field(
        "isolated",
        description=(
            "isolated: each packed document is framed <s> … </s>, attends only to itself and"
            " has its own positions, as when encoded alone (short utterances learn context far"
            " sooner, docs/models.md); concatenated: RoBERTa's FULL-SENTENCES packing, attention"
            " across document boundaries."
        ),
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

    @model_validator(mode="after")
    def _one_start(self) -> _TrainingStage:
        if (self.model is None) == (self.init is None):
            raise ValueError("give exactly one of `model` (a fresh model) or `init`")
        if not self.data or any(w <= 0 for w in self.data.values()):
            raise ValueError("`data` needs at least one corpus with a positive weight")
        return self

    def corpora_used(self) -> list[str]:
        return [*self.data, *self.eval.corpora]


class PretrainStage(_TrainingStage):
    """Masked-LM pretraining: from scratch (``model``) or continued (``init``)."""

    kind: Literal["pretrain"]
    tokenizer: str | None = Field(
        "tokenizer", description="Tokenizer stage name or folder (ignored when `init` has one)."
    )

    def stage_refs(self) -> list[str]:
        return [r for r in (self.init, self.tokenizer) if r]


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
        copy_from = self.init_from_teacher.teacher if self.init_from_teacher else None
        refs = [self.init, self.tokenizer, copy_from, *(t.model for t in self.teachers)]
        return list(dict.fromkeys(r for r in refs if r))


class FinetuneStage(StrictModel):
    """Fine-tune every listed encoder on labeled data and evaluate it (DESIGN.md §2, §5, §6).

    Each model × encoder mode gets its own folder ``<stage>/<model>[-frozen]/`` (encoder, heads,
    label maps, tokenizer, metrics); the stage's ``metrics.json`` collects them for the report.
    """

    kind: Literal["finetune"]
    task: TaskName = Field(
        "intent_slot", description="Joint intent + slot model, or sentence-pair classification."
    )
    models: list[str] = Field(
        min_length=1, description="Encoders to fine-tune: stage names, local folders or hub ids."
    )
    encoder: list[Literal["full", "frozen"]] = Field(
        ["full"], min_length=1, description="Train the whole model, only the heads, or both."
    )
    baseline: str | None = Field(
        None, description="The model (one of `models`) that relative errors are measured against."
    )
    train: str = Field(description="Labeled set (data.labeled) to train on.")
    dev: str = Field(description="Labeled set for evaluation during training and early stopping.")
    test: list[str] = Field(
        default_factory=list,
        description="Labeled sets scored with the best checkpoint; the first is the primary one.",
    )
    lm_corpus: str | None = Field(
        None, description="Held-out corpus for each encoder's perplexity and mask-filling accuracy."
    )
    lm_max_texts: int = Field(300, gt=0, description="Texts of lm_corpus scored per encoder.")
    max_length: int = Field(64, ge=8, description="Tokens per utterance (pair) incl. specials.")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="Sentence vector for the intent/pair head: mean of tokens or <s>."
    )
    slot_weight: float = Field(1.0, ge=0.0, description="Weight of the slot loss (intent: 1).")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before the heads.")
    patience: int = Field(5, ge=1, description="Evaluations without dev improvement = stop.")
    frozen_lr: float | None = Field(
        None, gt=0, description="Learning rate of head-only training (default: training.lr)."
    )
    eval_batch_size: int = Field(64, gt=0, description="Batch size of evaluation.")
    latency_texts: int = Field(
        100, ge=0, description="Dev utterances timed one by one on one thread (0: skip)."
    )
    training: TrainingConfig

    @model_validator(mode="after")
    def _consistent(self) -> FinetuneStage:
        if len(set(self.models)) != len(self.models):
            raise ValueError("`models` lists a model twice")
        if self.baseline is not None and self.baseline not in self.models:
            raise ValueError(f"baseline '{self.baseline}' is not one of `models`")
        return self

    @property
    def labeled_sets(self) -> list[str]:
        return list(dict.fromkeys([self.train, self.dev, *self.test]))

    def corpora_used(self) -> list[str]:
        return [self.lm_corpus] if self.lm_corpus else []

    def stage_refs(self) -> list[str]:
        return list(self.models)


StageConfig = TokenizerStage | PretrainStage | DistillStage | FinetuneStage
"""Every stage kind's config class; a new kind adds its class here (and a runner in
``distilnlu.pipeline.RUNNERS``)."""
Stage = Annotated[StageConfig, Field(discriminator="kind")]
STAGE_CLASSES: tuple[type[StrictModel], ...] = get_args(StageConfig)


class Recipe(StrictModel):
    """A whole pipeline: data, and stages run in the order written."""

    name: str = Field(description="Run name; outputs go to <output_dir>/<name>/.")
    seed: int = Field(0, description="Global seed (data order, masks, initialisation).")
    output_dir: Path = Field(Path("runs"), description="Parent folder of run folders.")
    data: DataConfig
    stages: dict[str, Stage] = Field(min_length=1, description="Stages, in execution order.")

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
        return self

    def _check_finetune(self, name: str, stage: FinetuneStage) -> None:
        for ref in stage.models:
            if ref in self.stages and self.stages[ref].kind not in LM_KINDS:
                raise ValueError(f"stage '{name}' fine-tunes '{ref}', which trains no encoder")
        for set_name in stage.labeled_sets:
            labeled = self.data.labeled.get(set_name)
            if labeled is None:
                known = ", ".join(self.data.labeled) or "none"
                raise ValueError(
                    f"stage '{name}' uses labeled set '{set_name}', which data.labeled does not"
                    f" define (known: {known})"
                )
            if labeled.task != stage.task:
                raise ValueError(
                    f"stage '{name}' (task {stage.task}) uses labeled set '{set_name}', which"
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
            "stage": stage.model_dump(mode="json", exclude_defaults=True),
            "corpora": {
                c: self.data.corpora[c].model_dump(mode="json", exclude_defaults=True)
                for c in stage.corpora_used()
            },
            "data_root": str(self.data.root) if self.data.root else None,
            "alpha": self.data.alpha,
            "seed": self.seed,
            "upstream": {u: self.stage_hash(u) for u in self.upstream(name)},
        }
        if isinstance(stage, FinetuneStage):  # only here, so other stages' hashes stay as they were
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
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
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
