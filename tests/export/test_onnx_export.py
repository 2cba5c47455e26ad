"""ONNX export and the onnxruntime backend: the shipped model, exported, gives PyTorch's answers.

Skipped without the `onnx` extra (pip install "emofusion[onnx]").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "emofusion[onnx]"')
pytest.importorskip("onnx", reason='needs the onnx extra: pip install "emofusion[onnx]"')

from emofusion.artifacts import load_trained  # noqa: E402
from emofusion.audio import load_audio  # noqa: E402
from emofusion.cli.main import main  # noqa: E402
from emofusion.errors import ConfigError, ExportError  # noqa: E402
from emofusion.export.onnx_export import METADATA_KEY, export_onnx  # noqa: E402
from emofusion.export.quantize import INT8_SETTINGS  # noqa: E402
from emofusion.extras import MissingExtraError, require  # noqa: E402
from emofusion.features.acoustic import extract_frames  # noqa: E402
from emofusion.inference.recognizer import SHIPPED_MODEL, EmotionRecognizer  # noqa: E402
from emofusion.models.classifier import UnimodalClassifier  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.flac"))
TEXTS = ["Kids are talking by the door.", "Dogs are sitting by the door.", "I can't believe you did that!", "ok"]


@pytest.fixture(scope="module")
def shipped():
    return load_trained(SHIPPED_MODEL)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped model exported by the CLI, float32 and int8."""
    folder = tmp_path_factory.mktemp("onnx")
    paths = {"fp32": folder / "model.onnx", "int8": folder / "model-int8.onnx"}
    assert main(["export", "--format", "onnx", "--out", str(paths["fp32"])]) == 0
    assert main(["export", str(SHIPPED_MODEL), "--out", str(paths["int8"]), "--quantize", "int8"]) == 0
    return paths


def session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def real_frames() -> list[np.ndarray]:
    """The bundled recordings' raw feature frames (each over 100 frames long)."""
    config = load_trained(SHIPPED_MODEL).pipeline.acoustic
    out = []
    for path in EXAMPLES:
        audio = load_audio(path, target_rate=config.sample_rate)
        out.append(extract_frames(audio.samples, audio.sample_rate, config))
    assert all(len(f) >= 100 for f in out)
    return out


def inputs(trained, frames: list[np.ndarray], texts: list[str]) -> dict[str, np.ndarray]:
    """Model inputs as the recognizer builds them, padded to the batch's longest row."""
    speech = trained.pipeline.speech_inputs(frames)
    tokens = trained.pipeline.text_inputs(texts)
    width = max(len(t) for t in tokens)
    padded = np.zeros((len(tokens), width), dtype=np.int64)
    for row, t in enumerate(tokens):
        padded[row, : len(t)] = t
    return {
        "speech": speech.frames[:, : int(speech.lengths.max())],
        "speech_lengths": speech.lengths,
        "tokens": padded,
        "text_lengths": np.array([len(t) for t in tokens], dtype=np.int64),
    }


def torch_probabilities(trained, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The PyTorch model's probabilities with its calibration (the exported graph divides by T too)."""
    with torch.inference_mode():
        logits = trained.model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    return torch.softmax(logits / trained.calibration.temperature, dim=1).numpy()


def test_export_matches_pytorch_on_real_clips_of_every_length_and_a_mixed_batch(shipped, exported):
    onnx_model = session(exported["fp32"])
    clips = real_frames()
    worst = 0.0
    singles = []
    for length in range(1, 101):
        feeds = inputs(shipped, [clips[length % len(clips)][:length]], [TEXTS[length % len(TEXTS)]])
        assert feeds["speech"].shape[1] == length
        want = torch_probabilities(shipped, feeds)
        got = onnx_model.run(["probabilities"], feeds)[0]
        worst = max(worst, float(np.abs(got - want).max()))
        singles.append(want[0])
    assert worst <= 1e-4
    # All hundred lengths in one batch (padded to 100, transcripts of different lengths): each row
    # must equal the same clip predicted alone.
    feeds = inputs(shipped, [clips[n % len(clips)][:n] for n in range(1, 101)], [TEXTS[n % len(TEXTS)] for n in range(1, 101)])
    assert sorted(set(feeds["text_lengths"].tolist())) == sorted({len(shipped.pipeline.text_inputs([t])[0]) for t in TEXTS})
    got = onnx_model.run(["probabilities"], feeds)[0]
    assert np.abs(got - np.stack(singles)).max() <= 1e-4
    # Not vacuous: the clips' probabilities do differ from one another.
    assert np.ptp(np.stack(singles)[:, 0]) > 0.05


def test_the_file_carries_labels_features_normalisation_and_vocabulary(shipped, exported):
    meta = json.loads(session(exported["fp32"]).get_modelmeta().custom_metadata_map[METADATA_KEY])
    stored = json.loads((SHIPPED_MODEL / "model.json").read_text())
    assert meta["labels"] == stored["labels"] and meta["name"] == "M-CBLA-BLR"
    assert meta["pipeline"] == shipped.pipeline.state()
    for key in ("acoustic", "mean", "std", "text"):  # feature config, normalisation, text config + vocabulary
        assert meta["pipeline"][key] == stored["pipeline"][key]
    assert meta["inputs"] == ["speech", "speech_lengths", "tokens", "text_lengths"]
    assert [i.name for i in session(exported["fp32"]).get_inputs()] == meta["inputs"]
    assert meta["quantize"] is None
    int8_meta = json.loads(session(exported["int8"]).get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert int8_meta["quantize"] == "int8" and meta["quantization"] is None
    assert int8_meta["quantization"] == INT8_SETTINGS and int8_meta["quantization"]["lstm_input_copies"] == 4


def test_onnx_backend_predicts_what_torch_predicts(exported):
    torch_rec = EmotionRecognizer.load("fusion-paper")
    onnx_rec = EmotionRecognizer.load(exported["fp32"])  # a .onnx file picks the onnx backend
    assert onnx_rec.backend.name == "onnx" and onnx_rec.trained.model is None
    items = [(str(p), t) for p, t in zip(EXAMPLES, TEXTS)]
    items.append((np.tile(load_audio(EXAMPLES[0]).samples, 3), TEXTS[0]))  # long audio: several windows
    want = torch_rec.predict_batch(items[:-1]) + [torch_rec.predict(items[-1][0], items[-1][1], sample_rate=16000)]
    got = onnx_rec.predict_batch(items[:-1]) + [onnx_rec.predict(items[-1][0], items[-1][1], sample_rate=16000)]
    assert got[-1].windows > 1
    for w, g in zip(want, got):
        assert g.label == w.label
        assert max(abs(g.probabilities[c] - w.probabilities[c]) for c in w.probabilities) <= 1e-4


def test_int8_export_agrees_with_pytorch_on_real_clips(shared_data, exported):
    """The issue's criterion: labels agree on >= 99% of real clips, probabilities within 0.02,
    for clips predicted one at a time (as `predict`) and in batches of 8 (as the service's
    micro-batches hold them)."""
    from emofusion.corpora.manifest import read_manifest

    rows = read_manifest(shared_data / "bench" / "paired4.csv")
    assert len(rows) >= 500
    torch_rec = EmotionRecognizer.load("fusion-paper")
    int8_rec = EmotionRecognizer.load(exported["int8"])
    prepared = [torch_rec.prepare(u.audio, u.text) for u in rows]

    def probabilities(rec, size):
        for p in prepared:
            p.text_features = None  # computed per recognizer
        out = [q for i in range(0, len(prepared), size) for q in rec.predict_prepared(prepared[i : i + size])]
        return np.array([[q.probabilities[c] for c in rec.labels] for q in out])

    want = probabilities(torch_rec, 1)
    assert np.abs(probabilities(torch_rec, 8) - want).max() <= 1e-5  # PyTorch's answer ignores batching
    for size in (1, 8):
        got = probabilities(int8_rec, size)
        worst = np.abs(got - want).max(axis=1)
        summary = f"batches of {size}: labels agree on {(want.argmax(1) == got.argmax(1)).mean():.2%}, max {worst.max():.4f}"
        assert (want.argmax(1) == got.argmax(1)).mean() >= 0.99, summary
        assert worst.max() <= 0.02, summary
        assert worst.max() > 0  # it really is a different (quantised) model
    # One pass over all 560 clips: activation scales are per batch, so the drift grows with the
    # batch (measured: 1 clip of 560 at 0.023; without the input split, 31 clips, worst 0.088).
    got = probabilities(int8_rec, len(prepared))
    worst = np.abs(got - want).max(axis=1)
    assert (worst <= 0.02).mean() >= 0.995 and worst.max() <= 0.03, f"one batch: max {worst.max():.4f}"


def test_run_folder_with_onnx_backend_is_exported_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOFUSION_CACHE", str(tmp_path))
    first = EmotionRecognizer.load(backend="onnx-int8")  # the default, in onnxruntime: the paper's model
    assert first.name == "M-CBLA-BLR"
    cached = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and cached[0].name.endswith("-int8.onnx")
    stamp = cached[0].stat().st_mtime_ns
    again = EmotionRecognizer.load(backend="onnx-int8")
    assert again.backend.path == cached[0] and cached[0].stat().st_mtime_ns == stamp
    p = first.predict(str(EXAMPLES[0]), TEXTS[0])
    assert p.label == EmotionRecognizer.load("fusion-paper").predict(str(EXAMPLES[0]), TEXTS[0]).label


def test_predict_cli_with_onnx_backend(exported, capsys):
    args = ["predict", str(EXAMPLES[1]), "--text", TEXTS[1], "--json"]
    assert main([*args, "--model", "fusion-paper"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert main([*args, "--model", str(exported["fp32"]), "--backend", "onnx"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["label"] == want["label"]
    assert max(abs(got["probabilities"][c] - want["probabilities"][c]) for c in want["probabilities"]) <= 1e-4


def test_service_with_onnx_backend_answers_like_torch(exported):
    from fastapi.testclient import TestClient

    from emofusion.service.app import create_app

    audio = EXAMPLES[2].read_bytes()
    answers = []
    for recognizer in (EmotionRecognizer.load("fusion-paper"), EmotionRecognizer.load(exported["int8"])):
        with TestClient(create_app(recognizer)) as client:
            r = client.post("/v1/predict", files={"audio": ("clip.flac", audio)}, data={"text": TEXTS[2]})
            assert r.status_code == 200, r.text
            answers.append(r.json())
    assert answers[1]["label"] == answers[0]["label"]
    assert max(abs(answers[1]["probabilities"][c] - answers[0]["probabilities"][c]) for c in answers[0]["probabilities"]) <= 0.02


class FrozenBranch(UnimodalClassifier):
    """A model with a Python branch on an input value: a tracer records only the example's branch
    (its longest transcript has 6 words), so the graph would be wrong for shorter transcripts."""

    def forward(self, tokens=None, text_lengths=None, **_):
        logits = super().forward(tokens=tokens, text_lengths=text_lengths)
        return logits * (3.0 if int(text_lengths.max()) > 5 else 1.0)


def test_a_model_that_cannot_be_exported_faithfully_is_refused_and_no_file_written(shipped, tmp_path):
    from emofusion.artifacts import TrainedModel
    from emofusion.features.pipeline import FeaturePipeline
    from emofusion.models.text import TextBiLSTMEncoder

    torch.manual_seed(0)
    table = torch.randn(50, 8)
    table[:2] = 0
    model = FrozenBranch("T-BL", TextBiLSTMEncoder(table, 16), 4, 0.0).eval()
    pipeline = FeaturePipeline(frozenset({"text"}), vocabulary=shipped.pipeline.vocabulary)
    trained = TrainedModel("T-BL", ("ang", "exc", "neu", "sad"), model, pipeline, {})
    out = tmp_path / "broken.onnx"
    with pytest.raises(ExportError, match="disagrees with PyTorch"):
        export_onnx(trained, out)
    assert not list(tmp_path.iterdir())
    # The same model without the branch exports: the refusal is about the branch.
    plain = UnimodalClassifier("T-BL", model.text_encoder, 4, 0.0).eval()
    plain.head.load_state_dict(model.head.state_dict())
    assert export_onnx(TrainedModel("T-BL", trained.labels, plain, pipeline, {}), out).max_difference <= 1e-4


def test_bad_export_requests_get_clear_errors(tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path / "model.pt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "not a trained model folder" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="backend 'onnx'"):
        EmotionRecognizer.load(tmp_path / "m.onnx", backend="torch")
    with pytest.raises(ConfigError, match="unknown backend"):
        EmotionRecognizer.load(backend="tensorrt")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a loadable ONNX model"):
        EmotionRecognizer.load(tmp_path / "junk.onnx")


def test_a_missing_extra_names_its_install_command():
    with pytest.raises(MissingExtraError, match=r'pip install "emofusion\[onnx\]"'):
        require("emofusion_no_such_module", "onnx", "ONNX export")


def test_a_model_on_pretrained_encoder_features_is_refused(shipped, tmp_path):
    from emofusion.artifacts import TrainedModel
    from emofusion.features.pipeline import FeaturePipeline

    pipeline = FeaturePipeline(frozenset({"speech"}), speech_kind="whisper")
    trained = TrainedModel("S-WT", ("ang", "exc", "neu", "sad"), shipped.model, pipeline, {})
    with pytest.raises(ExportError, match="pretrained encoders"):
        export_onnx(trained, tmp_path / "s-wt.onnx")
    assert not list(tmp_path.iterdir())


def test_exporting_the_shipped_encoder_default_is_refused_clearly_and_writes_nothing(tmp_path, capsys):
    from emofusion.inference.shipped import SHIPPED_MODELS

    out = tmp_path / "m-wt-st.onnx"
    assert main(["export", str(SHIPPED_MODELS["fusion-encoders"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "M-WTV-ST reads features of pretrained encoders" in err and "Table-1 models" in err
    assert "Traceback" not in err and not out.exists()
