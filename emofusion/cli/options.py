"""Options shared by the training-side commands, and turning them into library objects."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from emofusion.corpora.manifest import label_gap_warning, read_manifests
from emofusion.experiments.runner import ExperimentConfig
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.augment import AUGMENT_CONFIGS
from emofusion.features.cache import FeatureCache
from emofusion.features.pipeline import MAX_FRAMES_LIMIT
from emofusion.features.vocabulary import TextConfig
from emofusion.precision import PRECISIONS
from emofusion.records import Utterance
from emofusion.training.config import BALANCE_CHOICES, TrainConfig


def add_data_options(parser: argparse.ArgumentParser) -> None:
    add_manifest_option(parser)
    ignore = parser.add_mutually_exclusive_group()
    ignore.add_argument("--ignore-text", action="store_true", help="treat the manifest as speech-only")
    ignore.add_argument("--ignore-audio", action="store_true", help="treat the manifest as text-only")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder (default ~/.cache/emofusion)")


def add_manifest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path, nargs="+", metavar="MANIFEST",
                        help="CSV manifest(s) id,audio,text,label,speaker,session[,corpus]; several make "
                             "several corpora (each named by its corpus column, else its file stem)")


def manifest_names(args: argparse.Namespace) -> str:
    """The manifests' file names as a report names its data: ``a.csv`` or ``a.csv + b.csv``."""
    return " + ".join(Path(m).name for m in args.manifest)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, so a bad value stops the command before any work."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def frame_count(text: str) -> int:
    """argparse type for --max-frames: 1 to MAX_FRAMES_LIMIT (ten minutes of frames)."""
    value = positive_int(text)
    if value > MAX_FRAMES_LIMIT:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_FRAMES_LIMIT:,} (ten minutes of frames at a 25-ms step), got {value:,}"
        )
    return value


def add_training_options(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs,
                        help=f"(default {defaults.epochs}, the paper's)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                        help=f"(default {defaults.batch_size})")
    parser.add_argument("--vectors", default=TextConfig().vectors,
                        help="word vectors: 'glove-6b-50d' (shipped) or a GloVe text file, e.g. glove.6B.300d.txt")
    parser.add_argument("--max-frames", type=frame_count, default=AcousticConfig().max_frames,
                        help="frames per utterance the model sees; sizes the model's input (default %(default)s, the paper's)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                           help="auto (default): bf16 autocast where the CPU/GPU computes bf16 natively, fp32 "
                                "elsewhere; bf16: insist (an error where it does not run); fp32: exact")
    precision.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                           help="same as --precision fp32")
    parser.add_argument("--balance", choices=BALANCE_CHOICES, default=defaults.balance,
                        help="auto (default): with two corpora or more, every corpus and every class within it "
                             "gets an equal share of each epoch (one corpus: a plain shuffle); corpus_class: "
                             "always; none: never")
    parser.add_argument("--augment", choices=sorted(AUGMENT_CONFIGS), default=defaults.augment,
                        help="waveform augmentation while training (default: none): noise and babble at 0-20 dB "
                             "SNR, reverberation, telephone band, gain, speed (emofusion.features.augment); "
                             "docs/results/augmentation.md measures what it does")
    parser.add_argument("--augment-views", type=positive_int, default=defaults.augment_views,
                        help="augmented copies encoded per clip for the frozen-encoder models (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="train over a different run already in the output folder (refused otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--calibrate", action="store_true",
                        help="hold out 20%% of each corpus's training speakers (corpora with 3 or more), train on "
                             "the rest and fit the temperature and confidence threshold on them (model.json "
                             "'calibration'); without it probabilities are the softmax as trained")


def load_utterances(args: argparse.Namespace, labels: tuple[str, ...] | None = None) -> list[Utterance]:
    """The rows of every ``--manifest`` (`read_manifests`), as ``--ignore-text/audio`` leave them;
    a warning on stderr when the corpora's label sets differ. ``labels``: the only labels allowed."""
    utterances = read_manifests(args.manifest, labels=labels)
    warning = label_gap_warning(utterances)
    if warning:
        print(warning, file=sys.stderr)
    if getattr(args, "ignore_text", False):
        utterances = [dataclasses.replace(u, text=None) for u in utterances if u.has_audio]
    if getattr(args, "ignore_audio", False):
        utterances = [dataclasses.replace(u, audio=None) for u in utterances if u.has_text]
    return utterances


def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig(
        acoustic=AcousticConfig(max_frames=args.max_frames),
        text=TextConfig(vectors=args.vectors),
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, precision=args.precision,
                          balance=args.balance, augment=args.augment, augment_views=args.augment_views),
        calibrate=getattr(args, "calibrate", False),
    )


def feature_cache(args: argparse.Namespace, config: ExperimentConfig) -> FeatureCache:
    return FeatureCache(config.acoustic, root=args.cache)
