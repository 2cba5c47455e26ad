"""Padding never changes a prediction: helpers against hand-computed cases, the LSTM against a
packed nn.LSTM, and every model alone vs. in a batch vs. padded to the paper's 500 / 100."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emofusion.features.acoustic import AcousticConfig
from emofusion.models import ModelConfig, build_model
from emofusion.models.layers import AdditiveAttention, MaskedConvStack, MaskedLSTM, reverse_within_lengths
from emofusion.models.masking import check_lengths, length_mask, masked_mean, masked_softmax, pooled_lengths

ATOL = 1e-5


def test_length_mask_mean_softmax_by_hand():
    lengths = torch.tensor([2, 3, 1])
    mask = length_mask(lengths, 4)
    assert mask.tolist() == [[True, True, False, False], [True, True, True, False], [True, False, False, False]]
    x = torch.tensor([[1.0, 3.0, 100.0, 100.0], [1.0, 2.0, 6.0, -50.0], [7.0, 9.0, 9.0, 9.0]]).unsqueeze(-1)
    assert masked_mean(x, mask).squeeze(-1).tolist() == [2.0, 3.0, 7.0]
    scores = torch.tensor([[0.0, 0.0, 99.0, 99.0], [0.0, 0.0, 0.0, 1e4], [5.0, 1.0, 1.0, 1.0]])
    w = masked_softmax(scores, mask)
    expected = torch.tensor([[0.5, 0.5, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0], [1.0, 0, 0, 0]])
    torch.testing.assert_close(w, expected)
    assert pooled_lengths(torch.tensor([1, 2, 3, 4, 5, 100]), 2).tolist() == [1, 1, 2, 2, 3, 50]


def test_reverse_within_lengths_by_hand_and_involution():
    x = torch.arange(1, 11, dtype=torch.float32).view(2, 5, 1)
    rev = reverse_within_lengths(x, torch.tensor([3, 5]))
    assert rev.squeeze(-1).tolist() == [[3, 2, 1, 4, 5], [10, 9, 8, 7, 6]]
    assert torch.equal(reverse_within_lengths(rev, torch.tensor([3, 5])), x)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_masked_lstm_equals_packed_nn_lstm(bidirectional):
    """Independent reference: PyTorch's packed LSTM with the same weights."""
    torch.manual_seed(0)
    ours = MaskedLSTM(5, 7, bidirectional=bidirectional)
    ref = torch.nn.LSTM(5, 7, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for suffix, lstm in (("", ours.forward_lstm), ("_reverse", ours.backward_lstm)):
            if lstm is None:
                continue
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{kind}_l0{suffix}").copy_(getattr(lstm, f"{kind}_l0"))
    lengths = torch.tensor([6, 1, 4, 6, 2])
    x = torch.randn(5, 6, 5)
    x[~length_mask(lengths, 6)] = 1e3  # garbage in the padding must not matter
    outputs, final = ours(x, lengths)
    packed, (h_n, _) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    ref_out, _ = pad_packed_sequence(packed, batch_first=True, total_length=6)
    torch.testing.assert_close(outputs, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(final, torch.cat(list(h_n), dim=-1), atol=ATOL, rtol=0)


def test_conv_stack_alone_equals_padded_with_garbage():
    torch.manual_seed(1)
    convs = MaskedConvStack(3, (4, 5, 6), (3, 5, 3), (2, 1, 3), leaky_slope=0.01)
    x = torch.randn(1, 7, 3)
    alone, alone_len = convs(x, torch.tensor([7]))
    assert alone_len.tolist() == [2] and alone.shape == (1, 2, 6)  # 7 -> ceil(7/2)=4 -> ceil(4/3)=2
    padded = torch.cat([x, torch.full((1, 6, 3), -7.0)], dim=1)  # 13 frames, 6 of garbage
    batch = torch.cat([padded, torch.randn(1, 13, 3)])
    out, lengths = convs(batch, torch.tensor([7, 13]))
    assert lengths.tolist() == [2, 3]
    torch.testing.assert_close(out[:1, :2], alone, atol=ATOL, rtol=0)
    assert (out[0, 2:] == 0).all()


def test_attention_ignores_padding():
    torch.manual_seed(2)
    att = AdditiveAttention(4, 3)
    h = torch.randn(1, 5, 4)
    ctx, w = att(h, length_mask(torch.tensor([5]), 5))
    h_pad = torch.cat([h, torch.randn(1, 4, 4) * 100], dim=1)
    ctx_pad, w_pad = att(h_pad, length_mask(torch.tensor([5]), 9))
    torch.testing.assert_close(ctx_pad, ctx, atol=ATOL, rtol=0)
    assert w_pad[0, 5:].abs().sum() == 0
    torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    # hand check: context is the weight-averaged input
    torch.testing.assert_close(ctx[0], (w[0].unsqueeze(-1) * h[0]).sum(0), atol=ATOL, rtol=0)


# --- whole models -------------------------------------------------------------------------------

torch.manual_seed(3)
EMB = torch.randn(50, 6)
PAPER_SHAPE = AcousticConfig().input_shape  # (100, 34)
SPEECH_MODELS = ["S-DNN", "S-CNN", "S-CL", "S-CBLA"]
TEXT_MODELS = ["T-LSTM", "T-BL", "M-CBLA-BLR", "M-D-BL"]


def _model(name):
    torch.manual_seed(4)
    return build_model(name, n_classes=4, embeddings=EMB, speech_shape=PAPER_SHAPE).eval()  # paper-size


def _speech_batch(frames: list[torch.Tensor], pad_to: int, garbage: float = 0.0):
    out = torch.full((len(frames), pad_to, 34), garbage)
    for i, f in enumerate(frames):
        out[i, : len(f)] = f
    return out, torch.tensor([len(f) for f in frames])


def _token_batch(seqs: list[torch.Tensor], pad_to: int):
    out = torch.zeros(len(seqs), pad_to, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, torch.tensor([len(s) for s in seqs])


@pytest.mark.parametrize("name", SPEECH_MODELS)
@torch.no_grad()
def test_speech_model_alone_equals_padded_in_a_batch(name):
    """A 40-frame utterance alone (T=40; S-DNN zero-fills to 100 itself) vs padded to 100 among
    longer utterances, with non-zero junk in its padding frames."""
    model = _model(name)
    torch.manual_seed(5)
    utt = torch.randn(40, 34)
    others = [torch.randn(100, 34), torch.randn(73, 34)]
    alone = model(speech=utt.unsqueeze(0), speech_lengths=torch.tensor([40]))
    speech, lengths = _speech_batch([others[0], utt, others[1]], 100, garbage=3.0)
    batched = model(speech=speech, speech_lengths=lengths)
    torch.testing.assert_close(batched[1:2], alone, atol=ATOL, rtol=0)
    for i, other in ((0, others[0]), (2, others[1])):
        single = model(speech=other.unsqueeze(0), speech_lengths=torch.tensor([len(other)]))
        torch.testing.assert_close(batched[i : i + 1], single, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", TEXT_MODELS)
@torch.no_grad()
def test_text_padding_to_batch_longest_equals_padding_to_500(name):
    model = _model(name)
    torch.manual_seed(6)
    seqs = [torch.randint(1, 50, (n,)) for n in (3, 11, 1, 7)]
    speech, speech_lengths = _speech_batch([torch.randn(n, 34) for n in (100, 20, 55, 9)], 100)
    speech_args = dict(speech=speech, speech_lengths=speech_lengths) if "speech" in model.modalities else {}
    short, lengths = _token_batch(seqs, 11)
    long, lengths500 = _token_batch(seqs, 500)
    a = model(tokens=short, text_lengths=lengths, **speech_args)
    b = model(tokens=long, text_lengths=lengths500, **speech_args)
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    # each transcript alone (no padding at all) gives its row of the batch
    for i, s in enumerate(seqs):
        one_speech = {k: v[i : i + 1] for k, v in speech_args.items()}
        if one_speech:  # the utterance's frames unpadded, too
            one_speech["speech"] = one_speech["speech"][:, : int(speech_lengths[i])]
        alone = model(tokens=s.unsqueeze(0), text_lengths=torch.tensor([len(s)]), **one_speech)
        torch.testing.assert_close(a[i : i + 1], alone, atol=ATOL, rtol=0)


@torch.no_grad()
def test_padding_token_ids_beyond_length_are_never_read():
    model = _model("T-BL")
    tokens = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 49, 12]])  # row 1 has junk after its length
    out = model(tokens=tokens, text_lengths=torch.tensor([3, 3]))
    torch.testing.assert_close(out[0], out[1], atol=ATOL, rtol=0)


def test_bad_inputs_get_specific_errors():
    small = ModelConfig(speech_lstm_hidden=4, text_lstm_hidden=4)
    model = build_model("M-CL-BL", n_classes=4, embeddings=EMB, speech_shape=PAPER_SHAPE, config=small)
    speech, tokens = torch.randn(2, 10, 34), torch.randint(1, 50, (2, 5))
    ok = dict(speech=speech, speech_lengths=torch.tensor([10, 3]), tokens=tokens, text_lengths=torch.tensor([5, 2]))
    with pytest.raises(ValueError, match="needs speech"):
        model(**{**ok, "speech": None})
    with pytest.raises(ValueError, match="needs tokens"):
        model(**{**ok, "tokens": None})
    with pytest.raises(ValueError, match="speech_lengths is required"):
        model(**{**ok, "speech_lengths": None})
    with pytest.raises(ValueError, match=r"speech_lengths must lie in \[1, 10\].*max 11"):
        model(**{**ok, "speech_lengths": torch.tensor([11, 3])})
    with pytest.raises(ValueError, match=r"text_lengths must lie in \[1, 5\].*min 0"):
        model(**{**ok, "text_lengths": torch.tensor([0, 2])})
    with pytest.raises(ValueError, match=r"shape \(B, T>=1, 34\)"):
        model(**{**ok, "speech": torch.randn(2, 10, 13)})
    with pytest.raises(ValueError, match="integer tensor"):
        model(**{**ok, "tokens": tokens.float()})
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 50\).*max 50"):
        model(**{**ok, "tokens": torch.tensor([[1, 2, 3, 4, 50], [1, 1, 1, 1, 1]])})
    with pytest.raises(ValueError, match="batches differ in size"):
        model(**{**ok, "tokens": tokens[:1], "text_lengths": torch.tensor([5])})
    with pytest.raises(ValueError, match="at most 100 frames"):
        build_model("S-DNN", n_classes=4, speech_shape=PAPER_SHAPE)(speech=torch.randn(1, 101, 34), speech_lengths=torch.tensor([101]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        check_lengths(torch.tensor([1, 2]), 3, 5, "speech")
