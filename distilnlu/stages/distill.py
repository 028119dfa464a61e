"""The ``distill`` stage: build the student, check the teachers, train, save (DESIGN.md §2, §5).

Everything that can be checked without compute is checked first: teacher references, shared
tokenizer, vocabulary sizes, layer maps and shapes for hidden-state and attention matching.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel, set_seed

from distilnlu.config import DistillStage, Recipe
from distilnlu.errors import ConfigError
from distilnlu.modeling.loading import load_masked_lm, looks_like_hub_id
from distilnlu.modeling.teachers import (
    check_same_tokenizer,
    init_student_from_teacher,
    load_teacher,
)
from distilnlu.modeling.varlen import saved_attention, training_attention
from distilnlu.rundir import TrainedMetrics
from distilnlu.stages.common import (
    Batches,
    build_fresh,
    finish_masked_lm,
    resolve_ref,
    stage_batches,
    train_masked_lm,
)
from distilnlu.tokenization import load_tokenizer
from distilnlu.training.distill import DistillObjective, DistillStudent
from distilnlu.training.losses import AttentionKLLoss, HiddenStateLoss, uniform_layer_map
from distilnlu.training.schedule import Phase, TeacherSchedule
from distilnlu.training.unigram import init_output_bias

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _model_config(source: str) -> PretrainedConfig:
    local = not looks_like_hub_id(source)
    return AutoConfig.from_pretrained(source, local_files_only=local)


def student_tokenizer(recipe: Recipe, stage: DistillStage) -> Any:
    """The student's tokenizer: given, the continued student's, or the first teacher's."""
    ref = stage.tokenizer or stage.init or stage.teachers[0].model
    return load_tokenizer(resolve_ref(recipe, ref))


def check_teachers(recipe: Recipe, stage: DistillStage, tokenizer: Any) -> list[PretrainedConfig]:
    """Tokenizer and vocabulary checks for every teacher; returns their model configs."""
    configs = []
    for teacher in stage.teachers:
        source = resolve_ref(recipe, teacher.model)
        check_same_tokenizer(tokenizer, load_tokenizer(source), teacher.model)
        configs.append(_model_config(source))
    sizes = {c.vocab_size for c in configs}
    if len(sizes) > 1:
        raise ConfigError(f"teachers have different vocabulary sizes {sorted(sizes)}")
    return configs


def build_student(
    recipe: Recipe, stage: DistillStage, vocab_size: int, tokenizer: Any
) -> PreTrainedModel:
    if stage.init:
        return load_masked_lm(resolve_ref(recipe, stage.init))
    student = build_fresh(stage.model, tokenizer, vocab_size, stage.training.seq_len)
    if stage.init_from_teacher:
        source = load_masked_lm(resolve_ref(recipe, stage.init_from_teacher.teacher))
        init_student_from_teacher(student, source, stage.init_from_teacher.layers)
    return student


def matching_losses(
    stage: DistillStage, student: PreTrainedModel, teacher_configs: list[PretrainedConfig]
) -> tuple[HiddenStateLoss | None, AttentionKLLoss | None]:
    """Hidden-state and attention losses (None when their weight is 0), shapes checked."""
    loss = stage.loss
    if loss.hidden_weight == 0 and loss.attention_weight == 0:
        return None, None
    shapes = {(c.hidden_size, c.num_hidden_layers, c.num_attention_heads) for c in teacher_configs}
    if len(shapes) > 1:
        raise ConfigError("hidden/attention matching needs all teachers of one shape")
    t_width, t_layers, t_heads = shapes.pop()
    s_cfg = student.config
    layer_map = loss.layer_map or uniform_layer_map(s_cfg.num_hidden_layers, t_layers)
    if len(layer_map) != s_cfg.num_hidden_layers or not all(1 <= m <= t_layers for m in layer_map):
        raise ConfigError(
            f"loss.layer_map {layer_map} needs one teacher layer in 1..{t_layers} for each of the"
            f" student's {s_cfg.num_hidden_layers} layers"
        )
    hidden = None
    if loss.hidden_weight > 0:
        hidden = HiddenStateLoss(s_cfg.hidden_size, t_width, layer_map)
    attention = None
    if loss.attention_weight > 0:
        if s_cfg.num_attention_heads != t_heads:
            raise ConfigError(
                f"attention KL needs equal head counts (student {s_cfg.num_attention_heads},"
                f" teacher {t_heads})"
            )
        attention = AttentionKLLoss(layer_map)
    return hidden, attention


def fixed_batches(make: Batches, count: int, skip: int) -> Iterator[torch.Tensor]:
    """The first ``count`` batches of the stream, repeated forever (a fixed dataset)."""
    pool = list(islice(make(0), count))
    index = skip
    while True:
        yield pool[index % count]
        index += 1


def run(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> TrainedMetrics:
    stage = recipe.stages[name]
    assert isinstance(stage, DistillStage)
    set_seed(recipe.seed)
    tokenizer = student_tokenizer(recipe, stage)
    teacher_configs = check_teachers(recipe, stage, tokenizer)  # before any compute
    student = build_student(recipe, stage, teacher_configs[0].vocab_size, tokenizer)
    if student.config.vocab_size != teacher_configs[0].vocab_size:
        raise ConfigError(
            f"student vocabulary ({student.config.vocab_size}) differs from the teachers'"
            f" ({teacher_configs[0].vocab_size})"
        )
    hidden_loss, attention_loss = matching_losses(stage, student, teacher_configs)
    if attention_loss is not None:
        student.set_attn_implementation("eager")  # SDPA does not return attention weights
    else:
        training_attention(student, stage.training.attention)
    dtype = DTYPES[stage.training.precision]

    def load(ref: str, device: torch.device) -> PreTrainedModel:
        teacher = load_teacher(resolve_ref(recipe, ref), dtype, device)
        if attention_loss is not None:
            teacher.set_attn_implementation("eager")
        else:
            training_attention(teacher, stage.training.attention, trained=False)
        return teacher

    schedule = TeacherSchedule(
        [
            Phase(t.model, t.until_step, t.until_converged, t.patience, t.min_delta)
            for t in stage.teachers
        ]
    )
    objective = DistillObjective(
        tokenizer,
        stage.masking,
        stage.loss,
        schedule,
        load,
        cache_top_k=stage.teacher_cache.top_k,
        monitor=stage.monitor,
        isolate_documents=stage.training.packing == "isolated",
    )
    make = stage_batches(recipe, stage, tokenizer)
    make_batches = make
    if stage.teacher_cache.top_k:
        count = stage.teacher_cache.batches
        make_batches = lambda skip: fixed_batches(make, count, skip)  # noqa: E731
    if stage.model is not None and stage.init_from_teacher is None:
        init_output_bias(student, objective.mlm, make(0), recipe.seed + 1)
    state = train_masked_lm(
        recipe,
        name,
        out_dir,
        stage_hash,
        module=DistillStudent(student, hidden_loss, attention_loss),
        objective=objective,
        make_batches=make_batches,
        tokenizer=tokenizer,
    )
    objective.release_teacher()
    if attention_loss is not None:
        student.set_attn_implementation("sdpa")
    saved_attention(student)
    return finish_masked_lm(
        recipe,
        name,
        out_dir,
        student,
        tokenizer,
        state,
        teachers=[t.model for t in stage.teachers],
        teacher_switches=[s.__dict__ for s in schedule.switches],
    )
