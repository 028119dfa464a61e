"""The files a source path stands for: a file, a directory or a glob pattern."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from distilnlu.data.source_config import HF_PREFIX, SYNTHETIC_PREFIX
from distilnlu.errors import DataError

__all__ = ["resolve_paths"]


def resolve_paths(path: str, root: Path | str | None = None) -> list[Path]:
    """The files a source path stands for, in sorted order.

    ``path`` is a file, a directory (all files under it, recursively, hidden ones skipped) or a
    glob pattern (``**`` recurses; directories it matches are expanded). A relative path is taken
    relative to ``root`` when given, else to the working directory. Raises DataError naming the
    path when nothing matches.
    """
    if path.startswith((HF_PREFIX, SYNTHETIC_PREFIX)):
        raise DataError(f"source {path!r} is not a file path")
    expanded = os.path.expanduser(path)
    base = Path(root).expanduser() if root is not None else None
    where = (
        f" (relative to data.root {str(base)!r})" if base and not os.path.isabs(expanded) else ""
    )
    if glob.has_magic(expanded):
        pattern = expanded
        if base is not None and not os.path.isabs(expanded):
            pattern = os.path.join(glob.escape(str(base)), expanded)
        files: set[Path] = set()
        for match in glob.glob(pattern, recursive=True):
            candidate = Path(match)
            if candidate.is_dir():
                files.update(_walk(candidate))
            elif candidate.is_file():
                files.add(candidate)
        if not files:
            raise DataError(f"no files match the pattern {path!r}{where}")
        return sorted(files)
    target = base / expanded if base is not None else Path(expanded)
    if target.is_file():
        return [target]
    if target.is_dir():
        found = _walk(target)
        if not found:
            raise DataError(f"directory {path!r}{where} contains no files")
        return found
    raise DataError(f"no such file or directory: {path!r}{where}")


def _walk(directory: Path) -> list[Path]:
    files = []
    for candidate in directory.rglob("*"):
        relative = candidate.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if candidate.is_file():
            files.append(candidate)
    return sorted(files)
