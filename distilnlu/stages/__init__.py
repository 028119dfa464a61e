"""One module per stage kind; each exposes ``run(recipe, name, out_dir, stage_hash)``.

``common`` holds what several stage kinds share (references, fresh models, held-out LM scoring,
the masked-LM training run, writing the stage folder); the dispatch table from config class to
runner is ``distilnlu.pipeline.RUNNERS``.
"""
