"""The ``tokenizer`` stage: train a Unigram tokenizer (or reuse one) and report its fertility."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from distilnlu.config import Recipe, TokenizerStage
from distilnlu.data.corpus import apply_spoken_share, first_documents, heldout_texts
from distilnlu.distributed import barrier, is_main
from distilnlu.errors import ConfigError
from distilnlu.rundir import TokenizerMetrics
from distilnlu.stages.common import write_stage_files
from distilnlu.tokenization import (
    fertility_report,
    format_report,
    load_tokenizer,
    measure_fertility,
    train_tokenizer,
)


def training_texts(recipe: Recipe, stage: TokenizerStage) -> list[str]:
    """Documents from each corpus (equal share of ``max_texts``), with its spoken-form share."""
    per_corpus = max(1, stage.max_texts // max(1, len(stage.corpora)))
    texts: list[str] = []
    for i, name in enumerate(stage.corpora):
        corpus = recipe.data.corpora[name]
        docs = first_documents(corpus, recipe.data, per_corpus)
        texts.extend(d.text for d in apply_spoken_share(docs, corpus.spoken_share, recipe.seed + i))
    return texts


def report_texts(recipe: Recipe, stage: TokenizerStage, limit: int = 2000) -> dict[str, list[str]]:
    """Held-out texts per language for the fertility report."""
    by_lang: dict[str, list[str]] = defaultdict(list)
    for name in stage.report_corpora:
        for text, lang in heldout_texts(recipe.data.corpora[name], recipe.data, limit, recipe.seed):
            by_lang[lang].append(text)
    return dict(by_lang)


def run(recipe: Recipe, name: str, out_dir: Path, stage_hash: str) -> TokenizerMetrics:
    stage = recipe.stages[name]
    assert isinstance(stage, TokenizerStage)
    out_dir.mkdir(parents=True, exist_ok=True)
    if stage.pretrained:
        tokenizer = load_tokenizer(stage.pretrained)
        texts: list[str] = []
    else:
        texts = training_texts(recipe, stage)
        tokenizer = train_tokenizer(texts, stage.vocab_size, show_progress=False)
    metrics: TokenizerMetrics = {
        "stage": name,
        "vocab_size": len(tokenizer),
        "trained_on": len(texts),
    }
    if stage.report_corpora and texts:
        rows = measure_fertility(tokenizer, report_texts(recipe, stage), stage.vocab_size)
        metrics["fertility"] = [row.__dict__ for row in rows]
    if is_main():  # every process trained the same tokenizer; one writes it
        tokenizer.save_pretrained(out_dir)
        write_stage_files(out_dir, recipe, metrics)
    barrier()
    return metrics


def report(recipe: Recipe, name: str, vocab_sizes: list[int]) -> str:
    """Fertility and unknown rate per language for candidate vocabulary sizes."""
    stage = recipe.stages[name]
    if not isinstance(stage, TokenizerStage):
        raise ConfigError(f"stage '{name}' is not a tokenizer stage")
    sizes = vocab_sizes or stage.report_vocab_sizes or [stage.vocab_size]
    eval_texts = report_texts(recipe, stage)
    if not eval_texts:
        raise ConfigError(f"stage '{name}' has no report_corpora to measure fertility on")
    rows = fertility_report(training_texts(recipe, stage), eval_texts, sizes)
    return format_report(rows)
