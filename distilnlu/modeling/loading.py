"""Loading masked-LM checkpoints (teachers, or a student to continue from).

Any Hugging Face ``AutoModelForMaskedLM`` checkpoint can be loaded: a local folder written by
``save_pretrained`` (always read with ``local_files_only=True``, so it never touches the network),
or a hub id such as ``FacebookAI/xlm-roberta-base``. A string is a hub id only when it is not an
existing path and looks like one (``name`` or ``owner/name``, no leading ``.``, ``/`` or ``~``);
only then is the network used (and ``HF_HUB_OFFLINE=1`` still applies).

Everything that makes a checkpoint unusable is reported as :class:`~distilnlu.errors.ModelError`
before any weights are read where possible: a missing path, a folder without ``config.json``, a
model type that has no masked-LM head (GPT-2, T5, ...), a checkpoint whose ``architectures`` names a
head other than a masked LM (e.g. ``RobertaForSequenceClassification``: its LM head was never
trained or saved), a folder without weight files, and weights that do not cover the model.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from distilnlu.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["is_masked_lm_folder", "load_masked_lm", "looks_like_hub_id"]

logger = logging.getLogger(__name__)

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def looks_like_hub_id(value: str | Path) -> bool:
    """True for strings of the form ``name`` or ``owner/name`` that are not existing paths."""
    if isinstance(value, Path):
        return False
    if Path(value).expanduser().exists():
        return False
    return bool(_HUB_ID.match(value)) and ".." not in value and not value.endswith((".", "-"))


def damaged_weights(where: str | Path, err: Exception) -> str:
    """The message for a weights file that does not parse (truncated copy, disk fault), naming
    the file when ``where`` is a folder."""
    path = Path(where)
    if path.is_dir():
        from safetensors import safe_open

        for file in sorted(path.glob("*.safetensors")):
            try:
                with safe_open(str(file), framework="pt"):
                    pass
            except (OSError, SafetensorError):
                path = file
                break
    return (
        f"{path}: the weights file is damaged ({err}); restore it, or delete the folder and run"
        " the stage that wrote it again"
    )


def _masked_lm_classes() -> tuple[dict[str, str], set[str]]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    mapping = dict(MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    return mapping, set(mapping.values())


def _check_config_dict(config: dict[str, Any], where: str) -> None:
    """Raise ModelError unless this config describes a masked LM."""
    model_type = config.get("model_type")
    if not model_type:
        raise ModelError(f"{where}: config.json has no 'model_type'; is it a transformers model?")
    mapping, mlm_classes = _masked_lm_classes()
    if model_type not in mapping:
        raise ModelError(
            f"{where}: model type {model_type!r} has no masked-LM head (AutoModelForMaskedLM "
            "does not support it); teachers and students must be masked LMs such as RoBERTa, "
            "XLM-R or BERT"
        )
    architectures = config.get("architectures") or []
    if architectures and not any(
        a.endswith("ForMaskedLM") or a in mlm_classes for a in architectures
    ):
        raise ModelError(
            f"{where}: checkpoint was saved as {', '.join(architectures)}, not as a masked LM, "
            "so it has no trained LM head; use the masked-LM checkpoint it was fine-tuned from"
        )


def _check_local_folder(path: Path) -> dict[str, Any]:
    """Validate a local checkpoint folder; returns its parsed config.json."""
    if not path.exists():
        raise ModelError(f"model path {str(path)!r} does not exist")
    if not path.is_dir():
        raise ModelError(f"model path {str(path)!r} is a file; expected a checkpoint folder")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path}: no config.json; expected a folder written by save_pretrained")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{config_file}: unreadable config ({err})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{config_file}: expected a JSON object")
    _check_config_dict(config, str(path))
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelError(f"{path}: no weights (expected one of {', '.join(WEIGHT_FILES)})")
    return config


def is_masked_lm_folder(path: str | Path) -> bool:
    """True when ``path`` is a local checkpoint folder that :func:`load_masked_lm` accepts.

    Checks config.json (model type, ``architectures``) and that a weight file exists; reads no
    weights.
    """
    try:
        _check_local_folder(Path(path).expanduser())
    except ModelError:
        return False
    return True


def _is_sdpa_unsupported(err: Exception) -> bool:
    text = str(err).lower()
    return "scaled_dot_product_attention" in text or "sdpa" in text


def _from_pretrained(
    source: str, attn_implementation: str | None, **kwargs: Any
) -> tuple[PreTrainedModel, dict[str, Any]]:
    from transformers import AutoModelForMaskedLM

    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    return AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True, **kwargs)


def load_masked_lm(
    path_or_id: str | Path, *, attn_implementation: str | None = "sdpa"
) -> PreTrainedModel:
    """Load a masked LM with ``AutoModelForMaskedLM.from_pretrained``.

    Args:
        path_or_id: a local folder (loaded offline) or a hub id (see the module docstring).
        attn_implementation: attention kernel to ask for; when the architecture does not support
            it (e.g. DeBERTa-v2 has no SDPA path), the model is loaded with the default (eager).

    Returns:
        The model, in eval mode as ``from_pretrained`` leaves it, with the checkpoint's dtype.

    Raises:
        ModelError: the path or checkpoint is unusable; the message says why.
    """
    kwargs: dict[str, Any] = {}
    if looks_like_hub_id(path_or_id):
        source = str(path_or_id)
        where = f"hub model {source!r}"
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(source)
        except Exception as err:  # network errors, unknown repos, gated repos, bad configs
            raise ModelError(
                f"{source!r} is not a local folder, and loading it from the Hugging Face hub "
                f"failed: {err}"
            ) from None
        _check_config_dict(config.to_dict(), where)
    else:
        path = Path(path_or_id).expanduser()
        _check_local_folder(path)
        source = str(path)
        where = str(path)
        kwargs["local_files_only"] = True

    try:
        try:
            model, info = _from_pretrained(source, attn_implementation, **kwargs)
        except ValueError as err:
            if attn_implementation is None or not _is_sdpa_unsupported(err):
                raise
            logger.info(
                "%s: %s attention is not supported by this architecture; using the default",
                where,
                attn_implementation,
            )
            model, info = _from_pretrained(source, None, **kwargs)
    except ModelError:
        raise
    except SafetensorError as err:
        raise ModelError(damaged_weights(where, err)) from None
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise ModelError(f"{where}: could not load the masked LM: {err}") from None

    missing = sorted(info.get("missing_keys") or [])
    mismatched = info.get("mismatched_keys") or []
    # A missing bias (some older BERT checkpoints lack the decoder bias) is initialised to zero:
    # harmless. A missing weight means a randomly initialised part of the model: an error.
    missing_biases = [k for k in missing if k.endswith(".bias")]
    if missing_biases:
        logger.warning(
            "%s: bias(es) not in the checkpoint, freshly initialised: %s", where, missing_biases
        )
    missing = [k for k in missing if not k.endswith(".bias")]
    if missing or mismatched:
        details = []
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            details.append(f"{len(missing)} missing weight(s): {shown}")
        if mismatched:
            details.append(f"{len(mismatched)} weight(s) with mismatched shapes")
        raise ModelError(
            f"{where}: the checkpoint's weights do not cover the masked-LM model "
            f"({'; '.join(details)}); was it saved from a different head?"
        )
    return model
