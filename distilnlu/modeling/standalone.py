"""Making a fine-tuned model folder usable without distilnlu (docs/deployment.md, "Using a model
without distilnlu").

:func:`write_standalone` copies :mod:`distilnlu.modeling.modeling_nlu` and
:mod:`distilnlu.modeling.nlu_parse` verbatim into the folder and adds to its ``config.json``

- ``auto_map`` ``{"AutoModel": "modeling_nlu.DistilNLUModel"}``: with
  ``trust_remote_code=True``, ``AutoModel`` builds the joint model (encoder + heads) from the
  copied file; without it, ``AutoModel`` still builds the plain encoder, as before (transformers
  prefers its own class for the config's ``model_type`` unless remote code is trusted), which is
  how distilnlu itself loads the encoder;
- ``distilnlu``: task, pooling and the head sizes, which the joint model needs to build its heads
  before reading them from ``heads.safetensors``.

The files are copies, not imports, so that the folder works where distilnlu is not installed;
tests hold the copies equal to these modules and their answers equal to ``distilnlu predict``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from distilnlu.data.labeled import LABELS_FILE
from distilnlu.rundir import atomic_path, atomic_write

MODULE_DIR = Path(__file__).resolve().parent
MODEL_FILE = "modeling_nlu.py"
PARSE_FILE = "nlu_parse.py"
STANDALONE_FILES = (MODEL_FILE, PARSE_FILE)
MODEL_CLASS = "DistilNLUModel"
AUTO_MAP = {"AutoModel": f"{MODEL_FILE.removesuffix('.py')}.{MODEL_CLASS}"}
CONFIG_KEY = "distilnlu"


def write_standalone(folder: str | Path) -> None:
    """Copy the standalone files into a fine-tuned folder and point its ``config.json`` at them.

    Reads ``labels.json`` and ``nlu_config.json`` (written by ``EncoderClassifier.
    save_pretrained`` just before), so it also upgrades a folder saved before these files
    existed. Every write is atomic; running it twice changes nothing.
    """
    folder = Path(folder)
    settings = json.loads((folder / "nlu_config.json").read_text(encoding="utf-8"))
    labels = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
    for name in STANDALONE_FILES:
        with atomic_path(folder / name) as tmp:
            shutil.copyfile(MODULE_DIR / name, tmp)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = {**config.get("auto_map", {}), **AUTO_MAP}
    config[CONFIG_KEY] = {
        "task": settings["task"],
        "pooling": settings.get("pooling", "mean"),
        "num_intents": len(labels["intents"]),
        "num_slot_tags": len(labels["slot_tags"]),
    }
    # transformers' own layout for config.json (sorted keys, 2 spaces), so the file stays its.
    atomic_write(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
