"""Builds a tiny IEMOCAP-shaped tree (5 sessions, 32 utterances) with the corpus's quirks.

The quirks, each there because a reader can get it wrong:
- speakers whose gender differs from the dialog prefix (``Ses01F_impro01_M000`` is male);
- irregular dialog names ``Ses03M_impro05a`` and ``Ses05M_script01_1b``;
- labels ``xxx``, ``oth``, ``fru`` (dropped by the four-class maps) and ``hap`` (merged by merge_hap4);
- annotator lines in every EvaluationEmo block, a header line, AppleDouble ``._`` files and a
  ``Categorical/`` subfolder whose files would break the parser if read;
- noise lines in transcriptions (``M: breathing``, ``..._MXX0``), a transcript containing a colon,
  and transcription lines in a different order from the evaluation file.

Hand counts are in ``tests/corpora/test_iemocap.py``; keep them in step with ``DIALOGS``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000

# dialog -> [(utterance id, raw label, transcript)]
DIALOGS: dict[str, list[tuple[str, str, str]]] = {
    "Ses01F_impro01": [
        ("Ses01F_impro01_F000", "neu", "Excuse me."),
        ("Ses01F_impro01_M000", "ang", "Do you have your forms?"),
        ("Ses01F_impro01_F001", "xxx", "Yeah."),
        ("Ses01F_impro01_M001", "sad", "Sorry: the office is closed."),
        ("Ses01F_impro01_F002", "hap", "That's great!"),
    ],
    "Ses01F_script01_1": [
        ("Ses01F_script01_1_F000", "neu", "What's he going to say?"),
        ("Ses01F_script01_1_M000", "exc", "Let's go!"),
        ("Ses01F_script01_1_M001", "fru", "I can't do this."),
    ],
    "Ses02M_impro02": [
        ("Ses02M_impro02_F000", "exc", "We got the house!"),
        ("Ses02M_impro02_M000", "neu", "Okay."),
        ("Ses02M_impro02_M001", "oth", "Hmm."),
    ],
    "Ses02M_script02_2": [
        ("Ses02M_script02_2_F000", "ang", "Get out."),
    ],
    "Ses03M_impro05a": [
        ("Ses03M_impro05a_F000", "sad", "He's gone."),
        ("Ses03M_impro05a_M000", "neu", "I know."),
        ("Ses03M_impro05a_M001", "exc", "You did it!"),
    ],
    "Ses03F_script03_1": [
        ("Ses03F_script03_1_M000", "hap", "Lovely day."),
    ],
    "Ses04F_impro03": [
        ("Ses04F_impro03_F000", "ang", "That is not fair."),
        ("Ses04F_impro03_M000", "neu", "Fine."),
    ],
    "Ses05M_impro04": [
        ("Ses05M_impro04_F000", "neu", "Hello."),
        ("Ses05M_impro04_M000", "sad", "I lost it."),
        ("Ses05M_impro04_F001", "exc", "Wow!"),
    ],
    "Ses05M_script01_1b": [
        ("Ses05M_script01_1b_F000", "sad", "Don't leave."),
        ("Ses05M_script01_1b_M000", "ang", "Stop it."),
    ],
}

_VAD = {"neu": "[2.5000, 2.5000, 2.5000]", "ang": "[1.5000, 4.0000, 4.5000]"}
_CATEGORY = {"neu": "Neutral", "ang": "Anger", "sad": "Sadness", "exc": "Excited", "hap": "Happiness"}


def utterance_times(index: int) -> tuple[str, str]:
    """Start and end (as written in EmoEvaluation) of the index-th utterance of a dialog."""
    start = 6.2901 + 3.0 * index
    return f"{start:.4f}", f"{start + 1.9456:.4f}"


def build_iemocap(base: Path) -> Path:
    """Write the tree under ``base/IEMOCAP_full_release`` and return that folder."""
    root = base / "IEMOCAP_full_release"
    rng = np.random.default_rng(0)
    for dialog, utterances in DIALOGS.items():
        session_dir = root / f"Session{int(dialog[4])}"
        _write_evaluation(session_dir / "dialog" / "EmoEvaluation", dialog, utterances)
        _write_transcription(session_dir / "dialog" / "transcriptions", dialog, utterances)
        wav_dir = session_dir / "sentences" / "wav" / dialog
        wav_dir.mkdir(parents=True, exist_ok=True)
        for utt_id, _, _ in utterances:
            t = np.arange(int(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
            samples = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)
            sf.write(wav_dir / f"{utt_id}.wav", samples, SAMPLE_RATE, subtype="PCM_16")
    return root


def _write_evaluation(folder: Path, dialog: str, utterances: list[tuple[str, str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for index, (utt_id, label, _) in enumerate(utterances):
        start, end = utterance_times(index)
        category = _CATEGORY.get(label, "Other")
        lines += [
            f"[{start} - {end}]\t{utt_id}\t{label}\t{_VAD.get(label, '[3.0000, 3.0000, 3.0000]')}",
            f"C-E2:\t{category};\t()",
            f"C-E3:\t{category}; Frustration;\t(tense)",
            "A-E3:\tval 3; act 2; dom  2;\t()",
            "",
        ]
    (folder / f"{dialog}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Things a reader must not pick up: annotator subfolders and macOS AppleDouble files.
    categorical = folder / "Categorical"
    categorical.mkdir(exist_ok=True)
    (categorical / f"{dialog}_e2_cat.txt").write_text(f"{utterances[0][0]} :Neutral; ()\n[garbage\n")
    (folder / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        [\xff\xfe")


def _write_transcription(folder: Path, dialog: str, utterances: list[tuple[str, str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    timed = []
    for index, (utt_id, _, text) in enumerate(utterances):
        start, end = utterance_times(index)
        timed.append(f"{utt_id} [{float(start):08.4f}-{float(end):08.4f}]: {text}")
    # Reverse order: transcripts must be joined to evaluations by id, not by position.
    lines = list(reversed(timed))
    lines.insert(1, "M: breathing")
    lines.insert(2, f"{dialog}_MXX0 [099.0000-099.5000]: [LAUGHTER]")
    (folder / f"{dialog}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
