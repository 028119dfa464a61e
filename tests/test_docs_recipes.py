"""The recipes of docs/own-recipe.md are valid recipes, so the page cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distilnlu.config import FinetuneStage, load_recipe

PAGE = Path(__file__).resolve().parents[1] / "docs" / "own-recipe.md"


def recipes() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text("utf-8"), flags=re.S)
    return [b for b in blocks if b.startswith("name:")]


def test_the_page_has_both_recipes() -> None:
    assert [re.match(r"name: (\S+)", r).group(1) for r in recipes()] == ["atis", "mydata"]


@pytest.mark.parametrize("index", [0, 1])
def test_each_recipe_loads(index: int, tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(recipes()[index], encoding="utf-8")
    recipe = load_recipe(path, [])
    assert any(isinstance(s, FinetuneStage) for s in recipe.stages.values())
