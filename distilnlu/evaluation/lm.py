"""Language-model metrics (DESIGN.md §6): MLM perplexity and mask-filling accuracy.

Pure functions shared by training-time evaluation and the ``evaluate`` command. Both are seeded and
depend only on the tokenizer, the texts and the seed for *what* is masked, so two checkpoints that
share a tokenizer are scored on exactly the same positions:

- **MLM perplexity** = ``exp(mean cross-entropy over masked tokens)``. Each text is tokenized on its
  own (``<s> ... </s>``, truncated to ``max_length``) and masked with :func:`mask_tokens` (80/10/10
  by default) from one ``torch.Generator`` seeded with ``seed``, text by text in input order, so the
  masks do not depend on ``batch_size``.
- **Mask-filling accuracy**: in each text one whole content word is chosen with
  ``random.Random(seed + index)`` among the words that are alphabetic (after stripping surrounding
  punctuation), at least two characters long, not in the language's stop list and fully inside the
  truncated encoding; all its sub-tokens become ``<mask>``; the text counts as correct when the
  top-1 prediction at every one of them is the original token. Texts without an eligible word are
  skipped. No part-of-speech filter is applied (so results do not depend on optional packages).

A "word" is a whitespace-separated chunk of the raw text, which suits languages written with
spaces; for Chinese or Japanese a chunk can be a whole phrase.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from distilnlu.data.masking import (
    IGNORE_INDEX,
    MaskingConfig,
    mask_tokens,
    random_candidates,
    special_tokens_mask,
)
from distilnlu.errors import ModelError
from distilnlu.modeling.masked_lm import masked_lm_logits

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Small, hand-made stop lists (function words and the most common auxiliaries). Lower case.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _words(
        """
        a about above after again against all am an and any are as at be because been before
        being below between both but by can could did do does doing down during each few for from
        further had has have having he her here hers herself him himself his how i if in into is
        it its itself just me more most my myself no nor not now of off on once only or other our
        ours ourselves out over own same she should so some such than that the their theirs them
        themselves then there these they this those through to too under until up very was we
        were what when where which while who whom why will with would you your yours yourself
        yourselves also may might must shall us let get got go goes going make made one two
        """
    ),
    "de": _words(
        """
        aber alle allem allen aller alles als also am an ander andere anderen auch auf aus bei
        bin bis bist da damit dann das dass dein deine dem den denn der des dich die dies diese
        diesem diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines er es
        euch euer für hab habe haben hat hatte hier hin ich ihm ihn ihnen ihr ihre im in ist ja
        jede jedem jeden jeder jedes jetzt kann kein keine können mach machen man mein meine mich
        mir mit muss nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so
        soll über um und uns unser unter viel vom von vor war waren warum was weil weiter welche
        wenn wer werde werden wie wieder will wir wird wo wollen zu zum zur
        """
    ),
    "es": _words(
        """
        a al algo algunos ante antes como con contra cual cuando de del desde donde durante e el
        ella ellas ellos en entre era eran es esa esas ese eso esos esta estaba estado estas este
        esto estos estoy fue fueron ha haber habia han hasta hay la las le les lo los mas me mi
        mis mucho muy nada ni no nos nosotros o os otra otro para pero poco por porque que quien
        se sea ser si sin sobre somos son su sus también te tengo tiene todo todos tu tus un una
        uno unos usted ya yo él qué más mí tú sí está están
        """
    ),
    "fr": _words(
        """
        a ai alors au aussi aux avec avez avoir c ce cela ces cet cette comme dans de des du elle
        elles en est et été être eu fait il ils je la le les leur leurs lui ma mais me même mes
        moi mon ne nos notre nous on ont ou où par pas pour qu que quel quelle qui sa sans se ses
        si son sont sur ta te tes toi ton tous tout très tu un une vos votre vous y à ça était
        suis es sommes êtes avait fais faire peut plus bien
        """
    ),
}


@dataclass
class _FillExample:
    """One mask-filling item: the chosen word and the token positions that spell it."""

    index: int  # position of the text in the input sequence
    word: str
    span: tuple[int, int]  # character span of the word in the text
    input_ids: list[int]  # original token ids of the whole text
    positions: list[int]  # token indices of the word's sub-tokens (all masked)


# ---------------------------------------------------------------------------------------------
# helpers


def _model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` plus inference mode; the training flag is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _mask_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if mask_id is None:
        raise ModelError("the tokenizer has no mask token; masked-LM metrics need one")
    return int(mask_id)


def _pad_token_id(model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> int:
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(getattr(model, "config", None), "pad_token_id", None)
    return int(pad_id) if pad_id is not None else 0


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    return sorted({int(i) for i in tokenizer.all_special_ids if i is not None})


def _vocab_size(model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> int:
    size = len(tokenizer)
    model_size = getattr(getattr(model, "config", None), "vocab_size", None)
    return min(size, int(model_size)) if model_size else size


def _check_sizes(max_length: int, batch_size: int) -> None:
    if max_length < 3:
        raise ValueError(f"max_length must be at least 3, got {max_length}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


def _length_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (longest first) to limit padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def _attention_mask(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = 1
    return out


def _word_starts(word_ids: Sequence[int | None]) -> list[bool]:
    starts, previous = [], None
    for word_id in word_ids:
        starts.append(word_id is not None and word_id != previous)
        previous = word_id
    return starts


def _stop_words(language: str) -> frozenset[str]:
    code = re.split(r"[-_]", language.strip().lower())[0]
    if code not in STOP_WORDS:
        warnings.warn(
            f"no stop-word list for language {language!r}; mask filling may pick function words",
            stacklevel=3,
        )
        return frozenset()
    return STOP_WORDS[code]


# ---------------------------------------------------------------------------------------------
# perplexity


def lm_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    batch_size: int = 32,
    seed: int = 1234,
    masking: MaskingConfig | None = None,
) -> dict[str, float]:
    """MLM loss and perplexity on ``texts`` with a fixed, seeded mask.

    Returns ``{"loss": mean CE over masked tokens, "perplexity": exp(loss), "masked_tokens": n}``;
    loss and perplexity are NaN when no token was masked (e.g. no texts).
    """
    _check_sizes(max_length, batch_size)
    masking = masking or MaskingConfig()
    mask_id = _mask_token_id(tokenizer)
    specials = _special_ids(tokenizer)
    candidates = random_candidates(_vocab_size(model, tokenizer), specials)
    pad_id = _pad_token_id(model, tokenizer)

    texts = list(texts)
    encoded = tokenizer(texts, truncation=True, max_length=max_length) if texts else None
    generator = torch.Generator().manual_seed(seed)
    inputs: list[list[int]] = []
    labels: list[list[int]] = []
    for i in range(len(texts)):
        assert encoded is not None  # texts is not empty
        ids = torch.tensor([encoded["input_ids"][i]], dtype=torch.long)
        word_start = None
        if masking.whole_word:
            word_start = torch.tensor([_word_starts(encoded.word_ids(i))], dtype=torch.bool)
        masked, label = mask_tokens(
            ids,
            maskable=~special_tokens_mask(ids, specials),
            mask_token_id=mask_id,
            random_token_ids=candidates,
            config=masking,
            generator=generator,
            word_start=word_start,
        )
        inputs.append(masked[0].tolist())
        labels.append(label[0].tolist())

    device = _model_device(model)
    total, count = 0.0, 0  # summed on the host in float64 (some accelerators lack it)
    with _eval_mode(model):
        for batch in _length_batches([len(r) for r in inputs], batch_size):
            batch_labels = _pad([labels[i] for i in batch], IGNORE_INDEX).to(device)
            positions = batch_labels != IGNORE_INDEX
            n = int(positions.sum())
            if n == 0:
                continue
            rows = [inputs[i] for i in batch]
            input_ids = _pad(rows, pad_id).to(device)
            attention_mask = _attention_mask(rows).to(device)
            logits = masked_lm_logits(model, input_ids, attention_mask, positions)
            batch_loss = F.cross_entropy(logits.float(), batch_labels[positions], reduction="sum")
            total += float(batch_loss)
            count += n
    loss = total / count if count else math.nan
    perplexity = math.exp(loss) if count and loss < 700 else (math.inf if count else math.nan)
    return {"loss": loss, "perplexity": perplexity, "masked_tokens": count}


# ---------------------------------------------------------------------------------------------
# mask filling


def _candidate_words(text: str, stop: frozenset[str]) -> list[tuple[str, int, int]]:
    """Content words of ``text`` as ``(word, start, end)``: whitespace chunks stripped of
    surrounding non-alphanumeric characters, alphabetic, >= 2 characters, not stop words."""
    words = []
    for match in re.finditer(r"\S+", text):
        start, end = match.span()
        while start < end and not text[start].isalnum():
            start += 1
        while end > start and not text[end - 1].isalnum():
            end -= 1
        word = text[start:end]
        if len(word) >= 2 and word.isalpha() and word.casefold() not in stop:
            words.append((word, start, end))
    return words


def _word_tokens(
    text: str,
    span: tuple[int, int],
    input_ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None] | None,
    specials: frozenset[int],
) -> list[int] | None:
    """Token indices that spell the word at ``span``, or None if the tokens do not line up with
    the word (a token also covers other characters, the word was truncated, or it has a special
    or unknown piece).

    A token belongs to the word when its character span (leading whitespace removed) overlaps the
    word. A whitespace-only piece right before the word from the same pre-tokenizer word (the
    ``▁`` of SentencePiece-style tokenizers) is part of it too.
    """
    word_start, word_end = span
    found: list[int] = []
    covered_start, covered_end = None, None
    for j, (s, e) in enumerate(offsets):
        if input_ids[j] in specials or e <= s:
            continue
        while s < e and text[s].isspace():
            s += 1
        if s >= e or e <= word_start or s >= word_end:
            continue
        if s < word_start or e > word_end:
            return None  # the token runs past the word's edges
        found.append(j)
        covered_start = s if covered_start is None else min(covered_start, s)
        covered_end = e if covered_end is None else max(covered_end, e)
    if not found or covered_start != word_start or covered_end != word_end:
        return None
    if found != list(range(found[0], found[-1] + 1)):
        return None
    first = found[0]
    if word_ids is not None and first > 0 and word_ids[first] is not None:
        s, e = offsets[first - 1]
        prev_text = text[s:e] if e > s else ""
        if (
            word_ids[first - 1] == word_ids[first]
            and input_ids[first - 1] not in specials
            and prev_text.strip() == ""
        ):
            found.insert(0, first - 1)
    return found


def _mask_fill_examples(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    language: str = "en",
    max_length: int = 128,
    seed: int = 1234,
) -> list[_FillExample]:
    """Choose the masked word of every text (texts without an eligible word are left out)."""
    if not getattr(tokenizer, "is_fast", True):
        raise ModelError("mask-filling accuracy needs a fast tokenizer (character offsets)")
    stop = _stop_words(language)
    specials = frozenset(_special_ids(tokenizer))
    texts = list(texts)
    if not texts:
        return []
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    examples = []
    for i, text in enumerate(texts):
        input_ids = encoded["input_ids"][i]
        offsets = encoded["offset_mapping"][i]
        try:
            word_ids = encoded.word_ids(i)
        except (ValueError, AttributeError):
            word_ids = None
        eligible = []
        for word, start, end in _candidate_words(text, stop):
            positions = _word_tokens(text, (start, end), input_ids, offsets, word_ids, specials)
            if positions is not None:
                eligible.append((word, (start, end), positions))
        if not eligible:
            continue
        word, span, positions = random.Random(seed + i).choice(eligible)
        examples.append(_FillExample(i, word, span, list(input_ids), positions))
    return examples


def mask_filling_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    language: str = "en",
    max_length: int = 128,
    batch_size: int = 32,
    seed: int = 1234,
) -> dict[str, float]:
    """Share of texts whose masked content word is predicted exactly (top-1 at every sub-token).

    Returns ``{"mask_fill_accuracy": float, "mask_fill_n": int}`` where ``mask_fill_n`` is the
    number of texts scored; the accuracy is NaN when no text had an eligible word.
    """
    _check_sizes(max_length, batch_size)
    mask_id = _mask_token_id(tokenizer)
    pad_id = _pad_token_id(model, tokenizer)
    examples = _mask_fill_examples(
        tokenizer, texts, language=language, max_length=max_length, seed=seed
    )
    device = _model_device(model)
    correct = 0
    with _eval_mode(model):
        for batch in _length_batches([len(e.input_ids) for e in examples], batch_size):
            rows, targets, positions_rows = [], [], []
            for k in batch:
                example = examples[k]
                masked = list(example.input_ids)
                for j in example.positions:
                    masked[j] = mask_id
                rows.append(masked)
                flags = [False] * len(masked)
                for j in example.positions:
                    flags[j] = True
                positions_rows.append(flags)
                targets.append(example.input_ids)
            input_ids = _pad(rows, pad_id).to(device)
            attention_mask = _attention_mask(rows).to(device)
            positions = _pad([[int(f) for f in r] for r in positions_rows], 0).bool().to(device)
            target = _pad(targets, pad_id).to(device)[positions]
            logits = masked_lm_logits(model, input_ids, attention_mask, positions)
            hit = (logits.argmax(dim=-1) == target).tolist()
            # Rows come back in row-major order: split the hits per text.
            cursor = 0
            for k in batch:
                size = len(examples[k].positions)
                correct += all(hit[cursor : cursor + size])
                cursor += size
    n = len(examples)
    return {"mask_fill_accuracy": correct / n if n else math.nan, "mask_fill_n": n}


def evaluate_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    language: str = "en",
    max_length: int = 128,
    batch_size: int = 32,
    seed: int = 1234,
    max_texts: int | None = None,
) -> dict[str, float]:
    """:func:`lm_perplexity` and :func:`mask_filling_accuracy` on the first ``max_texts`` texts."""
    texts = list(texts)
    if max_texts is not None:
        texts = texts[:max_texts]
    metrics: dict[str, float] = {}
    metrics.update(
        lm_perplexity(
            model, tokenizer, texts, max_length=max_length, batch_size=batch_size, seed=seed
        )
    )
    metrics.update(
        mask_filling_accuracy(
            model,
            tokenizer,
            texts,
            language=language,
            max_length=max_length,
            batch_size=batch_size,
            seed=seed,
        )
    )
    return metrics
