"""Command-line shells over the Python API. Each sub-command is one module in `commands/`."""
