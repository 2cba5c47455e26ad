"""The Whisper encoder in PyTorch: its model.bin reader on a hand-made file, parity with CTranslate2 on real
clips (tiny.en and base), every layer from one pass, 30-s pieces, bad input."""

from __future__ import annotations

import struct
import threading

import numpy as np
import pytest

from emofusion.errors import AudioError, ConfigError
from emofusion.features.encoders.whisper_torch import dequantized, read_model_bin

SIZES = ("tiny.en", "base")
# Parity tolerance against CTranslate2's float32 encode, relative to the output's largest magnitude:
# the same fp16 weights upcast to float32, so only the order of float32 sums differs (oneDNN vs
# torch GEMMs, attention kernels). Measured 5.8e-5 (tiny.en, max |out| 10) and 5.2e-5 (base, 18)
# of the scale; 3e-4 leaves 5x headroom. Mistakes measured on one clip (tiny.en / base): a tanh GELU
# 1.6e-2 / 1.2e-1, LayerNorm epsilon 1e-6 instead of 1e-5 1.3e-3 / 3.6e-4, positions off by one 1.3 / 1.2.
PARITY_RTOL = 3e-4


# --- model.bin reader -------------------------------------------------------------------------


def _string(s: str) -> bytes:
    return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"


def _variable(name: str, array: np.ndarray, type_id: int, raw: bytes | None = None) -> bytes:
    raw = array.tobytes() if raw is None else raw
    head = _string(name) + struct.pack("<B", array.ndim) + b"".join(struct.pack("<I", d) for d in array.shape)
    return head + struct.pack("<B", type_id) + struct.pack("<I", len(raw)) + raw


def write_model_bin(path, variables: list[bytes], version: int = 6) -> None:
    body = struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<I", 3)
    body += struct.pack("<I", len(variables)) + b"".join(variables) + struct.pack("<I", 0)
    path.write_bytes(body)


def test_model_bin_reader_returns_the_arrays_written_by_hand(tmp_path):
    f32 = np.array([[1.5, -2.0, 3.25]], dtype=np.float32)
    f16 = np.array([0.5, -1.0], dtype=np.float16)
    q8 = np.array([[127, -64], [10, 0]], dtype=np.int8)
    scale8 = np.array([127 / 2.0, 127 / 10.0], dtype=np.float32)  # rows whose max |w| was 2 and 10
    q16 = np.array([1024, -512], dtype=np.int16)
    scale16 = np.array(1024.0, dtype=np.float32)  # int16: one scale for the tensor
    # bfloat16 of 1.0 is 0x3F80, of -2.5 is 0xC020 (the upper halves of their float32 bits).
    bf16 = struct.pack("<HH", 0x3F80, 0xC020)
    path = tmp_path / "model.bin"
    write_model_bin(path, [
        _variable("decoder/skipped", np.zeros(3, np.float32), 0),
        _variable("encoder/f32", f32, 0),
        _variable("encoder/f16", f16, 4),
        _variable("encoder/q", q8, 1),
        _variable("encoder/q_scale", scale8, 0),
        _variable("encoder/w16", q16, 2),
        _variable("encoder/w16_scale", scale16, 0),
        _variable("encoder/bf", np.zeros(2, np.uint16), 5, raw=bf16),
        _variable("encoder/num_heads", np.array(6, np.int16), 2),
    ])
    spec, revision, v = read_model_bin(path, prefix="encoder/")
    assert (spec, revision) == ("WhisperSpec", 3)
    assert "decoder/skipped" not in v
    np.testing.assert_array_equal(v["encoder/f32"], f32)
    assert v["encoder/f16"].dtype == np.float16 and v["encoder/f16"].tolist() == [0.5, -1.0]
    assert v["encoder/bf"].tolist() == [1.0, -2.5]
    assert int(v["encoder/num_heads"]) == 6
    # int8 rows divided by their own scale: 127 / (127/2) = 2, -64 / (127/2) = -1.00787...; 10 / 12.7 = 0.787...
    np.testing.assert_allclose(dequantized(v, "encoder/q"), [[2.0, -128 / 127], [100 / 127, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(dequantized(v, "encoder/w16"), [1.0, -0.5])
    assert dequantized(v, "encoder/f16").dtype == np.float32


def test_model_bin_reader_refuses_truncated_and_unknown_files(tmp_path):
    path = tmp_path / "model.bin"
    write_model_bin(path, [_variable("encoder/a", np.arange(4, dtype=np.float32), 0)])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ConfigError, match="truncated"):
        read_model_bin(path)
    write_model_bin(path, [], version=2)
    with pytest.raises(ConfigError, match="binary version 2 is not supported"):
        read_model_bin(path)
    write_model_bin(path, [_variable("encoder/a", np.arange(4, dtype=np.float32), 9)])
    with pytest.raises(ConfigError, match="unknown CTranslate2 dtype id 9"):
        read_model_bin(path)


# --- the encoder on real clips ------------------------------------------------------------------


@pytest.fixture(scope="module", params=SIZES)
def encoder(request, encoders_extra):
    from emofusion.features.encoders.whisper_torch import shared_torch_encoder

    try:
        return shared_torch_encoder(request.param)
    except Exception as err:  # Whisper base's part packages absent: skip with the install command
        from emofusion.errors import MissingExtraError

        if isinstance(err, MissingExtraError):
            pytest.skip(str(err))
        raise


@pytest.fixture(scope="module")
def clips(shared_data):
    from emofusion.audio import load_audio

    paths = [shared_data / "ravdess" / p for p in (
        "Actor_01/03-01-05-01-02-01-01.flac", "Actor_08/03-01-04-02-01-02-08.flac", "Actor_19/03-01-01-01-02-01-19.flac")]
    paths += [shared_data / "tess" / p for p in ("OAF/OAF_back_angry.flac", "YAF/YAF_youth_sad.flac")]
    return [load_audio(p).samples for p in paths]


def test_last_layer_matches_ctranslate2_on_real_ravdess_and_tess_clips(encoder, clips):
    import ctranslate2

    model = ctranslate2.models.Whisper(str(encoder.folder), device="cpu", compute_type="float32", intra_threads=1)
    for samples in clips:
        ours = encoder.frames(samples)
        mel = encoder.log_mel(samples)
        if mel.shape[1] % 2:
            mel = np.concatenate([mel, mel[:, -1:]], axis=1)
        ref = np.asarray(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True))[0]
        ref = ref[: len(ours)]
        assert ours.shape == ref.shape == ((len(samples) // 160 + 1) // 2, encoder.dim)
        scale = np.abs(ref).max()
        assert scale > 5  # a real output, not zeros
        assert np.abs(ours - ref).max() <= PARITY_RTOL * scale


def test_sizes_have_the_published_shapes(encoder):
    assert (encoder.name, encoder.dim, encoder.n_layers) in {("whisper-tiny.en", 384, 4), ("whisper-base", 512, 6)}


def test_all_layers_is_every_frames_call_and_the_output_is_the_last_block_layer_normed(encoder, clips):
    samples = clips[0]
    stack = encoder.all_layers(samples, final=True)
    assert stack.shape == (encoder.n_layers + 2, (len(samples) // 160 + 1) // 2, encoder.dim)
    np.testing.assert_array_equal(encoder.all_layers(samples), stack[:-1])
    for k in (1, encoder.n_layers // 2, encoder.n_layers):
        np.testing.assert_allclose(encoder.frames(samples, layer=k), stack[k], atol=1e-5)
    # layer=None: LayerNorm of the last block with the file's gamma/beta, computed here in numpy.
    _, _, v = read_model_bin(encoder.folder / "model.bin", prefix="encoder/layer_norm/")
    last = stack[encoder.n_layers].astype(np.float64)
    normed = (last - last.mean(1, keepdims=True)) / np.sqrt(last.var(1, keepdims=True) + 1e-5)
    expected = normed * v["encoder/layer_norm/gamma"] + v["encoder/layer_norm/beta"]
    np.testing.assert_allclose(encoder.frames(samples), expected, atol=2e-3 * np.abs(expected).max())
    # Layers differ: each block changes the stream.
    assert all(np.abs(stack[k + 1] - stack[k]).mean() > 1e-2 for k in range(encoder.n_layers))


def test_recordings_over_30_s_are_cut_in_30_s_pieces(encoder, clips):
    from emofusion.features.encoders.whisper import n_frames

    long = np.concatenate([clips[0]] * 10)[: 16_000 * 31 + 480]  # 31.03 s: a 3000-frame piece and a 103-frame one (odd)
    out = encoder.frames(long, layer=2)
    assert out.shape == (n_frames(len(long)), encoder.dim) == (1500 + 52, encoder.dim)
    first = encoder.frames(long[: 16_000 * 30], layer=2)  # the first piece alone gives the same frames...
    # ... except where the STFT window at the 30-s edge sees the samples after it (the last mel frame;
    # attention spreads that small change over the piece). The log-mel normalisation (max - 8 dB)
    # sees the whole recording, the same clip repeated, so it is the same in both.
    scale = np.abs(first).max()
    assert np.abs(out[:1500] - first).mean() <= 1e-4 * scale
    assert np.abs(out[:1490] - first[:1490]).max() <= 2e-3 * scale
    assert np.abs(out[1500:] - first[:52]).mean() > 1e-2 * np.abs(first).mean()  # the second piece is its own


def test_bad_input_and_bad_layers_are_refused(encoder):
    with pytest.raises(AudioError, match="too short"):
        encoder.frames(np.zeros(100, np.float32))
    with pytest.raises(ConfigError, match=rf"layers 0\.\.{encoder.n_layers}"):
        encoder.frames(np.zeros(16_000, np.float32), layer=encoder.n_layers + 1)


def test_unknown_size_and_bad_layer_list_fail_at_load(encoders_extra):
    from emofusion.features.encoders.whisper_torch import TorchWhisperEncoder

    with pytest.raises(ConfigError, match="unknown Whisper model size 'huge'"):
        TorchWhisperEncoder("huge")
    with pytest.raises(ConfigError, match=r"layers 0\.\.4"):
        TorchWhisperEncoder("tiny.en", layers=[2, 7])


def test_shared_encoder_is_one_per_size_across_threads_and_restores_torch_threads(encoders_extra):
    import torch

    from emofusion.features.encoders.whisper_torch import shared_torch_encoder

    got = []
    threads = [threading.Thread(target=lambda: got.append(shared_torch_encoder("tiny.en"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(e is got[0] for e in got)
    before = torch.get_num_threads()
    got[0].frames(np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32))
    assert torch.get_num_threads() == before


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
def test_cuda_matches_cpu(encoders_extra, clips):
    from emofusion.features.encoders.whisper_torch import TorchWhisperEncoder, shared_torch_encoder

    gpu = TorchWhisperEncoder("tiny.en", device="cuda")
    cpu = shared_torch_encoder("tiny.en")
    ref = cpu.all_layers(clips[0])
    # TF32 matmuls on recent GPUs round to 10-bit mantissas: compare at the parity tolerance's scale x10.
    assert np.abs(gpu.all_layers(clips[0]) - ref).max() <= 10 * PARITY_RTOL * np.abs(ref).max()
