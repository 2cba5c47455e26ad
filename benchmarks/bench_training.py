"""Training speed: the paper's padded-to-500 computation vs emofusion's, and all of Table 1.

Usage: ``python benchmarks/bench_training.py [--baseline-batches 4] [--threads 2] [--skip-table]``

IEMOCAP-sized synthetic data (2,034 training utterances, the paper protocol's training set):
transcript lengths drawn from a log-normal fitted to conversational speech (median ~11 tokens,
long tail clipped at 120), speech lengths from utterance durations (median ~3.5 s) capped at the
paper's 100 frames. Both sides use the same model, weights, optimiser and allocator settings.

- baseline: every transcript padded to the paper's 500 tokens, random batches;
- emofusion: padded to each batch's longest, length-bucketed batches.

Like is compared with like, so the script runs on every CPU: the computations first in fp32 both,
then ours in fp32 vs bf16 autocast where bf16 runs here (the probe of `emofusion.precision`
decides, as it does for training; ``EMOFUSION_BF16=unsupported`` forces the AVX2-only path). Each
line names the precision it measured. The baseline epoch is projected from ``--baseline-batches``
timed batches (a full one takes minutes); ours are full measured epochs. Then one measured epoch of
each of the eleven models, in the precision ``emofusion train`` picks here (``--precision auto``),
gives the projected time of the whole Table 1 (20 epochs each, paper protocol).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from emofusion.features.acoustic import AcousticConfig
from emofusion.features.pipeline import SpeechInputs
from emofusion.models import MODEL_NAMES, build_model
from emofusion.precision import bf16_support, resolve_precision
from emofusion.runtime import tune_allocator
from emofusion.training.config import TrainConfig
from emofusion.features.batching import EncodedSet, iterate_batches

N_TRAIN = 2034
N_CLASSES = 4
VOCAB, DIM = 20_000, 50  # GloVe 6B 50-d, vocabulary as the shipped default keeps it
PAPER_MAX_TOKENS = 500
SPEECH_SHAPE = AcousticConfig().input_shape  # the paper's (100, 34)


def synthetic_set(seed: int = 0, n_train: int = N_TRAIN) -> EncodedSet:
    rng = np.random.default_rng(seed)
    text_lengths = np.clip(rng.lognormal(np.log(11), 0.8, n_train).astype(int), 1, 120)
    seconds = rng.lognormal(np.log(3.5), 0.6, n_train)
    max_frames, _ = SPEECH_SHAPE
    frames = np.clip(((seconds - 0.05) / 0.025 + 1).astype(int), 1, max_frames)
    speech = rng.normal(size=(n_train, *SPEECH_SHAPE)).astype(np.float32)
    for i, n in enumerate(frames):
        speech[i, n:] = 0
    tokens = [rng.integers(2, VOCAB, n).astype(np.int64) for n in text_lengths]
    labels = rng.integers(0, N_CLASSES, n_train).astype(np.int64)
    return EncodedSet(labels=labels, speech=SpeechInputs(speech, frames.astype(np.int64)), tokens=tokens)


def make_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(name, n_classes=N_CLASSES, speech_shape=SPEECH_SHAPE, embeddings=torch.randn(VOCAB, DIM))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return model, optimizer


def step(model, optimizer, inputs, targets, precision: str) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(**inputs)
    loss = F.cross_entropy(logits.float(), targets)
    if model.uses_l2:
        loss = loss + 1e-4 * model.l2_penalty()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def restrict(inputs: dict, modalities) -> dict:
    keep = set()
    if "speech" in modalities:
        keep |= {"speech", "speech_lengths"}
    if "text" in modalities:
        keep |= {"tokens", "text_lengths"}
    return {k: v for k, v in inputs.items() if k in keep}


def padded_to_500(inputs: dict) -> dict:
    out = dict(inputs)
    tokens = inputs["tokens"]
    out["tokens"] = F.pad(tokens, (0, PAPER_MAX_TOKENS - tokens.shape[1]))
    return out


def time_baseline(data: EncodedSet, n_batches: int, batch_size: int) -> tuple[float, int, int]:
    """Projected fp32 epoch of the paper's computation, batches per epoch, batches timed."""
    model, optimizer = make_model("M-CBLA-BLR")
    gen = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(data, batch_size, device=torch.device("cpu"), shuffle=True, bucket=False, generator=gen))
    step(model, optimizer, padded_to_500(batches[0][0]), batches[0][1], "fp32")  # warm-up
    timed = batches[1 : 1 + n_batches] or batches[:1]
    start = time.perf_counter()
    for inputs, targets, _ in timed:
        step(model, optimizer, padded_to_500(inputs), targets, "fp32")
    per_batch = (time.perf_counter() - start) / len(timed)
    return per_batch * len(batches), len(batches), len(timed)


def time_epoch(name: str, data: EncodedSet, cfg: TrainConfig, precision: str) -> float:
    model, optimizer = make_model(name)
    gen = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(data, cfg.batch_size, device=torch.device("cpu"), shuffle=True,
                                   bucket=cfg.bucket_by_length, generator=gen))
    first_inputs, first_targets, _ = batches[0]
    step(model, optimizer, restrict(first_inputs, model.modalities), first_targets, precision)  # warm-up
    start = time.perf_counter()
    for inputs, targets, _ in batches:
        step(model, optimizer, restrict(inputs, model.modalities), targets, precision)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-batches", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=N_TRAIN, help="training utterances (default: IEMOCAP's)")
    parser.add_argument("--skip-table", action="store_true", help="only the M-CBLA-BLR comparisons")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tune_allocator()
    cfg = TrainConfig()
    data = synthetic_set(n_train=args.n_train)
    cpu = torch.device("cpu")
    support = bf16_support(cpu)
    auto = resolve_precision("auto", cpu)
    print(f"{args.n_train} utterances, batch {cfg.batch_size}, torch {torch.__version__}, {args.threads} threads")
    print(f"median transcript {int(np.median([len(t) for t in data.tokens]))} tokens, "
          f"median speech {int(np.median(data.speech.lengths))} frames")
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}; bf16 {support.level}: {support.reason}; "
          f"`emofusion train` (--precision auto) trains in {auto} here\n")

    baseline, n_batches, n_timed = time_baseline(data, args.baseline_batches, cfg.batch_size)
    ours = {"fp32": time_epoch("M-CBLA-BLR", data, cfg, "fp32")}
    if support.runs:
        ours["bf16"] = time_epoch("M-CBLA-BLR", data, cfg, "bf16")
    print("M-CBLA-BLR, one training epoch")
    print(f"{'computation':<52} {'s/epoch':>8}")
    print(f"{'padded to 500 tokens, random batches, fp32':<52} {baseline:8.1f}   "
          f"(projected from {n_timed} of {n_batches} batches)")
    for precision, seconds in ours.items():
        print(f"{'batch-longest, length buckets, ' + precision:<52} {seconds:8.1f}   (measured)")
    print(f"speed-up, fp32 vs fp32 (padding and bucketing alone): {baseline / ours['fp32']:.1f}x")
    if "bf16" in ours:
        print(f"bf16 autocast vs fp32, ours: {ours['fp32'] / ours['bf16']:.2f}x")
        print(f"ours in bf16 vs the paper's computation in fp32: {baseline / ours['bf16']:.1f}x")
    else:
        print(f"bf16: not measured, it does not run here ({support.reason})")
    print(f"ours as `emofusion train` runs here ({auto}) vs the paper's computation (fp32): "
          f"{baseline / ours[auto]:.1f}x\n")
    if args.skip_table:
        return
    print(f"Table 1 in {auto} (what `emofusion train` uses here)")
    print(f"{'model':<12} {'s/epoch':>8} {'20 epochs, s':>13}")
    total = 0.0
    for name in MODEL_NAMES:
        seconds = ours[auto] if name == "M-CBLA-BLR" else time_epoch(name, data, cfg, auto)
        total += seconds * cfg.epochs
        print(f"{name:<12} {seconds:8.2f} {seconds * cfg.epochs:13.1f}")
    print(f"whole Table 1 (11 models x {cfg.epochs} epochs, paper protocol, {auto}): {total / 60:.1f} min projected")


if __name__ == "__main__":
    main()
