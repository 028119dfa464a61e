"""Damaged run folders and bad inputs: one `error:` line and exit 2, or a documented recovery
(an older checkpoint, a rebuilt manifest, the stage run again); never a traceback."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distilnlu.training import checkpoint
from tests.reliability import harness

RUN = Path("runs") / harness.NAME


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def copy_of(reference: Path, work: Path, without: str | None = None) -> Path:
    """The reference run copied to ``work`` (without stage ``without`` and what follows)."""
    if without:
        return harness.prepare(reference, work, without)
    shutil.copytree(reference / RUN, work / RUN)
    return harness.write_recipe(work)


def killed_with_two_checkpoints(reference: Path, work: Path) -> tuple[Path, Path]:
    """The teacher stage killed at step 11: checkpoints of steps 8 (newest) and 4 (old)."""
    recipe = harness.prepare(reference, work, "teacher")
    assert harness.run(recipe, "teacher", "mid_step@11").returncode < 0
    stage = work / RUN / "teacher"
    assert [checkpoint.read_checkpoint(p)[1]["step"] for p in checkpoint.candidates(stage)] == [
        8,
        4,
    ]
    return recipe, stage


def truncate(path: Path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_damaged_newest_checkpoint_falls_back_to_the_older_one(reference, tmp_path):
    recipe, stage = killed_with_two_checkpoints(reference, tmp_path)
    truncate(stage / "checkpoint" / checkpoint.TENSORS)
    again = harness.run(recipe, "teacher")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "damaged" in again.stderr and "trying the checkpoint before it" in again.stderr
    assert "resuming from the checkpoint at step 4" in again.stdout + again.stderr
    assert harness.compare(reference / RUN / "teacher", stage) == []


def test_no_readable_checkpoint_is_one_error_and_nothing_is_deleted(reference, tmp_path):
    recipe, stage = killed_with_two_checkpoints(reference, tmp_path)
    truncate(stage / "checkpoint" / checkpoint.TENSORS)
    (stage / "checkpoint.old" / checkpoint.TRAINER_STATE).write_text("{not json")
    line = one_error_line(harness.run(recipe, "teacher"), "no readable checkpoint", "remove")
    assert str(stage / "checkpoint") in line
    assert (stage / "checkpoint").is_dir() and (stage / "checkpoint.old").is_dir()


def test_a_planted_pickle_checkpoint_never_runs(reference, tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    recipe = harness.prepare(reference, tmp_path, "teacher")
    stage = tmp_path / RUN / "teacher"
    planted = stage / "checkpoint"
    planted.mkdir(parents=True)
    (planted / "state.pt").write_bytes(pickle.dumps({"model": Payload()}))
    (planted / checkpoint.TRAINER_STATE).write_text("{}")
    (planted / checkpoint.COMPLETE).write_text("ok\n")
    shutil.copy(reference / RUN / "teacher" / ".stage_hash", stage / ".stage_hash")
    one_error_line(harness.run(recipe, "teacher"), "pickle format")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "content", ["{garbage", "[]", '{"stages": [1, 2]}', '{"stages": {"x": 1}}']
)
def test_a_damaged_manifest_is_rebuilt_from_the_stage_folders(reference, tmp_path, content):
    recipe = copy_of(reference, tmp_path)
    (tmp_path / RUN / "manifest.json").write_text(content)
    again = harness.run(recipe, "finetune")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "manifest.json is unreadable" in again.stderr
    assert again.stdout.count("up to date, skipped") == len(harness.STAGES)
    manifest = json.loads((tmp_path / RUN / "manifest.json").read_text())
    assert list(manifest["stages"]) == list(harness.STAGES)


def test_a_damaged_metrics_json_runs_the_stage_again(reference, tmp_path):
    recipe = copy_of(reference, tmp_path)
    truncate(tmp_path / RUN / "finetune" / "metrics.json", 10)
    again = harness.run(recipe, "finetune")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "[finetune] its metrics.json is damaged: running the stage again" in again.stdout
    assert json.loads((tmp_path / RUN / "finetune" / "metrics.json").read_text())["models"]


@pytest.mark.parametrize("weights", ["model.safetensors", "tokenizer.json"])
def test_a_damaged_upstream_model_is_one_error(reference, tmp_path, weights):
    recipe = copy_of(reference, tmp_path, without="finetune")
    truncate(tmp_path / RUN / "student" / weights)
    one_error_line(harness.run(recipe, "finetune"), "student")


@pytest.mark.parametrize("file", ["heads.safetensors", "model.safetensors"])
def test_predict_with_damaged_weights_is_one_error(reference, tmp_path, file):
    folder = tmp_path / "model"
    shutil.copytree(reference / RUN / "finetune" / "student", folder)
    truncate(folder / file)
    proc = subprocess.run(
        [sys.executable, "-m", "distilnlu", "predict", str(folder), "play jazz"],
        capture_output=True,
        text=True,
    )
    one_error_line(proc, "damaged", file)


def test_a_typo_in_a_reference_fails_before_anything_is_deleted(reference, tmp_path):
    recipe = copy_of(reference, tmp_path)
    env_run = subprocess.run(
        [
            sys.executable,
            "-m",
            "distilnlu",
            "run",
            str(recipe),
            "stages.teacher.tokenizer=tokenizr",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    one_error_line(env_run, "stages.teacher.tokenizer='tokenizr'", "not a stage of this recipe")
    assert (tmp_path / RUN / "teacher" / "metrics.json").is_file()  # finished work kept
    assert harness.compare(reference / RUN / "teacher", tmp_path / RUN / "teacher") == []


def test_an_unknown_stage_reference_fails_before_any_stage_runs(tmp_path):
    recipe = harness.write_recipe(tmp_path)
    text = recipe.read_text().replace("- student\n", "- studnt\n")
    recipe.write_text(text)
    proc = harness.run(recipe, "finetune")
    one_error_line(proc, "stages.finetune.models[0]='studnt'")
    assert not (tmp_path / RUN / "tokenizer").exists()


def test_an_argument_that_is_not_utf8_is_one_error(tmp_path):
    recipe = harness.write_recipe(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "distilnlu", "run", str(recipe), b"name=\xff\xfe"],
        capture_output=True,
        text=True,
    )
    one_error_line(proc, "argument 3 (name=", "not valid UTF-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_run_folder_is_one_error(reference, tmp_path):
    recipe = copy_of(reference, tmp_path, without="finetune")
    (tmp_path / RUN).chmod(0o555)
    try:
        one_error_line(harness.run(recipe, "finetune"), "Permission denied")
    finally:
        (tmp_path / RUN).chmod(0o755)


def test_os_errors_reach_the_user_as_one_line(monkeypatch, capsys, tmp_path):
    """Read-only folders and full disks (simulated: root ignores permissions and the test has no
    small disk to fill): the CLI names the file and the fix."""
    from distilnlu import cli

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "runs"))

    monkeypatch.setattr(cli, "app", refuse)
    monkeypatch.setattr(sys, "argv", ["distilnlu", "run", "x.yaml"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: Permission denied: {tmp_path / 'runs'}; check the folder's permissions (or"
        " choose another output_dir)"
    )


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(monkeypatch, tmp_path, capsys):
    """The second checkpoint write fails with ENOSPC: one error line naming the folder, and the
    first checkpoint is still complete, so the next run resumes from it."""
    import distilnlu.training.checkpoint as ckpt
    from distilnlu import cli

    recipe = harness.write_recipe(tmp_path)
    raw = yaml.safe_load(recipe.read_text())
    raw["stages"] = {k: raw["stages"][k] for k in ("tokenizer", "teacher")}
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    real, calls = ckpt.save_file, []

    def fill_up(tensors, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", fill_up)
    monkeypatch.setattr(sys, "argv", ["distilnlu", "run", str(recipe)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    assert "run again to resume from the last checkpoint" in errors[0]
    stage = tmp_path / RUN / "teacher"
    assert harness.checkpoint_step(stage) == 4
