"""Training: protocols (which sessions train/test), batching, the training loop and checkpoints."""
