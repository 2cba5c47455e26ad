"""The reproduction report: our numbers in the layout of the paper's Table 1, next to the paper's.

Input is one `RunResult` (`emofusion.evaluation.results`) per trained model, protocol, seed and
test fold. How runs are combined:

- Within one seed, the folds are **pooled**: their confusion counts are summed, which is the same as
  scoring the concatenated predictions. For leave-one-session-out this makes every utterance count
  once and keeps `ang` (31 utterances in Session 5) from making single-fold UAs jump. For the
  paper protocol there is one fold, so pooling changes nothing.
- Across seeds: mean ± **sample** std (ddof=1), the spread one should expect from a fresh training
  run. One seed gives no std, and the report then prints the mean alone.

Files written into `out_dir`: report.md, results.csv (one row per run), summary.csv (one row per
model and protocol), results.json (the RunResults, to rebuild the report), confusion_<protocol>_<model>.png,
wa_ua_<protocol>.png and features.png (when a feature example is given). CSVs hold percent.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from emofusion.errors import ConfigError
from emofusion.evaluation.claims import check_claims
from emofusion.evaluation.data_card import DataCard
from emofusion.evaluation.metrics import Metrics, ProbabilityScores, _mean_std, aggregate, pool
from emofusion.evaluation.paper import PAPER_TABLE1, PUBLISHED_COMPARISONS
from emofusion.evaluation.plots import plot_confusion, plot_features, plot_reliability, plot_wa_ua, safe_name
from emofusion.evaluation.protocols import PROTOCOLS
from emofusion.evaluation.results import RunResult
from emofusion.models.registry import MODEL_NAMES, canonical_name, text_feature
from emofusion.records import fold_sort_key


@dataclass
class _Summary:
    """All runs of one model under one protocol, pooled per seed and aggregated over seeds."""

    model: str
    protocol: str
    labels: tuple[str, ...]
    folds: dict[int, list[str]]  # seed -> its folds
    per_seed: dict[int, Metrics]
    stats: dict  # emofusion.evaluation.metrics.aggregate over per_seed

    @property
    def all_folds(self) -> list[str]:
        return sorted({f for folds in self.folds.values() for f in folds})


def write_report(
    out_dir: str | Path,
    results: Sequence[RunResult],
    *,
    title: str,
    command: str,
    notes: Sequence[str] = (),
    feature_example: tuple[np.ndarray, Sequence[str], str] | None = None,
    skipped: Mapping[str, str] | None = None,
    data: DataCard | None = None,
) -> Path:
    """Write report.md, the CSVs and the figures into out_dir; return the path of report.md.

    Arguments:
        results: one RunResult per (model, protocol, seed, fold); duplicates are an error.
        title: the report's heading.
        command: the exact command line that produced the results, quoted in the report.
        notes: free-form lines listed under "Notes".
        feature_example: (frames (n, 34), feature names, utterance id) to plot, or None.
        data: what the runs were measured on (`describe_data`), stated at the top of the report.
        skipped: model -> reason it was not run (e.g. "speech-only manifest"); listed in notes and
            kept as rows of the tables, so the Table-1 layout stays complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped = dict(skipped or {})
    summaries = _summarise(results)
    labels = _label_union(summaries)

    _write_results_csv(out / "results.csv", results, labels)
    _write_summary_csv(out / "summary.csv", summaries, labels)
    (out / "results.json").write_text(json.dumps([r.to_dict() for r in _sorted_runs(results)], indent=1) + "\n")

    figures: dict[str, list[str]] = {}
    for protocol in PROTOCOLS:
        rows = [s for s in summaries if s.protocol == protocol]
        if not rows:
            continue
        bars = out / f"wa_ua_{protocol}.png"
        ours = {s.model: {k: _pct(s.stats[k]) for k in ("wa", "ua")} for s in rows}
        paper = {m: PAPER_TABLE1[p] for m in ours if (p := _paper_key(m))}
        plot_wa_ua(bars, [s.model for s in rows], ours, paper, f"WA / UA, protocol {protocol}: ours vs paper")
        figures[protocol] = [bars.name]
        for s in rows:
            path = out / f"confusion_{protocol}_{safe_name(s.model)}.png"
            plot_confusion(path, s.stats["confusion"], s.labels,
                           f"{s.model}, {protocol}: mean of {len(s.per_seed)} seed(s)")
            figures[protocol].append(path.name)
            scores = _probability_over_seeds(s)
            if scores is not None:
                path = out / f"reliability_{protocol}_{safe_name(s.model)}.png"
                plot_reliability(path, scores.reliability(), f"{s.model}, {protocol}: {len(s.per_seed)} seed(s), "
                                 f"n={scores.n}", ece=scores.ece)
                figures[protocol].append(path.name)
    feature_png = None
    if feature_example is not None:
        frames, names, utt_id = feature_example
        feature_png = plot_features(out / "features.png", frames, names, utt_id).name

    header = _header_lines(data, results, summaries)
    text = _markdown(title, command, header, list(notes), skipped, summaries, labels, figures, feature_png,
                     iemocap=bool(data and data.iemocap), per_corpus=_corpus_table(results),
                     fold_ece=_fold_ece(results))
    report = out / "report.md"
    report.write_text(text)
    return report


# ----------------------------------------------------------------------------- grouping


def _summarise(results: Sequence[RunResult]) -> list[_Summary]:
    """Group runs by (model, protocol), pool folds per seed, aggregate seeds; table order."""
    seen: set[tuple] = set()
    groups: dict[tuple[str, str], dict[int, list[RunResult]]] = {}
    for r in results:
        key = (r.model, r.protocol, r.seed, r.fold)
        if key in seen:
            raise ConfigError(f"duplicate run result for model {r.model!r}, protocol {r.protocol!r}, seed {r.seed}, fold {r.fold!r}")
        seen.add(key)
        groups.setdefault((r.model, r.protocol), {}).setdefault(r.seed, []).append(r)
    summaries = []
    for (model, protocol), by_seed in groups.items():
        labels = {r.metrics.labels for runs in by_seed.values() for r in runs}
        if len(labels) > 1:
            raise ConfigError(f"model {model!r} ({protocol}) has runs over different labels: {sorted(labels)}")
        per_seed = {seed: pool([r.metrics for r in runs]) for seed, runs in sorted(by_seed.items())}
        summaries.append(_Summary(
            model=model, protocol=protocol, labels=labels.pop(),
            folds={seed: sorted(r.fold for r in runs) for seed, runs in sorted(by_seed.items())},
            per_seed=per_seed, stats=aggregate(list(per_seed.values())),
        ))
    return sorted(summaries, key=lambda s: (list(PROTOCOLS).index(s.protocol), _model_rank(s.model)))


def _model_rank(model: str) -> tuple[int, str]:
    """The registry's order (Table 1's) first, then other models alphabetically."""
    try:
        name = canonical_name(model)
    except ConfigError:
        name = model
    # Registered models beside Table 1 (the pretrained-encoder ones) are not in MODEL_NAMES either.
    return (MODEL_NAMES.index(name), "") if name in MODEL_NAMES else (len(MODEL_NAMES), name)


def _paper_key(model: str) -> str | None:
    """The model's row name in the paper's Table 1, or None for a model the paper does not have."""
    try:
        key = canonical_name(model)
    except ConfigError:
        return None
    return key if key in PAPER_TABLE1 else None


def _sorted_runs(results: Sequence[RunResult]) -> list[RunResult]:
    return sorted(results, key=lambda r: (list(PROTOCOLS).index(r.protocol), _model_rank(r.model), r.seed, r.fold))


def _label_union(summaries: Sequence[_Summary]) -> list[str]:
    labels: list[str] = []
    for s in summaries:
        labels += [lab for lab in s.labels if lab not in labels]
    return labels


def _pct(stat: dict) -> dict:
    return {"mean": 100 * stat["mean"], "std": 100 * stat["std"], "n": stat["n"]}


# ----------------------------------------------------------------------------- CSV


def _num(value: float) -> str:
    """Percent with 4 decimals; NaN (undefined) becomes an empty cell."""
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def _write_results_csv(path: Path, results: Sequence[RunResult], labels: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", "protocol", "seed", "fold", "n", "wa_pct", "ua_pct"] + [f"{lab}_pct" for lab in labels])
        for r in _sorted_runs(results):
            m = r.metrics
            writer.writerow([r.model, r.protocol, r.seed, r.fold, m.n, _num(100 * m.wa), _num(100 * m.ua)]
                            + [_num(100 * m.per_class[lab]) if lab in m.per_class else "" for lab in labels])


def _write_summary_csv(path: Path, summaries: Sequence[_Summary], labels: list[str]) -> None:
    metrics = ["wa", "ua"] + labels
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", "protocol", "seeds", "folds"]
                        + [f"{k}_{stat}_pct" for k in metrics for stat in ("mean", "std")]
                        + [f"paper_{k}_pct" for k in metrics])
        for s in summaries:
            paper = PAPER_TABLE1.get(_paper_key(s.model) or "", {})
            cells = []
            for k in metrics:
                stat = s.stats[k] if k in ("wa", "ua") else s.stats["per_class"].get(k)
                cells += [_num(100 * stat["mean"]), _num(100 * stat["std"])] if stat else ["", ""]
            writer.writerow([s.model, s.protocol, len(s.per_seed), len(s.all_folds)] + cells
                            + [_num(paper[k]) if k in paper else "" for k in metrics])


# ----------------------------------------------------------------------------- markdown


def _cell(stat: dict | None, paper_value: float | None) -> str:
    """'54.2 ± 3.1 (54)': ours in percent, mean ± sample std, paper's value in brackets."""
    if stat is None:
        ours = "—"
    elif math.isnan(stat["mean"]):
        ours = "n/a"
    elif math.isnan(stat["std"]):
        ours = f"{100 * stat['mean']:.1f}"
    else:
        ours = f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"
    return ours if paper_value is None else f"{ours} ({paper_value:g})"


def _header_lines(data: DataCard | None, results: Sequence[RunResult], summaries: list[_Summary]) -> list[str]:
    """What the numbers were measured on and how: data, word vectors, precision, seeds, folds."""
    lines = ["## What was measured", ""]
    lines.append(f"- **Data**: {data.sentence() if data else 'not described (no data card given)'}")
    lines.append(f"- **Word vectors**: {_vectors_sentence(results)}")
    encoders = sorted({e for r in results for e in r.facts.get("pretrained_encoders", ())})
    if encoders:
        lines.append(f"- **Pretrained encoders** (frozen): {', '.join(encoders)}")
    lines.append(f"- **Precision**: {_precision_sentence(results)}")
    seeds = sorted({r.seed for r in results})
    lines.append(f"- **Seeds**: {', '.join(map(str, seeds))} ({len(seeds)})")
    for protocol in PROTOCOLS:
        folds = sorted({r.fold for r in results if r.protocol == protocol}, key=fold_sort_key)
        if folds:
            what = "Held-out corpora" if protocol == "loco" else "Test sessions"
            lines.append(f"- **{what}, `{protocol}`**: {', '.join(folds)}")
    return lines + [""]


def _vectors_sentence(results: Sequence[RunResult]) -> str:
    used = sorted({(str(r.facts["word_vectors"]), int(r.facts.get("vector_dim", 0)))
                   for r in results if "word_vectors" in r.facts})
    if not used:
        if any(_reads_words(r.model) for r in results):
            return "not recorded (results saved before runs recorded them)"
        return "none (no model here reads text)"
    return "; ".join(f"{name}, {dim}-d" for name, dim in used) + ". The paper used GloVe 300-d."


def _reads_words(model: str) -> bool:
    """True for models whose text branch reads word vectors (not the sentence-vector models)."""
    try:
        return text_feature(canonical_name(model)) == "words"
    except ConfigError:  # a model outside the registry (reports can be rebuilt from any results.json)
        return False


def _precision_sentence(results: Sequence[RunResult]) -> str:
    groups: dict[tuple, int] = {}
    for r in results:
        key = (r.facts.get("precision"), r.facts.get("device"), r.facts.get("cpu_capability"), r.facts.get("gpu"))
        groups[key] = groups.get(key, 0) + 1
    parts = []
    for (precision, device, capability, gpu), count in sorted(groups.items(), key=lambda kv: -kv[1]):
        if precision is None:
            parts.append(f"not recorded ({count} runs saved before runs recorded it)")
            continue
        what = "bf16 autocast (loss and softmax in fp32)" if precision == "bf16" else "fp32"
        where = f"on {gpu or device or 'an unrecorded device'}"
        if capability:
            where += f", CPU capability {capability}"
        parts.append(f"{what} {where} ({count} of {len(results)} runs)")
    return "; ".join(parts)


def _markdown(title: str, command: str, header: list[str], notes: list[str], skipped: dict[str, str],
              summaries: list[_Summary], labels: list[str], figures: dict[str, list[str]], feature_png: str | None,
              *, iemocap: bool, per_corpus: Sequence[str] = (), fold_ece: Mapping | None = None) -> str:
    lines = [f"# {title}", "", "Command:", "", "```", command, "```", ""] + header
    notes = notes + [f"{model} skipped: {reason}" for model, reason in skipped.items()]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        "## Results",
        "",
        "Percent. Each cell: ours as mean ± sample std (ddof=1) over seeds, the paper's Table 1 value in "
        "brackets. Within a seed, the test folds are pooled (confusion counts summed) before scoring. "
        "WA = overall accuracy, UA = mean per-class recall. The paper's numbers are for its single "
        "Session-5 split, also where shown beside leave-one-session-out results.",
        "",
    ]
    if not summaries:
        lines += ["No runs to report.", ""]
    for protocol, description in PROTOCOLS.items():
        rows = [s for s in summaries if s.protocol == protocol]
        if not rows:
            continue
        held_out = sorted({f for s in rows for f in s.all_folds})
        held_what = "held-out corpora" if protocol == "loco" else "test sessions"
        lines += [f"### Protocol `{protocol}`: {description} ({held_what}: {', '.join(held_out)})", ""]
        lines += _table(rows, labels, skipped) + [""]
        if protocol == "loco":
            lines += list(per_corpus)
        lines += _calibration_table(rows, fold_ece or {})
        lines += _baseline_lines(rows) + [""]
        lines += _fold_warnings(rows)
    lines += _claims_section(summaries)
    lines += _comparisons(summaries, iemocap=iemocap)
    if figures or feature_png:
        lines += ["## Figures", ""]
    for protocol, names in figures.items():
        lines += [f"### Protocol `{protocol}`", ""] + [f"![{name}]({name})" for name in names] + [""]
    if feature_png:
        lines += ["### Acoustic features of one utterance", "", f"![features]({feature_png})", ""]
    return "\n".join(lines)


def _table(rows: list[_Summary], labels: list[str], skipped: dict[str, str]) -> list[str]:
    header = ["model"] + labels + ["WA", "UA", "seeds", "folds", "n"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reported = {s.model for s in rows}
    entries: list[tuple[str, _Summary | None]] = [(s.model, s) for s in rows]
    entries += [(m, None) for m in skipped if m not in reported]
    entries.sort(key=lambda e: _model_rank(e[0]))
    for model, s in entries:
        paper = PAPER_TABLE1.get(_paper_key(model) or "", {})
        if s is None:
            cells = [_cell(None, paper.get(k)) for k in labels + ["wa", "ua"]]
            cells += ["skipped", "", ""]
        else:
            cells = [_cell(s.stats["per_class"].get(lab), paper.get(lab)) for lab in labels]
            cells += [_cell(s.stats["wa"], paper.get("wa")), _cell(s.stats["ua"], paper.get("ua"))]
            sizes = sorted({m.n for m in s.per_seed.values()})
            cells += [str(len(s.per_seed)), str(len(s.all_folds)), "/".join(map(str, sizes))]
        lines.append("| " + " | ".join([model] + cells) + " |")
    return lines


def _corpus_table(results: Sequence[RunResult]) -> list[str]:
    """Leave-one-corpus-out per corpus: each held-out corpus's WA and UA (mean ± sample std over
    seeds), then pooled (each seed's corpora's confusion counts summed, as the table above)."""
    loco = [r for r in results if r.protocol == "loco"]
    if not loco:
        return []
    corpora = sorted({r.fold for r in loco})
    header = ["model"] + [f"{c} {k}" for c in corpora for k in ("WA", "UA")] + ["pooled WA", "pooled UA", "seeds"]
    lines = ["Per held-out corpus (trained on all the others), percent:", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in sorted({r.model for r in loco}, key=_model_rank):
        runs = [r for r in loco if r.model == model]
        cells = []
        for c in corpora:
            held = [r.metrics for r in runs if r.fold == c]
            stats = aggregate(held) if held else None
            cells += [_cell(stats and stats["wa"], None), _cell(stats and stats["ua"], None)]
        seeds = sorted({r.seed for r in runs})
        pooled_stats = aggregate([pool([r.metrics for r in runs if r.seed == s]) for s in seeds])
        cells += [_cell(pooled_stats["wa"], None), _cell(pooled_stats["ua"], None), str(len(seeds))]
        lines.append("| " + " | ".join([model] + cells) + " |")
    return lines + [""]


def _baseline_lines(rows: list[_Summary]) -> list[str]:
    """What always answering the most frequent class would score: the floor WA must be read against.

    One line per distinct test set (normally all models share one; the first seed's is used).
    """
    test_sets: dict[tuple, list[str]] = {}
    for s in rows:
        support = next(iter(s.per_seed.values())).counts.sum(axis=1)
        test_sets.setdefault((s.labels, tuple(int(c) for c in support)), []).append(s.model)
    lines = []
    for (labels, support), models in test_sets.items():
        top = int(np.argmax(support))
        dist = ", ".join(f"{lab} {c}" for lab, c in zip(labels, support))
        which = "this test set" if len(test_sets) == 1 else f"the test set of {', '.join(models)}"
        lines.append(f"Majority-class baseline on {which} ({dist}): always `{labels[top]}` scores "
                     f"WA {100 * support[top] / sum(support):.2f} %, UA {100 / sum(c > 0 for c in support):.2f} %.")
    return lines


def _fold_warnings(rows: list[_Summary]) -> list[str]:
    """Seeds with differing fold sets would make the mean compare unlike things: say so."""
    lines = []
    for s in rows:
        fold_sets = {tuple(f) for f in s.folds.values()}
        if len(fold_sets) > 1:
            detail = "; ".join(f"seed {seed}: {', '.join(f)}" for seed, f in s.folds.items())
            lines.append(f"Warning: {s.model} ({s.protocol}) seeds cover different folds ({detail}).")
    return lines + ([""] if lines else [])


def _claims_section(summaries: list[_Summary]) -> list[str]:
    """Each ordering the paper asserts, judged from this run's numbers (see evaluation/claims.py)."""
    lines = [
        "## The paper's claims on this data",
        "",
        "Each ordering the paper argues from its Table 1, checked on this run's numbers: `holds` when the "
        "first model's mean ± std over seeds lies above every rival's, `does not hold` when a rival's lies "
        "clearly above it, `within noise` when the intervals overlap. The paper's own table is judged by the "
        "same rule (it has no spread). Claims are checked on UA and on WA separately.",
        "",
    ]
    for protocol in PROTOCOLS:
        stats = {s.model: s.stats for s in summaries if s.protocol == protocol}
        if not stats:
            continue
        for metric in ("ua", "wa"):
            lines += [f"### Protocol `{protocol}`, {metric.upper()}", ""]
            lines += [f"- {v.line}" for v in check_claims(stats, metric)] + [""]
    return lines


def _comparisons(summaries: list[_Summary], *, iemocap: bool) -> list[str]:
    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}"

    lines = [
        "## Published comparisons",
        "",
        "Published systems on IEMOCAP (the paper's Table 1 and the comparisons it cites).",
        "",
        "| system | WA | UA |",
        "|---|---|---|",
    ]
    for name, row in PUBLISHED_COMPARISONS.items():
        lines.append(f"| {name} | {fmt(row['wa'])} | {fmt(row['ua'])} |")
    best_ua = max(PAPER_TABLE1.items(), key=lambda kv: kv[1]["ua"])
    lines.append(f"| paper, best UA ({best_ua[0]}) | {fmt(best_ua[1]['wa'])} | {fmt(best_ua[1]['ua'])} |")
    lines.append("")
    for protocol in PROTOCOLS:
        rows = [s for s in summaries if s.protocol == protocol and not math.isnan(s.stats["ua"]["mean"])]
        if rows:
            best = max(rows, key=lambda s: s.stats["ua"]["mean"])
            lines.append(
                f"Our highest mean UA under `{protocol}` is {best.model}'s "
                f"(WA {fmt(100 * best.stats['wa']['mean'])}, UA {fmt(100 * best.stats['ua']['mean'])}). It was "
                f"picked after seeing these test results, so it is an optimistic figure"
                + ("" if iemocap else ", and it is measured on this data, not IEMOCAP")
                + ": it does not belong in the table above."
            )
    return lines + [""]


# ----------------------------------------------------------------------------- calibration


def _probability_over_seeds(s: _Summary) -> ProbabilityScores | None:
    """Every seed's pooled probability scores summed (the reliability diagram's data), or None
    where a run did not record them (results saved before they existed)."""
    scores = [m.probability for m in s.per_seed.values()]
    return None if any(p is None for p in scores) else ProbabilityScores.pool(scores)


def _fold_ece(results: Sequence[RunResult]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(model, protocol) -> test fold -> its ECE per seed, for runs that recorded probabilities."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in results:
        if r.metrics.probability is not None:
            out.setdefault((r.model, r.protocol), {}).setdefault(r.fold, []).append(r.metrics.probability.ece)
    return out


def _calibration_table(rows: list[_Summary], fold_ece: Mapping) -> list[str]:
    """ECE, NLL and Brier beside WA/UA: mean ± sample std over seeds of each seed's pooled folds."""
    rows = [s for s in rows if _probability_over_seeds(s) is not None]
    if not rows:
        return []
    lines = [
        "Calibration (the printed probabilities against how often they are right): ECE = expected "
        "calibration error in points (10 equal-width bins of the top probability), NLL = mean negative "
        "log-likelihood of the true class, Brier = mean multi-class Brier score (0-2); each the mean ± "
        "sample std over seeds of the seed's pooled folds. ECE floor = the ECE a perfectly calibrated "
        "model would score on average with the same number of predictions and confidences (ECE is "
        "biased upwards on small test sets; an ECE near its floor is as calibrated as this test can "
        "tell). Per test fold: ECE of that fold alone (mean over seeds).",
        "",
        "| model | WA | UA | ECE | ECE floor | NLL | Brier | mean top probability | ECE per test fold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        seeds = [m.probability for m in s.per_seed.values()]
        folds = fold_ece.get((s.model, s.protocol), {})
        per_fold = ", ".join(f"{f} {np.mean(v):.1f}" for f, v in sorted(folds.items()))
        cells = [_cell(s.stats["wa"], None), _cell(s.stats["ua"], None)]
        for values, scale, digits in (([p.ece for p in seeds], 1, 1), ([p.ece_floor for p in seeds], 1, 1),
                                      ([p.nll for p in seeds], 1, 3),
                                      ([p.brier for p in seeds], 1, 3), ([p.mean_confidence for p in seeds], 100, 1)):
            stat = _mean_std(values)
            spread = "" if math.isnan(stat["std"]) else f" ± {scale * stat['std']:.{digits}f}"
            cells.append(f"{scale * stat['mean']:.{digits}f}{spread}")
        lines.append(f"| {s.model} | " + " | ".join(cells) + f" | {per_fold} |")
    return lines + [""]

