"""One process of a data-parallel training run, started by torchrun from test_distributed.py.

    torchrun --standalone --nproc_per_node 2 ddp_worker.py MANIFEST VECTORS CACHE OUT [--stop-after N]

Trains the tiny corpus's small M-CBLA-BLR (no dropout, fp32) and saves this process's final
weights as OUT/rank<R>.safetensors, so the test can compare the processes' models.
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for tiny_corpus

from safetensors.torch import save_file  # noqa: E402
from tiny_corpus import LABELS, small_model_config  # noqa: E402

from emofusion.corpora.manifest import read_manifest  # noqa: E402
from emofusion.features.acoustic import AcousticConfig  # noqa: E402
from emofusion.features.cache import FeatureCache  # noqa: E402
from emofusion.features.vocabulary import TextConfig  # noqa: E402
from emofusion.training.config import TrainConfig  # noqa: E402
from emofusion.training.trainer import train  # noqa: E402

EPOCHS = 4
MODEL = dataclasses.replace(small_model_config(), dropout=0.0)
TRAIN = TrainConfig(epochs=EPOCHS, batch_size=8, learning_rate=3e-3, precision="fp32")


def run(manifest: Path, vectors: Path, cache: Path, out: Path, stop_after: int | None = None):
    acoustic = AcousticConfig(max_frames=40)

    def stop(epoch, _stats):
        if stop_after is not None and epoch == stop_after:
            raise SystemExit(3)  # as if killed after this epoch's checkpoint

    return train(
        "M-CBLA-BLR", read_manifest(manifest), labels=LABELS, out_dir=out / "run",
        cache=FeatureCache(acoustic, root=cache), acoustic=acoustic,
        text_config=TextConfig(vectors=str(vectors), extra_vocab=0), model_config=MODEL, train_config=TRAIN,
        progress=False, on_epoch_end=stop,
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    for name in ("manifest", "vectors", "cache", "out"):
        ap.add_argument(name, type=Path)
    ap.add_argument("--stop-after", type=int, default=None)
    args = ap.parse_args()
    trained = run(args.manifest, args.vectors, args.cache, args.out, args.stop_after)
    state = {k: v.contiguous() for k, v in trained.model.state_dict().items()}
    save_file(state, str(args.out / f"rank{os.environ['RANK']}.safetensors"))
