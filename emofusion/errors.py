"""Errors raised for bad input. Every message names the offending file, row or value."""


class EmofusionError(Exception):
    """Base class: anything the user can fix by changing their input."""


class AudioError(EmofusionError):
    """Audio that cannot be decoded, is empty, silent, too short or too long."""


class ManifestError(EmofusionError):
    """A CSV manifest with a missing column, bad row, duplicate id or missing file."""


class CorpusError(EmofusionError):
    """A corpus tree (e.g. IEMOCAP) that is missing files or has unexpected counts."""


class TextError(EmofusionError):
    """A transcript or word-vector file that cannot be used."""


class ConfigError(EmofusionError):
    """An unknown model name, label set or feature option."""


class MissingExtraError(EmofusionError):
    """An optional capability whose extra is not installed; the message names the install command."""

    def __init__(self, extra: str, what: str, missing: str):
        self.extra = extra
        self.install = f'pip install "emofusion[{extra}]"'
        super().__init__(f"{what} needs the optional extra '{extra}' ({missing} is not installed): {self.install}")


class ExportError(EmofusionError):
    """A model that cannot be exported faithfully (the exporter fails, or its graph disagrees)."""


class TrainingError(EmofusionError):
    """Training that cannot produce a usable model, e.g. a loss that became NaN or infinite."""
