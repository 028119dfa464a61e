"""Evaluation: language-model metrics (perplexity, mask filling)."""
