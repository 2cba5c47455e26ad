"""Seeded waveform augmentation at 16 kHz: noise, babble, reverberation, telephone band, gain, speed.

Everything is generated here from a ``numpy.random.Generator``: coloured noise by spectral shaping,
babble from other training clips, room impulse responses as exponentially decaying noise behind a
direct path, a telephone channel with G.711 mu-law as its lossy codec. Nothing is downloaded and
nothing is read from disk, so the same generator state always gives the same samples.

:func:`augment` applies a random chain of these to one clip for training (`AugmentConfig` says how
often and how strongly); :func:`test_condition` builds the fixed conditions the noise benchmark
scores (white noise and 4-talker babble at 10 dB SNR, a telephone band) with the same functions.

Signals are mono float arrays with full scale 1.0 (what :func:`emofusion.audio.load_audio`
returns). A result is never clipped: where a transform would push a peak past full scale, the
whole clip is scaled down instead (see :func:`_protect_peak`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping, Sequence

import numpy as np
import scipy.signal
import soxr

from emofusion.errors import AudioError, ConfigError

SAMPLE_RATE = 16_000
TELEPHONE_RATE = 8_000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
NOISE_COLOURS = ("white", "pink", "brown")
# Spectral slope of each colour: power ~ 1 / f**exponent.
_COLOUR_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Peak a rescued clip is scaled to: just under full scale, so a later int16 write cannot wrap.
SAFE_PEAK = 0.99
# G.711 mu-law (ITU-T G.711, as in the reference implementation g711.c): 14-bit magnitudes, a bias
# of 33 (0x84 >> 2) and 8 segments whose upper ends are these.
_MULAW_BIAS = 0x84
_MULAW_CLIP = 8159
_MULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass(frozen=True)
class AugmentConfig:
    """How often each transform is applied to a training clip, and within what range.

    Every ``p_*`` is the probability that a clip gets that transform (drawn independently); every
    range is ``(low, high)``, drawn uniformly.
    """

    # Half the clips noisy: a model must still see clean speech, which is what most users record.
    p_noise: float = 0.5
    # The range: 0 dB (as loud as the speech) to 20 dB (barely audible hiss).
    snr_db: tuple[float, float] = (0.0, 20.0)
    # Generated noise colours: white (hiss), pink (fans, rain), brown (rumble, traffic).
    noise_colours: tuple[str, ...] = NOISE_COLOURS
    # Share of the noisy clips whose noise is babble rather than coloured noise (when a pool is given):
    # babble is the hardest noise for emotion, as it carries other voices' prosody.
    p_babble: float = 0.5
    # Talkers in a babble: 3-6, where single words stop being intelligible but voices remain.
    babble_talkers: tuple[int, int] = (3, 6)
    # A third of the clips in a room: corpora are recorded dry, real users rarely are.
    p_reverb: float = 0.3
    # Reverberation time from a furnished office (0.2 s) to a bare hall (1.0 s).
    rt60_s: tuple[float, float] = (0.2, 1.0)
    # Direct-to-reverberant energy ratio: near a laptop microphone (10 dB) to across a room (0 dB).
    drr_db: tuple[float, float] = (0.0, 10.0)
    # A fifth of the clips through a telephone channel: calls are a common source of recordings.
    p_telephone: float = 0.2
    # Half the clips at another level: recordings range from whispered-into to far from the microphone.
    p_gain: float = 0.5
    # The range.
    gain_db: tuple[float, float] = (-10.0, 10.0)
    # Half the clips at another tempo (and pitch, as Kaldi's speed perturbation): speakers differ.
    p_speed: float = 0.5
    # The range: +-10% keeps voices natural.
    speed: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_"):
                if not _real(value) or not 0.0 <= value <= 1.0:
                    raise ConfigError(f"augmentation {f.name} must be a probability in [0, 1], got {value!r}")
        for name, lowest, highest in (("snr_db", -30.0, 60.0), ("rt60_s", 0.05, 3.0), ("drr_db", -20.0, 30.0),
                                      ("gain_db", -40.0, 40.0), ("speed", 0.5, 2.0), ("babble_talkers", 1, 20)):
            value = getattr(self, name)
            if (not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_real(v) for v in value)
                    or not lowest <= value[0] <= value[1] <= highest):
                raise ConfigError(
                    f"augmentation {name} must be a range (low, high) with {lowest} <= low <= high <= {highest}, "
                    f"got {value!r}"
                )
        if isinstance(self.babble_talkers, (tuple, list)) and not all(isinstance(v, int) for v in self.babble_talkers):
            raise ConfigError(f"augmentation babble_talkers must be whole numbers, got {self.babble_talkers!r}")
        unknown = [c for c in self.noise_colours if c not in NOISE_COLOURS] if isinstance(self.noise_colours, (tuple, list)) else [self.noise_colours]
        if unknown or not self.noise_colours:
            raise ConfigError(f"augmentation noise_colours must be some of {', '.join(NOISE_COLOURS)}, got {self.noise_colours!r}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "AugmentConfig":
        if not isinstance(d, Mapping):
            raise ConfigError(f"augmentation config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown augmentation option(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# The configurations `TrainConfig.augment` may name.
AUGMENT_CONFIGS: dict[str, AugmentConfig] = {
    "default": AugmentConfig(),
    # Only what the noise benchmark tests (noise, babble, telephone), at the same probabilities.
    "noise": AugmentConfig(p_reverb=0.0, p_gain=0.0, p_speed=0.0),
    # Half the default's rates and no speed change (which shifts pitch, an emotion cue): 57% of the
    # clips get no noise, room or channel; tried because "default" cost RAVDESS -> TESS transfer
    # (docs/results/augmentation.md).
    "light": AugmentConfig(p_noise=0.25, p_reverb=0.15, p_telephone=0.1, p_gain=0.25, p_speed=0.0),
}


def augment_config(name: str) -> AugmentConfig:
    """The configuration registered as ``name`` in `AUGMENT_CONFIGS`.

    Raises:
        ConfigError: no configuration has that name.
    """
    if name not in AUGMENT_CONFIGS:
        raise ConfigError(f"unknown augmentation {name!r}; known: {', '.join(sorted(AUGMENT_CONFIGS))}")
    return AUGMENT_CONFIGS[name]


def augment(
    samples: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(),
    *,
    babble_pool: Sequence[np.ndarray] | None = None,
    exclude: int | None = None,
) -> np.ndarray:
    """One random augmentation of a 16-kHz clip: speed, room, noise, telephone, gain, in that order
    (the talker, the room, what else sounds in it, the channel, the level).

    Arguments:
        samples: the clip, mono, full scale 1.0.
        rng: the only source of randomness: the same state gives the same result.
        config: probabilities and ranges.
        babble_pool: other training clips (16 kHz) to mix babble from; without it every noise is
            coloured noise.
        exclude: the index in ``babble_pool`` of this clip itself, never mixed into its own babble.

    Returns:
        float64 samples at 16 kHz, peak at most 1 (the length changes with speed).

    Raises:
        AudioError: ``samples`` is not a finite, non-silent 1-D signal.
        ConfigError: ``rng`` or ``config`` has the wrong type.
    """
    x = _signal(samples)
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"augment needs a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(config, AugmentConfig):
        raise ConfigError(f"augment needs an AugmentConfig, got {type(config).__name__}")
    # Every decision is drawn up front, in a fixed order, so one transform's draws never shift another's.
    do_speed, do_reverb, do_noise, do_phone, do_gain = (
        rng.random() < p for p in (config.p_speed, config.p_reverb, config.p_noise, config.p_telephone, config.p_gain)
    )
    others = len(babble_pool or ()) - (exclude is not None)
    if do_speed:
        x = change_speed(x, rng.uniform(*config.speed))
    if do_reverb:
        rir = room_impulse_response(rng.uniform(*config.rt60_s), rng.uniform(*config.drr_db), rng)
        x = reverberate(x, rir)
    if do_noise:
        snr = rng.uniform(*config.snr_db)
        if others >= 1 and rng.random() < config.p_babble:
            talkers = int(rng.integers(config.babble_talkers[0], config.babble_talkers[1] + 1))
            noise = babble_noise(len(x), babble_pool, talkers, rng, exclude=exclude)
        else:
            noise = coloured_noise(len(x), config.noise_colours[int(rng.integers(len(config.noise_colours)))], rng)
        x = add_noise(x, noise, snr)
    if do_phone:
        x = telephone_band(x)
    if do_gain:
        x = apply_gain(x, rng.uniform(*config.gain_db))
    return x


# ------------------------------------------------------------------ the benchmark's conditions

CONDITIONS = ("clean", "white-10dB", "babble4-10dB", "telephone")


def test_condition(
    name: str, samples: np.ndarray, rng: np.random.Generator, *, babble_pool: Sequence[np.ndarray] | None = None,
    exclude: int | None = None,
) -> np.ndarray:
    """A clip under one of the noise benchmark's fixed `CONDITIONS` (issue 17's noise target).

    ``"white-10dB"``: white noise at 10 dB SNR; ``"babble4-10dB"``: 4 talkers from ``babble_pool``
    (other held-out clips) at 10 dB SNR; ``"telephone"``: :func:`telephone_band`; ``"clean"``: as given.

    Raises:
        ConfigError: an unknown condition, or babble without at least one other clip in the pool.
    """
    x = _signal(samples)
    if name == "clean":
        return x
    if name == "white-10dB":
        return add_noise(x, coloured_noise(len(x), "white", rng), 10.0)
    if name == "babble4-10dB":
        if babble_pool is None or len(babble_pool) - (exclude is not None) < 1:
            raise ConfigError("the babble condition needs other clips to mix (babble_pool)")
        return add_noise(x, babble_noise(len(x), babble_pool, 4, rng, exclude=exclude), 10.0)
    if name == "telephone":
        return telephone_band(x)
    raise ConfigError(f"unknown test condition {name!r}; known: {', '.join(CONDITIONS)}")


test_condition.__test__ = False  # a library function, not a pytest test


# ------------------------------------------------------------------ the transforms


def add_noise(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``samples`` plus ``noise`` scaled so that signal power / noise power is exactly ``snr_db``.

    Powers are mean squares over the whole clip (pauses included), as most toolkits mix.

    Raises:
        AudioError: lengths differ, or either signal is silent.
        ConfigError: ``snr_db`` is not a finite number.
    """
    x, n = _signal(samples), np.asarray(noise, dtype=np.float64)
    if n.shape != x.shape:
        raise AudioError(f"noise of shape {n.shape} for a signal of shape {x.shape}")
    if not _real(snr_db) or not math.isfinite(snr_db):
        raise ConfigError(f"snr_db must be a finite number, got {snr_db!r}")
    p_signal, p_noise = float(np.mean(x * x)), float(np.mean(n * n))
    if p_noise <= 0.0 or not math.isfinite(p_noise):
        raise AudioError("the noise is silent or not finite: it cannot be mixed at an SNR")
    scale = math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return _protect_peak(x + scale * n)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of zero-mean noise with power 1 whose spectrum falls as 1/f**k (white 0, pink 1,
    brown 2): white Gaussian noise shaped in the frequency domain."""
    if colour not in _COLOUR_EXPONENT:
        raise ConfigError(f"unknown noise colour {colour!r}; known: {', '.join(NOISE_COLOURS)}")
    white = rng.standard_normal(n)
    if colour == "white":
        shaped = white - white.mean()
    else:
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE)
        # Amplitude ~ f**(-k/2) gives power ~ 1/f**k; the DC bin is dropped (infinite otherwise) and
        # the shape floors at 20 Hz, below which a microphone records no rumble worth modelling.
        gain = np.zeros_like(f)
        gain[1:] = np.maximum(f[1:], 20.0) ** (-_COLOUR_EXPONENT[colour] / 2.0)
        shaped = np.fft.irfft(spectrum * gain, n)
    power = float(np.mean(shaped * shaped))
    return shaped / math.sqrt(power) if power > 0 else shaped


def babble_noise(
    n: int, pool: Sequence[np.ndarray], talkers: int, rng: np.random.Generator, *, exclude: int | None = None
) -> np.ndarray:
    """``n`` samples of ``talkers`` voices from ``pool`` (never ``pool[exclude]``), each at equal power.

    A talker is a clip with its leading and trailing silence cut, looped from a random offset to
    length ``n``; the clips are drawn without replacement while the pool lasts.
    """
    candidates = [i for i in range(len(pool)) if i != exclude]
    if not candidates:
        raise ConfigError("babble needs at least one other clip in the pool")
    if isinstance(talkers, bool) or not isinstance(talkers, (int, np.integer)) or talkers < 1:
        raise ConfigError(f"babble talkers must be a positive whole number, got {talkers!r}")
    chosen = rng.choice(len(candidates), size=talkers, replace=talkers > len(candidates))
    out = np.zeros(n)
    for c in chosen:
        voice = _trim_silence(np.asarray(pool[candidates[int(c)]], dtype=np.float64))
        start = int(rng.integers(len(voice)))
        looped = np.resize(np.roll(voice, -start), n)  # np.resize repeats the array to fill n
        power = float(np.mean(looped * looped))
        if power > 0:
            out += looped / math.sqrt(power)
    return out


def room_impulse_response(rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A generated room impulse response at 16 kHz: a unit direct path, then Gaussian noise that
    decays by 60 dB in ``rt60_s`` seconds, scaled to ``drr_db`` below the direct path's energy.

    The tail starts 2.5 ms after the direct sound (the first reflections of a small room) and lasts
    until it is 60 dB down.
    """
    if not (_real(rt60_s) and rt60_s > 0 and _real(drr_db) and math.isfinite(drr_db)):
        raise ConfigError(f"rt60_s must be positive and drr_db finite, got {rt60_s!r}, {drr_db!r}")
    delay = int(0.0025 * SAMPLE_RATE)
    length = int(rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    # Amplitude exp(-t * 3 ln 10 / RT60) is energy down by 60 dB (10^-6) at t = RT60.
    tail = rng.standard_normal(length) * np.exp(-t * 3.0 * math.log(10.0) / rt60_s)
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / float(np.sum(tail * tail)))
    rir = np.zeros(delay + length)
    rir[0] = 1.0
    rir[delay:] += tail
    return rir


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``samples`` convolved with ``rir``, cut to the clip's length and brought back to its RMS
    level (the room changes the sound, not the level: gain is its own transform)."""
    x = _signal(samples)
    wet = scipy.signal.fftconvolve(x, np.asarray(rir, dtype=np.float64))[: len(x)]
    rms_in, rms_out = math.sqrt(float(np.mean(x * x))), math.sqrt(float(np.mean(wet * wet)))
    return _protect_peak(wet * (rms_in / rms_out) if rms_out > 0 else wet)


def telephone_band(samples: np.ndarray) -> np.ndarray:
    """A narrowband call: resample to 8 kHz, band-pass 300-3400 Hz, G.711 mu-law encode and decode
    (the lossy 8-bit codec of the public telephone network), back to 16 kHz."""
    x = _signal(samples)
    narrow = soxr.resample(x, SAMPLE_RATE, TELEPHONE_RATE, quality="HQ")
    # 4th-order Butterworth: 24 dB/octave outside the band, like the channel filters G.712 specifies.
    sos = scipy.signal.butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    narrow = scipy.signal.sosfilt(sos, narrow)
    peak = float(np.max(np.abs(narrow)))
    if peak > 1.0:
        narrow = narrow * (SAFE_PEAK / peak)  # the codec would clip at full scale
    decoded = mulaw_decode(mulaw_encode(narrow))
    return _protect_peak(soxr.resample(decoded, TELEPHONE_RATE, SAMPLE_RATE, quality="HQ"))


def mulaw_encode(samples: np.ndarray) -> np.ndarray:
    """G.711 mu-law codes (uint8) of samples with full scale 1.0, as the reference g711.c computes
    them from 16-bit PCM: 14-bit magnitude plus bias 33, segment number (3 bits) and 4 mantissa bits,
    every bit inverted. Values beyond full scale saturate."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int32)
    pcm = pcm >> 2  # arithmetic shift, as on the C short
    negative = pcm < 0
    magnitude = np.minimum(np.where(negative, -pcm, pcm), _MULAW_CLIP) + (_MULAW_BIAS >> 2)
    segment = np.searchsorted(_MULAW_SEGMENT_ENDS, magnitude, side="left")
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0xF)
    code = np.where(segment >= 8, 0x7F, code)  # beyond the last segment: the largest code
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """Samples (full scale 1.0, float64) of G.711 mu-law codes, as g711.c's ulaw2linear."""
    u = ~np.asarray(codes, dtype=np.uint8)
    u = u.astype(np.int32)
    t = (((u & 0x0F) << 3) + _MULAW_BIAS) << ((u & 0x70) >> 4)
    linear = np.where(u & 0x80, _MULAW_BIAS - t, t - _MULAW_BIAS)
    return linear / 32768.0


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times as fast (tempo and pitch together: resampling with soxr).
    The result has ``len / factor`` samples at 16 kHz."""
    if not _real(factor) or not 0.25 <= factor <= 4.0:
        raise ConfigError(f"speed factor must be a number in [0.25, 4], got {factor!r}")
    x = _signal(samples)
    if factor == 1.0:
        return x
    return _protect_peak(soxr.resample(x, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ"))


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """``samples`` scaled by ``gain_db`` decibels (never beyond full scale: see `_protect_peak`)."""
    if not _real(gain_db) or not math.isfinite(gain_db):
        raise ConfigError(f"gain_db must be a finite number, got {gain_db!r}")
    return _protect_peak(_signal(samples) * 10.0 ** (gain_db / 20.0))


# ------------------------------------------------------------------ helpers


def _protect_peak(x: np.ndarray) -> np.ndarray:
    """Scale the whole clip down to peak `SAFE_PEAK` if any sample exceeds full scale.

    Clipping would add distortion that neither the clean corpora nor the benchmark's conditions
    contain; scaling keeps every SNR and spectral shape, and both feature kinds hardly depend on
    level (the acoustic features normalise each clip to peak 1; Whisper's log-mel is normalised per
    clip), so the rescue costs the model nothing it could use.
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (SAFE_PEAK / peak) if peak > 1.0 else x


def _trim_silence(x: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """``x`` without leading/trailing samples below ``floor`` of its peak (RAVDESS clips open with
    about a second of silence, which would leave a babble talker mute for that long)."""
    loud = np.flatnonzero(np.abs(x) >= floor * float(np.max(np.abs(x)))) if x.size else np.array([], int)
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def _signal(samples) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0:
        raise AudioError(f"expected a non-empty mono signal of shape (samples,), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioError(f"expected float samples with full scale 1.0, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise AudioError("the audio contains NaN or infinite samples")
    if not np.any(x):
        raise AudioError("the audio is silent (all samples zero): there is nothing to augment")
    return x
