"""Tokenizer training, loading, word-start tables and the fertility report (DESIGN.md §2).

distilnlu trains a Unigram tokenizer with SentencePiece's own trainer (the reference
implementation of the algorithm) and loads the learned pieces and scores into a ``tokenizers``
Unigram model wrapped as a :class:`transformers.PreTrainedTokenizerFast`, so ``save_pretrained``
writes a normal ``tokenizer.json`` + ``tokenizer_config.json`` pair that
``AutoTokenizer.from_pretrained`` reads back offline, with no SentencePiece needed at run time.

Why not ``tokenizers``' own ``UnigramTrainer``: with whitespace pre-tokenization it seeds its
candidate pieces from substrings repeated across *distinct* words, so frequent whole words that
are not part of another word (``▁by``, ``▁wake``) never enter the vocabulary and every text is
split into many short pieces.

The pipeline:

* special tokens ``<s> <pad> </s> <unk> <mask>`` with ids 0..4 (RoBERTa's ids for ``<s> <pad> </s>
  <unk>``; ``<mask>`` follows directly instead of sitting at the end of the vocabulary);
* NFKC normalisation (no lower-casing: spoken-form text is lower case already, and written-form
  text keeps its case);
* Metaspace pre-tokenization: whitespace becomes ``▁`` and every word starts with it;
* post-processing ``<s> A </s>`` and, for pairs, ``<s> A </s> </s> B </s>`` (RoBERTa's layout).

Vocabulary size: ``vocab_size`` is an upper bound (SentencePiece's soft limit): a corpus too small
for it yields fewer pieces. ``len(tokenizer)`` is the size that counts. Characters outside the
99.95% character coverage become ``<unk>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distilnlu.data.limits import cut_text
from distilnlu.errors import ConfigError, DataError, ModelError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = [
    "SPECIAL_TOKENS",
    "FertilityRow",
    "check_tokenizer",
    "fertility_report",
    "format_report",
    "load_tokenizer",
    "measure_fertility",
    "train_tokenizer",
    "word_start_table",
]

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
BOS, PAD, EOS, UNK, MASK = SPECIAL_TOKENS
METASPACE = "\u2581"  # "▁", SentencePiece's word-boundary marker
BYTE_LEVEL_SPACE = "\u0120"  # "Ġ", GPT-2 / RoBERTa byte-level BPE's space marker
WORDPIECE_PREFIX = "##"

# Files any tokenizer folder has at least one of (fast tokenizer, config, or a slow vocabulary).
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
)


MAX_SENTENCE_BYTES = 1 << 20
"""SentencePiece's ``max_sentence_length`` here. It drops longer training texts, and fails with
an internal error when that leaves none, so they are cut to :data:`MAX_SENTENCE_CHARS` instead."""
MAX_SENTENCE_CHARS = MAX_SENTENCE_BYTES // 4  # UTF-8 takes at most 4 bytes a character


def _non_empty(texts: Iterable[str], counter: list[int]) -> Iterator[str]:
    """The non-blank texts, counted in ``counter[0]``, cut to SentencePiece's limit when longer
    (counted in ``counter[1]``)."""
    for text in texts:
        if not isinstance(text, str):
            raise DataError(f"tokenizer training texts must be strings, got {type(text).__name__}")
        if text.strip():
            counter[0] += 1
            if len(text) > MAX_SENTENCE_CHARS and len(text.encode()) > MAX_SENTENCE_BYTES:
                counter[1] += 1
                text = cut_text(text, MAX_SENTENCE_CHARS)
            yield text


def _sentencepiece_unigram(
    texts: Iterator[str], vocab_size: int, show_progress: bool
) -> list[tuple[str, float]]:
    """Train SentencePiece Unigram in memory; return (piece, log-prob) with specials at 0..4."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=texts,
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small corpus gives fewer pieces instead of an error
        character_coverage=0.9995,
        normalization_rule_name="nmt_nfkc",
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        bos_piece=BOS,
        pad_piece=PAD,
        eos_piece=EOS,
        unk_piece=UNK,
        user_defined_symbols=[MASK],
        max_sentence_length=MAX_SENTENCE_BYTES,
        # Fixed, not --threads (distilnlu.threads): the pieces depend on the trainer's thread
        # count (1 and 2 threads give different vocabularies), and no stage's output may.
        num_threads=2,
        minloglevel=0 if show_progress else 2,
    )
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(len(processor))]


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    *,
    model_max_length: int = 512,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a Unigram tokenizer on ``texts`` (any iterable; streamed, not held in memory).

    Args:
        texts: training text, one document or sentence per item; blank items are skipped.
        vocab_size: the largest vocabulary to learn, special tokens included (see the module
            docstring: the result may be smaller).
        model_max_length: the longest input (in tokens, special tokens included) the tokenizer
            will report to truncation and padding.
        show_progress: show the trainer's progress bars.

    Raises:
        ConfigError: ``vocab_size`` leaves no room for pieces after the special tokens.
        DataError: ``texts`` holds no non-blank text.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(
            f"vocab_size must be larger than the {len(SPECIAL_TOKENS)} special tokens, "
            f"got {vocab_size}"
        )
    count = [0, 0]
    try:
        pieces = _sentencepiece_unigram(_non_empty(texts, count), vocab_size, show_progress)
    except RuntimeError as exc:
        if count[0] == 0:
            msg = "no text to train the tokenizer on (the corpus is empty or blank)"
            raise DataError(msg) from None
        raise DataError(f"tokenizer training failed: {exc}") from None
    if count[1]:
        logger.warning(
            "warning: tokenizer training: %d text(s) over %s bytes of UTF-8 cut to %s characters"
            " (SentencePiece's max_sentence_length)",
            count[1],
            f"{MAX_SENTENCE_BYTES:,}",
            f"{MAX_SENTENCE_CHARS:,}",
        )
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=SPECIAL_TOKENS.index(UNK)))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    tokenizer.decoder = decoders.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))

    ids = {tok: tokenizer.token_to_id(tok) for tok in SPECIAL_TOKENS}
    if [ids[tok] for tok in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError(f"special tokens did not get ids 0..4: {ids}")  # a tokenizers bug
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} {EOS} $B {EOS}",
        special_tokens=[(BOS, ids[BOS]), (EOS, ids[EOS])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        sep_token=EOS,
        cls_token=BOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=MASK,
        model_max_length=model_max_length,
    )


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer with ``AutoTokenizer.from_pretrained``, and check it is a real one.

    A local folder is read offline (``local_files_only=True``). A string that is not an existing
    path but looks like a hub id (``owner/name``) is fetched from the hub, so a teacher's tokenizer
    can be reused by name.

    ``transformers`` builds a stand-in with only the special tokens when a model folder has lost
    its ``tokenizer.json`` (from ``config.json``'s model type, or a ``tokenizer_config.json`` that
    names a slow class). Such a tokenizer maps every word to ``<unk>`` and the model answers
    confidently and wrongly, so it is refused, as is a tokenizer that does not fit the model in
    the same folder (``config.json``'s ``vocab_size``): more tokens than embedding rows, or fewer
    than half of them (:func:`check_tokenizer`).

    Raises:
        ModelError: the path does not exist, the folder holds no tokenizer, loading fails, or the
            tokenizer has no vocabulary or does not fit the folder's model.
    """
    from transformers import AutoTokenizer

    from distilnlu.modeling.loading import looks_like_hub_id

    if looks_like_hub_id(path):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        except Exception as err:  # network errors, unknown repos
            raise ModelError(
                f"{str(path)!r} is not a local folder, and loading its tokenizer from the "
                f"Hugging Face hub failed: {_first_line(err)}"
            ) from None
        check_tokenizer(tokenizer, str(path))
        return tokenizer
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelError(f"tokenizer path {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ModelError(f"tokenizer path {str(folder)!r} is a file; expected a folder")
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(
            f"{folder}: no tokenizer here (expected tokenizer.json or tokenizer_config.json, "
            "as written by save_pretrained)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        reason = _missing_file(folder) or _first_line(err)
        raise ModelError(f"{folder}: could not load the tokenizer: {reason}") from None
    check_tokenizer(tokenizer, folder, _model_vocab_size(folder))
    return tokenizer


def check_tokenizer(
    tokenizer: PreTrainedTokenizerBase, where: str | Path, model_vocab_size: int | None = None
) -> None:
    """Refuse a tokenizer with no token besides its special ones, or (given the model's
    embedding size) one with more tokens than the model has rows, or fewer than half as many:
    either is not the tokenizer the model was trained with. One-line :class:`ModelError`s."""
    size = len(tokenizer)
    specials = set(tokenizer.all_special_tokens)
    specials |= set(getattr(tokenizer, "added_tokens_encoder", {}) or {})
    if not set(tokenizer.get_vocab()) - specials:
        missing = _missing_file(Path(where)) if Path(where).is_dir() else None
        raise ModelError(
            f"{where}: the tokenizer has no vocabulary, only {size} special tokens"
            f" ({missing or 'tokenizer.json holds no pieces'}); every word would be <unk>"
        )
    if model_vocab_size is None or model_vocab_size // 2 <= size <= model_vocab_size:
        return
    missing = _missing_file(Path(where)) if Path(where).is_dir() else None
    relation = "more" if size > model_vocab_size else "far fewer"
    raise ModelError(
        f"{where}: the tokenizer has {size} tokens, {relation} than the {model_vocab_size}"
        f" embedding rows of the model in config.json, so it is not the model's tokenizer"
        f"{f' ({missing})' if missing else ''}; copy tokenizer.json and tokenizer_config.json"
        " from the folder the model was trained in"
    )


def _model_vocab_size(folder: Path) -> int | None:
    """``vocab_size`` of a model's ``config.json`` in ``folder``; None for a tokenizer-only
    folder, or a config without one (composite models)."""
    import json

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    size = config.get("vocab_size") if isinstance(config, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def _missing_file(folder: Path) -> str | None:
    """``tokenizer.json is missing`` when the folder has neither it nor a slow vocabulary file."""
    present = [name for name in _TOKENIZER_FILES[2:] if (folder / name).is_file()]
    if (folder / "tokenizer.json").is_file() or present:
        return None
    return "tokenizer.json is missing"


def _first_line(err: BaseException) -> str:
    """The first non-blank line of an error: ``transformers`` writes some over several."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _is_wordpiece(tokenizer: PreTrainedTokenizerBase, vocab: dict[str, int]) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return type(backend.model).__name__ == "WordPiece"
    # No fast backend: decide from the vocabulary's markers.
    marked = sum(tok.startswith((METASPACE, BYTE_LEVEL_SPACE)) for tok in vocab)
    continued = sum(tok.startswith(WORDPIECE_PREFIX) for tok in vocab)
    return continued > marked


def word_start_table(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """A ``[len(tokenizer)]`` bool table: True where a token id starts a new word.

    Used for whole-word masking on packed sequences, where ``word_ids()`` is not available: a word
    is a word-start token followed by all tokens up to the next word start.

    * SentencePiece / Metaspace vocabularies (ours, XLM-R): tokens beginning with ``▁``.
    * Byte-level BPE (GPT-2, RoBERTa): tokens beginning with ``Ġ``. Such tokenizers do not mark
      the first word of a text that has no leading space, so callers should also treat the token
      after a special token as a word start.
    * WordPiece (BERT): every token that does not begin with ``##``.
    * Special tokens (``<s>``, ``</s>``, ``<pad>``, ``<mask>``, ...) are True, so words never run
      across sequence boundaries. The unknown token is the exception for ``▁``/``Ġ`` vocabularies:
      there it stands for an unseen character inside a word (the ``▁`` piece before it starts the
      word), so it is False; in WordPiece a whole unknown word becomes ``[UNK]``, so it is True.
    * Other added (non-special) tokens are True: the tokenizer splits them out as units.
    """
    import torch

    vocab = tokenizer.get_vocab()
    size = len(tokenizer)
    table = torch.zeros(size, dtype=torch.bool)
    wordpiece = _is_wordpiece(tokenizer, vocab)
    for token, idx in vocab.items():
        if idx >= size:
            continue
        if wordpiece:
            table[idx] = not token.startswith(WORDPIECE_PREFIX)
        else:
            table[idx] = token.startswith((METASPACE, BYTE_LEVEL_SPACE))
    added = getattr(tokenizer, "added_tokens_encoder", {}) or {}
    for idx in added.values():
        if idx < size:
            table[idx] = True
    for idx in tokenizer.all_special_ids:
        if idx is not None and 0 <= idx < size:
            table[idx] = True
    unk_id = tokenizer.unk_token_id
    if unk_id is not None and 0 <= unk_id < size:
        table[unk_id] = wordpiece
    return table


@dataclass
class FertilityRow:
    """One line of the fertility report: one candidate vocabulary on one language's text."""

    vocab_size: int
    """The vocabulary size asked for."""
    language: str
    words: int
    """Whitespace-separated words in the evaluation text."""
    tokens: int
    """Tokens the tokenizer produced for it (special tokens not counted)."""
    fertility: float
    """tokens / words: 1.0 means one token per word; lower vocabularies give higher values."""
    unk_rate: float
    """Share of the tokens that are the unknown token."""
    trained_vocab_size: int | None = None
    """The size actually learned (smaller than ``vocab_size`` when the corpus is too small)."""


def _measure(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> tuple[int, int, int]:
    texts = [t for t in texts if t.strip()]
    words = sum(len(t.split()) for t in texts)
    if not texts:
        return 0, 0, 0
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    tokens = sum(len(ids) for ids in encoded)
    unknown = sum(ids.count(unk) for ids in encoded) if unk is not None else 0
    return words, tokens, unknown


def fertility_report(
    train_texts: Sequence[str],
    eval_texts: Mapping[str, Sequence[str]],
    vocab_sizes: Sequence[int],
) -> list[FertilityRow]:
    """Train one tokenizer per candidate vocabulary size and measure it on each language.

    Fertility is tokens per whitespace-separated word (languages written without spaces, like
    Japanese or Chinese, get large values: compare them across vocabulary sizes, not with other
    languages). ``unk_rate`` is the share of ``<unk>`` tokens. Rows come in the order of
    ``vocab_sizes``, then of ``eval_texts``.
    """
    if not vocab_sizes:
        raise ConfigError("fertility_report needs at least one vocabulary size")
    if not eval_texts:
        raise DataError("fertility_report needs evaluation text for at least one language")
    rows: list[FertilityRow] = []
    for vocab_size in vocab_sizes:
        tokenizer = train_tokenizer(train_texts, vocab_size)
        rows.extend(measure_fertility(tokenizer, eval_texts, vocab_size))
    return rows


def measure_fertility(
    tokenizer: PreTrainedTokenizerBase, eval_texts: Mapping[str, Sequence[str]], vocab_size: int
) -> list[FertilityRow]:
    """Fertility and unknown rate of one trained tokenizer, one row per language."""
    rows = []
    for language, texts in eval_texts.items():
        words, tokens, unknown = _measure(tokenizer, texts)
        rows.append(
            FertilityRow(
                vocab_size=vocab_size,
                language=language,
                words=words,
                tokens=tokens,
                fertility=tokens / words if words else float("nan"),
                unk_rate=unknown / tokens if tokens else 0.0,
                trained_vocab_size=len(tokenizer),
            )
        )
    return rows


def format_report(rows: list[FertilityRow]) -> str:
    """An aligned plain-text table of fertility rows (one line per row, plus a header)."""
    header = ("vocab", "trained", "language", "words", "tokens", "fertility", "unk %")
    body = [
        (
            str(r.vocab_size),
            str(r.trained_vocab_size) if r.trained_vocab_size is not None else "-",
            r.language,
            str(r.words),
            str(r.tokens),
            f"{r.fertility:.3f}",
            f"{100 * r.unk_rate:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    left = {2}  # the language column is text: left-aligned

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])
