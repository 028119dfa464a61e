"""Step budgets (max_steps / epochs), task_distill references, and early stopping's min_delta."""

from __future__ import annotations

import math

import pytest

from distilnlu.config import TaskDistillStage, TrainingConfig, load_recipe
from distilnlu.errors import ConfigError
from distilnlu.supervised_config import ref_stage
from distilnlu.training.objectives import EarlyStopping

LABELED = {
    "nlu_train": {"format": "synthetic", "num_examples": 30, "seed": 1},
    "nlu_dev": {"format": "synthetic", "num_examples": 10, "seed": 2},
}
FINETUNE = {
    "kind": "finetune",
    "models": ["teacher_stage1", "teacher_stage2"],
    "train": "nlu_train",
    "dev": "nlu_dev",
    "training": {"epochs": 2, "batch_size": 8},
}
TASK = {
    "kind": "task_distill",
    "teacher": "finetune/teacher_stage2",
    "student": "teacher_stage1",
    "train": "nlu_train",
    "dev": "nlu_dev",
    "unlabeled": ["domain"],
    "augment": {"model": "teacher_stage2"},
    "training": {"epochs": 1, "batch_size": 8},
}


def with_stages(**task_changes):
    def mutate(raw):
        raw["data"]["labeled"] = dict(LABELED)
        raw["stages"]["finetune"] = dict(FINETUNE)
        raw["stages"]["task"] = {**TASK, **task_changes}

    return mutate


# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("stage", ["teacher_stage1", "teacher_stage2"])
def test_epochs_in_a_pretrain_stage_is_rejected(tiny_recipe_file, stage):
    path = tiny_recipe_file(lambda r: r["stages"][stage]["training"].update(epochs=2))
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert f"stages.{stage}" in str(err.value) and "training.epochs" in str(err.value)


def test_epochs_in_a_distill_stage_is_rejected(tiny_recipe_file):
    def mutate(raw):
        raw["stages"]["student"] = {
            "kind": "distill",
            "model": "tiny",
            "teachers": [{"model": "teacher_stage1"}],
            "data": {"domain": 1.0},
            "training": {"max_steps": 4, "epochs": 1},
        }

    with pytest.raises(ConfigError, match=r"stages\.student.*training\.epochs"):
        load_recipe(tiny_recipe_file(mutate))


def test_neither_max_steps_nor_epochs_is_an_error(tiny_recipe_file):
    def drop_pretrain(raw):
        del raw["stages"]["teacher_stage1"]["training"]["max_steps"]

    with pytest.raises(ConfigError, match=r"stages\.teacher_stage1\.training.*max_steps"):
        load_recipe(tiny_recipe_file(drop_pretrain))

    def drop_finetune(raw):
        with_stages()(raw)
        raw["stages"]["finetune"]["training"] = {"batch_size": 8}

    with pytest.raises(ConfigError, match=r"stages\.finetune\.training.*max_steps"):
        load_recipe(tiny_recipe_file(drop_finetune))
    with pytest.raises(ValueError, match="max_steps"):
        TrainingConfig()


def test_epochs_are_accepted_in_finetune_and_task_distill_stages(tiny_recipe_file):
    recipe = load_recipe(tiny_recipe_file(with_stages()))
    assert recipe.stages["finetune"].training.epochs == 2
    task = recipe.stages["task"]
    assert isinstance(task, TaskDistillStage)
    assert task.training.epochs == 1 and task.training.max_steps is None


@pytest.mark.parametrize(
    ("max_steps", "epochs", "batches", "grad_accum", "want"),
    [
        (None, 3, 19, 1, 57),
        (None, 2.5, 19, 1, math.ceil(47.5)),
        (None, 1, 19, 4, math.ceil(19 / 4)),
        (None, 0.5, 7, 2, math.ceil(3.5 / 2)),
        (None, 0.01, 3, 8, 1),  # never below one step
        (40, 3, 19, 1, 40),  # max_steps is the smaller budget
        (100, 3, 19, 1, 57),  # epochs are
        (100, 3, 19, 2, math.ceil(57 / 2)),
        (12, None, 19, 1, 12),
        (12, None, None, 1, 12),
    ],
)
def test_steps_is_the_smaller_budget(max_steps, epochs, batches, grad_accum, want):
    cfg = TrainingConfig(max_steps=max_steps, epochs=epochs, grad_accum=grad_accum)
    if batches is not None:
        expected = min(
            b
            for b in [max_steps, math.ceil(epochs * batches / grad_accum) if epochs else None]
            if b is not None
        )
        assert want == max(1, expected)
    assert cfg.steps(batches) == want
    resolved = cfg.for_epochs(batches if batches is not None else 1)
    assert resolved.epochs is None and resolved.max_steps == cfg.steps(batches or 1)
    assert resolved.grad_accum == grad_accum and cfg.epochs == epochs  # cfg itself unchanged


def test_steps_with_epochs_needs_the_epoch_size():
    with pytest.raises(ConfigError, match=r"training\.epochs"):
        TrainingConfig(epochs=2).steps()


def test_epochs_must_be_positive():
    with pytest.raises(ValueError, match="epochs"):
        TrainingConfig(epochs=0)


# --------------------------------------------------------------------------- task_distill refs


def test_task_distill_recipe_loads_and_reads_its_upstream_stages(tiny_recipe_file):
    recipe = load_recipe(tiny_recipe_file(with_stages()))
    assert recipe.upstream("task") == ["finetune", "teacher_stage1", "teacher_stage2"]
    before = recipe.stage_hash("task")
    changed = load_recipe(
        tiny_recipe_file(with_stages()), ["stages.finetune.training.batch_size=4"]
    )
    assert changed.stage_hash("task") != before  # a new teacher redoes the distillation


@pytest.mark.parametrize("teacher", ["teacher_stage2", "tokenizer"])
def test_teacher_that_is_a_stage_but_not_a_finetune_stage(tiny_recipe_file, teacher):
    with pytest.raises(ConfigError) as err:
        load_recipe(tiny_recipe_file(with_stages(teacher=teacher)))
    msg = str(err.value)
    assert "stage 'task'" in msg and f"teacher '{teacher}'" in msg and "fine-tuned" in msg


def test_teacher_that_is_a_bare_finetune_stage_name(tiny_recipe_file):
    with pytest.raises(ConfigError, match=r"teacher 'finetune' must be a fine-tuned model"):
        load_recipe(tiny_recipe_file(with_stages(teacher="finetune")))


def test_teacher_of_a_stage_that_is_not_finetune_even_with_a_model(tiny_recipe_file):
    with pytest.raises(ConfigError, match="must be a fine-tuned model"):
        load_recipe(tiny_recipe_file(with_stages(teacher="teacher_stage2/model")))


def test_an_ensemble_of_teachers_reads_every_teacher_stage(tiny_recipe_file):
    ensemble = ["finetune/teacher_stage1", "finetune/teacher_stage2"]
    recipe = load_recipe(tiny_recipe_file(with_stages(teacher=ensemble)))
    stage = recipe.stages["task"]
    assert isinstance(stage, TaskDistillStage) and stage.teachers == ensemble
    assert recipe.upstream("task") == ["finetune", "teacher_stage1", "teacher_stage2"]
    single = load_recipe(tiny_recipe_file(with_stages()))
    assert recipe.stage_hash("task") != single.stage_hash("task")


def test_teacher_as_a_folder_is_accepted(tiny_recipe_file, tmp_path):
    recipe = load_recipe(tiny_recipe_file(with_stages(teacher=str(tmp_path / "my_teacher"))))
    assert recipe.upstream("task") == ["teacher_stage1", "teacher_stage2"]


def test_unlabeled_corpus_must_be_defined(tiny_recipe_file):
    with pytest.raises(ConfigError, match=r"stage 'task' uses corpus 'chats'.*data\.corpora"):
        load_recipe(tiny_recipe_file(with_stages(unlabeled=["domain", "chats"])))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"student": "finetune"}, "student 'finetune' is a stage that trains no encoder"),
        ({"student": "tokenizer"}, "student 'tokenizer' is a stage that trains no encoder"),
        (
            {"augment": {"model": "finetune"}},
            "augment.model 'finetune' is a stage that trains no encoder",
        ),
        ({"train": "nope"}, "labeled set 'nope'"),
        ({"augment": {"model": "teacher_stage2", "copies": 0}}, "copies"),
        ({"loss": {"temperature": 0}}, "temperature"),
        ({"teacher": []}, "`teacher` lists no model"),
        ({"teacher": ["finetune/teacher_stage2"] * 2}, "`teacher` lists a model twice"),
        (
            {
                "teacher": ["finetune/teacher_stage1", "finetune/teacher_stage2"],
                "loss": {"hidden_weight": 1.0},
            },
            "loss.hidden_weight needs one teacher",
        ),
        (
            {"teacher": ["finetune/teacher_stage2", "teacher_stage1"]},
            "teacher 'teacher_stage1' must be a fine-tuned model",
        ),
    ],
)
def test_task_distill_stage_errors(tiny_recipe_file, changes, fragment):
    with pytest.raises(ConfigError, match="task") as err:
        load_recipe(tiny_recipe_file(with_stages(**changes)))
    assert fragment in str(err.value)


def test_task_distill_before_its_teacher_stage_is_an_error(tiny_recipe_file):
    def mutate(raw):
        with_stages()(raw)
        stages = raw["stages"]
        task = stages.pop("task")
        finetune = stages.pop("finetune")
        stages["task"], stages["finetune"] = task, finetune

    with pytest.raises(ConfigError, match="stage 'task' uses stage 'finetune', which runs after"):
        load_recipe(tiny_recipe_file(mutate))


@pytest.mark.parametrize("stage", ["tokenizer", "finetune", "distill", "pretrain"])
@pytest.mark.parametrize(
    ("training", "fragment"),
    [
        ({"max_steps": 3, "max_stepz": 3}, "training.max_stepz: unknown key"),
        ({"batch_size": 8}, "training: Value error, set training.max_steps"),
    ],
)
def test_errors_of_a_stage_named_like_a_kind_keep_the_stage_name(
    tiny_recipe_file, stage, training, fragment
):
    """pydantic puts the kind tag after the stage name; only that tag is left out."""

    def mutate(raw):
        with_stages()(raw)
        raw["stages"][stage] = {**raw["stages"].pop("finetune"), "training": training}
        raw["stages"]["task"]["teacher"] = f"{stage}/teacher_stage2"

    with pytest.raises(ConfigError) as err:
        load_recipe(tiny_recipe_file(mutate))
    assert f"recipe.yaml: stages.{stage}.{fragment}" in str(err.value)


def test_ref_stage():
    assert ref_stage("final") == "final"
    assert ref_stage("finetune/teacher_stage2") == "finetune"
    assert ref_stage("finetune/teacher_stage2-frozen") == "finetune"


# --------------------------------------------------------------------------- early stopping


def run_stopper(scores, patience, min_delta):
    stopper = EarlyStopping(patience, min_delta)
    trace = []
    for step, score in enumerate(scores, start=1):
        improved = stopper.update(step * 10, score)
        trace.append((improved, stopper.best_step, stopper.since_best, stopper.should_stop))
    return stopper, trace


def test_tiny_gains_move_best_but_patience_runs_out():
    # 0.50 is a real gain; then each evaluation creeps up by 0.001 (<= min_delta 0.01)
    scores = [0.50, 0.501, 0.502, 0.503]
    stopper, trace = run_stopper(scores, patience=3, min_delta=0.01)
    assert [t[0] for t in trace] == [True, True, True, True]  # every gain is a new best
    assert [t[1] for t in trace] == [10, 20, 30, 40]  # best weights follow the gains
    assert [t[2] for t in trace] == [0, 1, 2, 3]  # but none of them resets patience
    assert [t[3] for t in trace] == [False, False, False, True]
    assert stopper.best == 0.503 and stopper.anchor == 0.50


def test_creeping_gains_add_up_to_a_real_gain():
    # measured against the last real gain (0.50), not the last best: 0.511 is > 0.50 + 0.01
    scores = [0.50, 0.505, 0.511, 0.512, 0.513, 0.514]
    stopper, trace = run_stopper(scores, patience=3, min_delta=0.01)
    assert [t[2] for t in trace] == [0, 1, 0, 1, 2, 3]
    assert stopper.should_stop and stopper.best_step == 60 and stopper.anchor == 0.511


def test_a_gain_of_exactly_min_delta_is_no_improvement():
    _, trace = run_stopper([0.5, 0.75, 1.0, 1.25], patience=5, min_delta=0.25)
    assert [t[2] for t in trace] == [0, 1, 0, 1]  # 0.75 is not > 0.5 + 0.25; 1.0 is
    assert [t[0] for t in trace] == [True, True, True, True]


def test_losses_and_ties_count_against_patience_and_keep_best():
    stopper, trace = run_stopper([0.6, 0.4, 0.6, 0.59], patience=3, min_delta=0.0)
    assert [t[0] for t in trace] == [True, False, False, False]  # a tie is not a new best
    assert stopper.best_step == 10 and stopper.should_stop


def test_zero_min_delta_resets_patience_on_any_gain():
    _, trace = run_stopper([0.5, 0.5001, 0.5002, 0.5003], patience=1, min_delta=0.0)
    assert [t[2] for t in trace] == [0, 0, 0, 0] and not trace[-1][3]


def test_stopper_state_round_trips_with_the_anchor():
    stopper, _ = run_stopper([0.50, 0.501, 0.502], patience=3, min_delta=0.01)
    restored = EarlyStopping(3, 0.01)
    restored.load_state_dict(stopper.state_dict())
    assert restored.state_dict() == stopper.state_dict()
    assert restored.update(40, 0.503) and restored.should_stop  # the same as without a restart
    old = {"best": 0.7, "best_step": 5, "since_best": 1}  # checkpoint from before min_delta
    legacy = EarlyStopping(3, 0.01)
    legacy.load_state_dict(old)
    assert legacy.anchor == 0.7
