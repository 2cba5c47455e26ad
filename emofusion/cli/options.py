"""Options shared by the training-side commands, and turning them into library objects."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from emofusion.corpora.manifest import read_manifest
from emofusion.experiments.runner import ExperimentConfig
from emofusion.features.acoustic import AcousticConfig
from emofusion.features.cache import FeatureCache
from emofusion.features.vocabulary import TextConfig
from emofusion.records import Utterance
from emofusion.training.config import TrainConfig


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path, help="CSV manifest id,audio,text,label,speaker,session")
    ignore = parser.add_mutually_exclusive_group()
    ignore.add_argument("--ignore-text", action="store_true", help="treat the manifest as speech-only")
    ignore.add_argument("--ignore-audio", action="store_true", help="treat the manifest as text-only")
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder (default ~/.cache/emofusion)")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"(default {defaults.epochs}, the paper's)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"(default {defaults.batch_size})")
    parser.add_argument("--vectors", default=TextConfig().vectors,
                        help="word vectors: 'glove-6b-50d' (shipped) or a GloVe text file, e.g. glove.6B.300d.txt")
    parser.add_argument("--max-frames", type=int, default=AcousticConfig().max_frames,
                        help="frames per utterance the model sees; sizes the model's input (default %(default)s, the paper's)")
    parser.add_argument("--fp32", action="store_true", help="train in float32 instead of bf16 autocast")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def load_utterances(args: argparse.Namespace) -> list[Utterance]:
    utterances = read_manifest(args.manifest)
    if getattr(args, "ignore_text", False):
        utterances = [dataclasses.replace(u, text=None) for u in utterances if u.has_audio]
    if getattr(args, "ignore_audio", False):
        utterances = [dataclasses.replace(u, audio=None) for u in utterances if u.has_text]
    return utterances


def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig(
        acoustic=AcousticConfig(max_frames=args.max_frames),
        text=TextConfig(vectors=args.vectors),
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, bf16=not args.fp32),
    )


def feature_cache(args: argparse.Namespace, config: ExperimentConfig) -> FeatureCache:
    return FeatureCache(config.acoustic, root=args.cache)
