from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import harness


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness recipe run straight through once (tests copy it, never change it)."""
    root = tmp_path_factory.mktemp("reference")
    done = harness.run(harness.write_recipe(root), "finetune")
    assert done.returncode == 0, done.stderr[-3000:]
    return root
