"""Export a trained model for runtimes without PyTorch (ONNX, for onnxruntime)."""
