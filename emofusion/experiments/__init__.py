"""Experiments: train + evaluate over protocols, folds and seeds, and write the Table-1 report."""
