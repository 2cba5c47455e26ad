"""Training: records -> model inputs (encode), the training loop and checkpoints (trainer)."""
