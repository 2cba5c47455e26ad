"""Record a shipped model's noise figures in its model.json (issue 17's noise targets).

Usage (from the repository root, after ``build.py`` has built ``--model`` into ``--out``):

    python recipes/shipped/record_noise.py --export emofusion/shipped/s-cbla --run runs/shipped/work/s-cbla/heldout-seed0

The shipped model itself heard every RAVDESS actor, so its noise figures come from the recipe's
held-out run (``build.py``'s ``<work>/<model>/heldout-seed0``: trained without actors 17-20), scored
by ``benchmarks/bench_noise.py`` on those actors (clean, white noise and 4-talker babble at 10 dB
SNR, telephone band), as ``predict`` scores, with the run's own calibration. They go into
``model.json`` ``provenance.noise``, the one home the README quotes (a test checks the two agree).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bench_noise():
    """benchmarks/bench_noise.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bench_noise", REPO / "benchmarks" / "bench_noise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def noise_provenance(run: Path, results: dict) -> dict:
    """The ``provenance.noise`` block for a held-out ``run`` scored as ``results`` (bench_noise's
    per-condition dict); WA/UA/confidence rounded to 4 places as the other figures."""
    try:
        shown = run.resolve().relative_to(REPO)
    except ValueError:
        shown = run
    return {
        "measured_on": f"{shown} (the recipe's held-out run, seed 0: trained without RAVDESS actors 17-20)",
        "scored": "RAVDESS session 5 (actors 17-20), as predict scores, calibrated",
        "command": f"python benchmarks/bench_noise.py --model {shown}",
        "conditions": {
            condition: {"n": r["n"], "wa": round(r["wa"], 4), "ua": round(r["ua"], 4),
                        "mean_confidence": round(r["confidence"], 4)}
            for condition, r in results.items()
        },
    }


def write_noise(export: Path, block: dict) -> None:
    """Put ``block`` into ``export``/model.json's provenance, every other key kept as it was."""
    path = export / "model.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.setdefault("provenance", {})["noise"] = block
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", type=Path, required=True, help="the exported model folder whose model.json to update")
    parser.add_argument("--run", type=Path, required=True, help="the recipe's held-out run folder (heldout-seed0)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not (args.export / "model.json").is_file():
        raise SystemExit(f"{args.export}: no model.json (build the model first)")
    if not (args.run / "model.json").is_file():
        raise SystemExit(f"{args.run}: no model.json (the held-out run of build.py)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "noise.json"
        bench_noise().main(["--model", str(args.run), "--threads", str(args.threads), "--json", str(out)])
        (entry,) = json.loads(out.read_text(encoding="utf-8")).values()
    if not entry["held_out"]:
        raise SystemExit(f"{args.run}: its training saw the scored actors; give the held-out run")
    write_noise(args.export, noise_provenance(args.run, entry["conditions"]))
    print(f"{args.export / 'model.json'}: provenance.noise written", file=sys.stderr)


if __name__ == "__main__":
    main()
