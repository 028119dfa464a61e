from pathlib import Path

import pytest

from distilnlu.config import PretrainStage, apply_overrides, load_recipe, parse_override
from distilnlu.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.stages
    assert "teacher_stage1" in recipe.stages and "teacher_stage2" in recipe.stages


def test_configs_folder_is_not_empty():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "massive.yaml", "alexatm.yaml"}


def test_unknown_key_names_key_path_and_file(tiny_recipe_file):
    path = tiny_recipe_file(lambda r: r["stages"]["teacher_stage1"]["training"].update(max_stepz=3))
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "stages.teacher_stage1.training.max_stepz: unknown key" in msg


def test_mistyped_value_is_rejected(tiny_recipe_file):
    path = tiny_recipe_file(lambda r: r["stages"]["teacher_stage1"]["training"].update(lr="fast"))
    with pytest.raises(ConfigError, match=r"stages\.teacher_stage1\.training\.lr"):
        load_recipe(path)


def test_packing_mode_is_checked(tiny_recipe_file):
    assert load_recipe(tiny_recipe_file()).stages["teacher_stage1"].training.packing == "isolated"
    path = tiny_recipe_file(
        lambda r: r["stages"]["teacher_stage1"]["training"].update(packing="interleaved")
    )
    with pytest.raises(ConfigError, match=r"training\.packing: Input should be 'isolated'"):
        load_recipe(path)


def test_overrides_set_nested_values(tiny_recipe_file):
    recipe = load_recipe(
        tiny_recipe_file(),
        ["stages.teacher_stage1.training.max_steps=3", "data.on_error=skip", "seed=7"],
    )
    stage = recipe.stages["teacher_stage1"]
    assert isinstance(stage, PretrainStage)
    assert stage.training.max_steps == 3
    assert recipe.data.on_error == "skip" and recipe.seed == 7


def test_unknown_override_key_is_an_error(tiny_recipe_file):
    with pytest.raises(ConfigError, match=r"\(with overrides\): data\.rooot: unknown key"):
        load_recipe(tiny_recipe_file(), ["data.rooot=/tmp"])


@pytest.mark.parametrize("bad", ["noequals", "=3"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError, match="key=value"):
        parse_override(bad)


def test_override_cannot_descend_into_a_value():
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_unknown_corpus_reference(tiny_recipe_file):
    path = tiny_recipe_file(lambda r: r["stages"]["teacher_stage1"].update(data={"nope": 1.0}))
    with pytest.raises(ConfigError, match="corpus 'nope'"):
        load_recipe(path)


def test_stage_cannot_read_a_later_stage(tiny_recipe_file):
    stage1 = "teacher_stage1"
    path = tiny_recipe_file(lambda r: r["stages"][stage1].update(tokenizer="teacher_stage2"))
    with pytest.raises(ConfigError, match="runs after it"):
        load_recipe(path)


def test_model_and_init_are_exclusive(tiny_recipe_file):
    path = tiny_recipe_file(lambda r: r["stages"]["teacher_stage2"].update(model="tiny"))
    with pytest.raises(ConfigError, match="exactly one of"):
        load_recipe(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(bad)


def test_stage_hash_changes_with_config_and_propagates_downstream(tiny_recipe_file):
    base = load_recipe(tiny_recipe_file())
    changed = load_recipe(tiny_recipe_file(), ["stages.teacher_stage1.training.lr=0.01"])
    assert base.stage_hash("tokenizer") == changed.stage_hash("tokenizer")
    assert base.stage_hash("teacher_stage1") != changed.stage_hash("teacher_stage1")
    assert base.stage_hash("teacher_stage2") != changed.stage_hash("teacher_stage2")


def _with_distill(**changes):
    def mutate(raw):
        stage = {
            "kind": "distill",
            "model": "tiny",
            "teachers": [
                {"model": "teacher_stage1", "until_converged": True},
                {"model": "teacher_stage2"},
            ],
            "data": {"domain": 1.0},
            "training": {"max_steps": 4},
            "eval": {"corpora": ["domain_dev"]},
        }
        for key, value in changes.items():
            if value is None:
                stage.pop(key)
            else:
                stage[key] = value
        raw["stages"]["student"] = stage

    return mutate


def test_a_valid_distill_stage_loads_and_reads_its_teachers(tiny_recipe_file):
    recipe = load_recipe(tiny_recipe_file(_with_distill()))
    assert recipe.upstream("student") == ["teacher_stage1", "teacher_stage2"]
    assert recipe.stages["student"].monitor == "domain_dev"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"teachers": [{"model": "teacher_stage1"}, {"model": "teacher_stage2"}]},
            r"teachers\[0\] needs `until_step`",
        ),
        ({"teachers": [{"model": "teacher_stage1", "until_step": 3}]}, "last teacher runs"),
        ({"teachers": []}, "at least 1"),
        ({"eval": {"corpora": []}}, "needs eval.corpora"),
        ({"loss": {"monitor": "public"}}, "not one of eval.corpora"),
        ({"loss": {"hidden_weight": 1.0}, "teacher_cache": {"top_k": 8}}, "logits only"),
        ({"loss": {"mlm_weight": 0, "soft_weight": 0}}, "nothing to train"),
        ({"loss": {"temperature": 0}}, "greater than 0"),
        ({"loss": {"soft_weigth": 1.0}}, "soft_weigth"),
        (
            {
                "init_from_teacher": {"teacher": "teacher_stage1", "layers": [1]},
                "model": None,
                "init": "teacher_stage1",
            },
            "needs `model`",
        ),
        ({"teachers": [{"model": "nope_stage"}]}, None),
    ],
)
def test_distill_stage_errors(tiny_recipe_file, changes, message):
    path = tiny_recipe_file(_with_distill(**changes))
    if message is None:  # an unknown teacher is a path: checked when the stage runs
        load_recipe(path)
        return
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)


def test_distill_teacher_must_run_before_the_student(tiny_recipe_file):
    def mutate(raw):
        _with_distill(teachers=[{"model": "late"}])(raw)
        raw["stages"]["late"] = dict(raw["stages"]["teacher_stage2"])

    with pytest.raises(ConfigError, match="runs after it"):
        load_recipe(tiny_recipe_file(mutate))


def _with_finetune(**changes):
    def mutate(raw):
        raw["data"]["labeled"] = {
            "nlu_train": {"format": "synthetic", "num_examples": 50, "seed": 1},
            "nlu_dev": {"format": "synthetic", "num_examples": 20, "seed": 2},
            "pairs": {"format": "xnli_tsv", "path": "dev-en.tsv"},
        }
        stage = {
            "kind": "finetune",
            "models": ["teacher_stage1", "teacher_stage2"],
            "train": "nlu_train",
            "dev": "nlu_dev",
            "test": ["nlu_dev"],
            "training": {"max_steps": 5},
        }
        stage.update(changes)
        raw["stages"]["finetune"] = stage

    return mutate


def test_a_valid_finetune_stage_loads(tiny_recipe_file):
    recipe = load_recipe(tiny_recipe_file(_with_finetune(baseline="teacher_stage1")))
    assert recipe.upstream("finetune") == ["teacher_stage1", "teacher_stage2"]
    before = recipe.stage_hash("finetune")
    changed = load_recipe(
        tiny_recipe_file(_with_finetune()), ["data.labeled.nlu_train.num_examples=60"]
    )
    assert changed.stage_hash("finetune") != before  # labeled data is part of the hash
    assert changed.stage_hash("teacher_stage2") == recipe.stage_hash("teacher_stage2")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train": "nope"}, "labeled set 'nope', which data.labeled does not define"),
        ({"dev": "pairs"}, "holds pair data"),
        ({"baseline": "final"}, "not one of `models`"),
        ({"models": ["tokenizer"]}, "trains no encoder"),
        ({"models": ["teacher_stage1", "teacher_stage1"]}, "lists a model twice"),
        ({"encoder": ["partial"]}, "encoder"),
        ({"lm_corpus": "nope"}, "corpus 'nope'"),
        ({"pooling": "max"}, "pooling"),
    ],
)
def test_finetune_stage_errors(tiny_recipe_file, changes, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(tiny_recipe_file(_with_finetune(**changes)))


def test_finetune_must_come_after_its_models(tiny_recipe_file):
    def mutate(raw):
        _with_finetune()(raw)
        stages = raw["stages"]
        raw["stages"] = {"tokenizer": stages["tokenizer"], "finetune": stages["finetune"]}
        raw["stages"].update({k: v for k, v in stages.items() if k not in raw["stages"]})

    with pytest.raises(ConfigError, match="runs after it"):
        load_recipe(tiny_recipe_file(mutate))


def test_a_fine_tune_only_recipe_needs_no_corpora(tmp_path):
    recipe = tmp_path / "atis.yaml"
    recipe.write_text(
        "name: atis\n"
        "data:\n"
        "  labeled:\n"
        "    train: {format: synthetic, num_examples: 20, seed: 1}\n"
        "    dev: {format: synthetic, num_examples: 20, seed: 2}\n"
        "stages:\n"
        "  finetune:\n"
        "    {kind: finetune, models: [roberta-base], train: train, dev: dev,\n"
        "     training: {epochs: 1}}\n"
    )
    assert load_recipe(recipe).data.corpora == {}


def test_every_accelerate_config_named_in_configs_and_docs_exists():
    import re

    root = Path(__file__).resolve().parents[1]
    texts = [p.read_text() for p in [*root.glob("configs/*.yaml"), *root.glob("docs/*.md")]]
    named = {m for t in texts for m in re.findall(r"configs/accelerate/[\w.-]+\.yaml", t)}
    assert named, "no accelerate config is named anywhere: the check would pass vacuously"
    assert [n for n in sorted(named) if not (root / n).is_file()] == []


def test_the_readme_says_how_to_reach_the_command_after_set_up():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "make install" in readme
    assert "source .venv/bin/activate" in readme and ".venv/bin/distilnlu" in readme


# --------------------------------------------------------------------------- snapshots

# Stage hashes of the tiny recipe (with the fine-tune and distill stages below) measured before
# keep_snapshots and finetune.snapshots existed: a recipe without them must keep its hashes, or
# every finished run would redo all its stages.
PINNED_HASHES = {
    "tokenizer": "91e59ba84297d4fc",
    "teacher_stage1": "ac4bae2a2efae658",
    "teacher_stage2": "481867ffc4c6ab5c",
    "finetune": "a14fb02f3ae905d9",
    "student": "10b1f068a14d216b",
}


def _with_snapshot_stages(raw):
    _with_finetune(test=[])(raw)
    raw["data"]["labeled"].pop("pairs")
    raw["stages"]["student"] = {
        "kind": "distill",
        "model": "tiny",
        "teachers": [{"model": "teacher_stage2"}],
        "data": {"domain": 1.0},
        "training": {"max_steps": 4},
        "eval": {"corpora": ["domain_dev"]},
    }


def test_a_recipe_without_snapshot_keys_keeps_its_stage_hashes(tiny_recipe_file):
    recipe = load_recipe(tiny_recipe_file(_with_snapshot_stages))
    assert {name: recipe.stage_hash(name) for name in recipe.stages} == PINNED_HASHES
    assert recipe.stages["teacher_stage1"].snapshot_steps == []


def test_keep_snapshots_is_hashed_and_sets_evenly_spaced_steps(tiny_recipe_file):
    path = tiny_recipe_file(_with_snapshot_stages)
    keep = load_recipe(path, ["stages.teacher_stage1.keep_snapshots=3"])
    assert keep.stages["teacher_stage1"].snapshot_steps == [2, 5, 8]  # max_steps 8
    assert keep.stage_hash("teacher_stage1") != PINNED_HASHES["teacher_stage1"]
    assert keep.stage_hash("tokenizer") == PINNED_HASHES["tokenizer"]
    every = load_recipe(path, ["stages.student.keep_snapshots=4"])  # distill: one a step
    assert every.stages["student"].snapshot_steps == [1, 2, 3, 4]
    scored = load_recipe(
        path,
        [
            "stages.teacher_stage1.keep_snapshots=2",
            "stages.finetune.snapshots={stages: [teacher_stage1]}",
        ],
    )
    assert scored.stages["finetune"].snapshots.max_steps == 100  # the short default budget
    assert scored.upstream("finetune") == ["teacher_stage1", "teacher_stage2"]
    assert scored.stage_hash("finetune") != keep.stage_hash("finetune")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stages.teacher_stage1.keep_snapshots=9"], r"keep_snapshots=9 is more than training"),
        (["stages.teacher_stage1.keep_snapshots=-1"], r"stages\.teacher_stage1\.keep_snapshots:"),
        (
            ["stages.student.keep_snapshots=2", "stages.student.eval.corpora=[]"],
            r"keep_snapshots needs eval\.corpora",
        ),
        (
            ["stages.finetune.snapshots={stages: [teacher_stage1]}"],
            r"stages\.finetune\.snapshots\.stages\[0\]: stage 'teacher_stage1' keeps no snapshots;"
            r" set stages\.teacher_stage1\.keep_snapshots",
        ),
        (
            ["stages.finetune.snapshots={stages: [nope]}"],
            r"stages\.finetune\.snapshots\.stages\[0\]: 'nope' is not a stage of this recipe",
        ),
        (
            ["stages.finetune.snapshots={stages: [tokenizer]}"],
            r"snapshots\.stages\[0\]: 'tokenizer' trains no masked LM",
        ),
        (
            ["stages.student.keep_snapshots=2", "stages.finetune.snapshots={stages: [student]}"],
            "uses stage 'student', which runs after it",
        ),
        (["stages.finetune.snapshots={stages: []}"], r"snapshots\.stages: List should have"),
        (
            [
                "stages.teacher_stage1.keep_snapshots=2",
                "stages.finetune.snapshots={stages: [teacher_stage1], max_steps: 0}",
            ],
            r"snapshots\.max_steps: Input should be greater than 0",
        ),
        (["stages.finetune.snapshots={stages: [a], steps: 5}"], r"snapshots\.steps: unknown key"),
    ],
)
def test_snapshot_key_errors_name_the_key(tiny_recipe_file, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(tiny_recipe_file(_with_snapshot_stages), overrides)
