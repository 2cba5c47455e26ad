"""`emofusion predict`: the emotion of a recording + transcript, or of every row of a manifest/folder.

Without a transcript, a model that reads text transcribes the recording offline (the ``asr``
extra). ``--timeline`` cuts a recording into utterances and gives each its own emotion.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from emofusion.errors import ConfigError
from emofusion.inference.batch import items_from_folder, items_from_manifest, predict_to_csv
from emofusion.inference.backends import BACKENDS
from emofusion.inference.recognizer import EmotionRecognizer
from emofusion.inference.shipped import shipped_model_path


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict emotions", description=__doc__)
    p.add_argument("input", nargs="?", type=Path,
                   help="an audio file, a manifest .csv, or a folder of audio files (with optional <name>.txt transcripts)")
    p.add_argument("--text", default=None,
                   help="the transcript of the audio file (default: transcribed, with the asr extra)")
    p.add_argument("--model", default=None,
                   help="'fusion' (default: the shipped M-WTV-ST with the encoders extra, else M-CBLA-BLR), "
                        "'fusion-encoders' (M-WTV-ST), 'fusion-paper' (M-CBLA-BLR), 'speech' (no transcript: the "
                        "shipped S-WTV with the extra, else S-CBLA), 'speech-encoders' (S-WTV), 'speech-paper' "
                        "(S-CBLA), a run folder or an exported .onnx file")
    p.add_argument("--timeline", action="store_true",
                   help="split the recording into utterances, each with its time, words and emotion")
    p.add_argument("--speakers", type=int, default=None, metavar="N",
                   help="--timeline: the number of speakers (default: found automatically; needs the voice encoder: "
                        "pip install --no-deps resemblyzer==0.1.4)")
    p.add_argument("--no-diarize", action="store_true",
                   help="--timeline: do not tell speakers apart (utterances end at pauses only)")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="--timeline: draw it (one lane per speaker, segments coloured by emotion) into this image")
    p.add_argument("--asr-model", default=None,
                   help="'base' (multilingual: detects the language; from the asr extra's part packages, 5.5x "
                        "tiny.en's cost), a faster-whisper model folder, or a model name already downloaded "
                        "(default: the bundled tiny.en)")
    p.add_argument("--out", type=Path, default=None,
                   help="predictions CSV (required for a manifest or folder; with --timeline one row per segment)")
    p.add_argument("--json", action="store_true", help="print JSON: label and probabilities (and the segments)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="torch (default; onnx for a .onnx --model); onnx: onnxruntime (the run folder is exported "
                        'once); onnx-int8: the same, int8-quantised. onnx needs pip install "emofusion[onnx]"')
    p.add_argument("--workers", type=int, default=None,
                   help="batch prediction: processes extracting features (default: every core), or Ray actors "
                        "(default: the cluster's CPUs)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help='batch prediction on this machine (default) or a Ray cluster (pip install "emofusion[ray]")')
    p.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. ray://head:10001 (default: start a local cluster)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.address is not None and args.engine != "ray":
        raise ConfigError("--address is a Ray cluster address: use it with --engine ray")
    source = args.input
    batch = source is not None and (source.is_dir() or source.suffix.lower() == ".csv")
    if batch:
        # Every argument is checked before the model is loaded and anything is predicted.
        check_out(args.out, source)
        items = items_from_folder(source) if source.is_dir() else items_from_manifest(source)
    check_timeline_options(args, source, batch)
    asr = None
    if args.asr_model is not None:
        from emofusion.asr.transcriber import AsrConfig

        asr = AsrConfig(model=args.asr_model)
    # A shipped name resolved once (the default says once why it falls back); Ray workers load the same.
    model = shipped_model_path(args.model, onnx=args.backend in ("onnx", "onnx-int8"))
    recognizer = EmotionRecognizer.load(model, device=args.device, backend=args.backend, asr=asr)
    if batch:
        if args.timeline:
            from emofusion.inference import diarization
            from emofusion.inference.timeline_batch import timelines_to_csv

            if not args.no_diarize and args.speakers is None and not diarization.available():
                print(f"info: {diarization.SKIPPED}", file=sys.stderr)
            ok, failed = timelines_to_csv(recognizer, items, args.out, progress=not args.quiet,
                                          diarize=False if args.no_diarize else None, speakers=args.speakers)
            print(f"{ok} predicted, {failed} failed -> {args.out}")
            return 0 if ok else 1
        results = None
        if args.engine == "ray":
            from emofusion.inference.ray_engine import predict_stream_ray

            results = predict_stream_ray(model, items, backend=args.backend,
                                         address=args.address, workers=args.workers)
        ok, failed = predict_to_csv(recognizer, items, args.out, progress=not args.quiet, workers=args.workers,
                                    results=results)
        print(f"{ok} predicted, {failed} failed -> {args.out}")
        return 0 if ok else 1
    if source is None and args.text is None:
        raise ConfigError("give an audio file and/or --text")
    if source is not None and "speech" not in recognizer.modalities and "text" not in recognizer.modalities:
        raise ConfigError(f"{recognizer.name} cannot use {source}")
    if args.text is not None and "text" not in recognizer.modalities and source is not None:
        print(f"note: {recognizer.name} is a speech-only model; the transcript is not used")
    if args.timeline:
        if source is None:
            raise ConfigError("--timeline needs an audio file")
        return _timeline(recognizer, source, args)
    if source is not None and "speech" not in recognizer.modalities and args.text is not None:
        raise ConfigError(f"{recognizer.name} is a text-only model: it cannot use {source} beside --text")
    prediction = recognizer.predict(source, args.text)
    if args.json:
        print(json.dumps({"model": recognizer.name, **prediction.to_json()}, indent=2))
        return 0
    used = " + ".join(prediction.modalities)
    # Below the model's validated confidence threshold (model.json "calibration"): say so first.
    doubt = "  uncertain" if prediction.confident is False else ""
    print(f"{prediction.label}{doubt}   ({recognizer.name}, {used})")
    if prediction.transcribed:
        heard = f", heard as {prediction.language} (p={prediction.language_probability:.2f})" if prediction.language else ""
        print(f"  transcript (Whisper{heard}): {prediction.transcript}")
        if not prediction.text_used:
            print("  not read: not in a language the model reads, or Whisper was unsure of it; answered from the speech")
    for label, p in sorted(prediction.probabilities.items(), key=lambda kv: -kv[1]):
        print(f"  {label:>4} {p:6.1%} {'#' * round(p * 40)}")
    return 0


def check_timeline_options(args: argparse.Namespace, source: Path | None, batch: bool) -> None:
    """--timeline's own options, checked before the model is loaded and anything is computed."""
    timeline_only = {"--speakers": args.speakers is not None, "--no-diarize": args.no_diarize, "--plot": args.plot}
    for flag, given in timeline_only.items():
        if given and not args.timeline:
            raise ConfigError(f"{flag} is an option of --timeline")
    if args.speakers is not None and args.speakers < 1:
        raise ConfigError(f"--speakers must be at least 1, got {args.speakers}")
    if args.speakers is not None and args.no_diarize:
        raise ConfigError("--speakers needs speaker turns: leave out --no-diarize")
    if not args.timeline or batch:
        if args.plot is not None:
            raise ConfigError("--plot draws the timeline of one recording: give an audio file")
        return
    if args.out is not None and source is not None:
        check_out(args.out, source)  # a folder or an unwritable --out fails now, not after the whole timeline
    if args.plot is not None:
        if args.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise ConfigError(f"--plot {args.plot}: name a .png, .svg or .pdf file")
        if args.plot.is_dir():
            raise ConfigError(f"--plot {args.plot} is a folder: name the image, e.g. {args.plot / 'timeline.png'}")
        parent = args.plot.absolute().parent
        existing = next(p for p in [parent, *parent.parents] if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK):
            raise ConfigError(f"--plot {args.plot}: cannot create it ({existing} is not a writable folder)")


def check_out(out: Path | None, source: Path) -> None:
    """Refuse an --out that is missing, a folder, the input itself, or cannot be created."""
    if out is None:
        raise ConfigError("batch prediction needs --out preds.csv")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name the predictions file, e.g. {out / 'preds.csv'}")
    if source.is_file() and out.exists() and os.path.samefile(out, source):
        raise ConfigError(f"--out {out} would overwrite the input manifest {source}: choose another file")
    parent = out.absolute().parent
    existing = next(p for p in [parent, *parent.parents] if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ConfigError(f"--out {out}: cannot create it ({existing} is not a writable folder)")


def _timeline(recognizer: EmotionRecognizer, source: Path, args: argparse.Namespace) -> int:
    from emofusion.inference.timeline import build_timeline
    from emofusion.inference.timeline_batch import timeline_rows, write_timeline_csv

    timeline = build_timeline(recognizer, source, args.text, progress=not args.quiet and not args.json,
                              diarize=False if args.no_diarize else None, speakers=args.speakers)
    if timeline.speaker_note:
        print(f"info: {timeline.speaker_note}", file=sys.stderr)
    if args.out is not None:
        write_timeline_csv(args.out, timeline_rows(source.stem, timeline, recognizer.labels), recognizer.labels)
    if args.plot is not None:
        from emofusion.inference.timeline_plot import plot_timeline

        plot_timeline(timeline, args.plot, title=source.name)
    if args.json:
        print(json.dumps(timeline.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(format_timeline(timeline, recognizer.labels))
    if args.out is not None:
        written = f"{len(timeline.segments)} segments" if timeline.segments else "no speech found: one row saying so"
        print(f"{written} -> {args.out}")
    if args.plot is not None:
        print(f"plot -> {args.plot}")
    return 0


def format_timeline(timeline, labels: tuple[str, ...]) -> str:
    """A table for a terminal: one line per segment, then the overall emotion."""
    if not timeline.segments:
        return f"{timeline.note} ({timeline.duration:.1f} s of audio)"
    width = max(len(c) for c in labels)
    # the speaker column only when speakers were told apart (--no-diarize keeps the old table)
    who = (lambda s: f"{s.speaker or '-':<7}  ") if timeline.speakers else (lambda s: "")
    head = f"{'start':>8} {'end':>8}  " + (f"{'speaker':<7}  " if timeline.speakers else "") + f"{'label':<{width}}  " + "  ".join(f"{c:>{max(width, 5)}}" for c in labels) + "  text"
    lines = [head, "-" * len(head)]
    for s in timeline.segments:
        if s.probabilities is None:
            probs = "  ".join(f"{'':>{max(width, 5)}}" for _ in labels)
            lines.append(f"{_clock(s.start):>8} {_clock(s.end):>8}  {who(s)}{'-':<{width}}  {probs}  error: {s.error}")
            continue
        probs = "  ".join(f"{s.probabilities[c]:>{max(width, 5)}.0%}" for c in labels)
        via = f"  [{s.model}]" if s.model != timeline.model else ""
        doubt = "  (uncertain)" if s.confident is False else ""
        lines.append(f"{_clock(s.start):>8} {_clock(s.end):>8}  {who(s)}{s.label:<{width}}  {probs}  {s.text or ''}{via}{doubt}")
    lines.append("-" * len(head))
    if timeline.label is not None:
        probs = "  ".join(f"{timeline.probabilities[c]:>{max(width, 5)}.0%}" for c in labels)
        lines.append(f"{'overall':>17}  {' ' * 9 if timeline.speakers else ''}{timeline.label:<{width}}  {probs}  "
                     f"({len(timeline.segments)} segments, {timeline.duration:.1f} s; {timeline.model})")
    if timeline.speakers:
        lines += ["", format_speakers(timeline.speakers, labels)]
    if timeline.note:
        lines.append(f"note: {timeline.note}")
    return "\n".join(lines)


def format_speakers(speakers, labels: tuple[str, ...]) -> str:
    """Who felt what: per speaker, speaking time, seconds per emotion and the overall emotion."""
    width = max(7, *(len(c) for c in labels))  # "123.4 s"
    head = f"{'speaker':<7}  {'speaking':>8}  " + "  ".join(f"{c:>{width}}" for c in labels) + "  overall"
    lines = [head, "-" * len(head)]
    for p in speakers:
        seconds = "  ".join(f"{p.emotion_s[c]:>{width - 2}.1f} s" for c in labels)
        lines.append(f"{p.speaker:<7}  {p.speaking_s:>6.1f} s  {seconds}  {p.label or '-'} ({p.segments} segments)")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:05.2f}"
