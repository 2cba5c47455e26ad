"""One module per `emofusion` sub-command; each defines `register(subparsers)`.

A module's `register` adds its parser and sets ``func`` (called with the parsed args, returns the
exit code). `emofusion.cli.main` discovers the modules, so adding a command is adding a file.
"""
