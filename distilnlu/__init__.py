"""distilnlu: pretrain a masked-LM teacher and distill it into a small NLU student."""

__version__ = "0.1.0"
