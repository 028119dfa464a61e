"""Training: the loop, objectives, losses and checkpoints."""
