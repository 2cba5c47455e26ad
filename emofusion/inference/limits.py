"""What one prediction accepts: the limits the library, the CLI and the service share.

They are defined here once and passed down: the service builds its own `service.limits.Limits` on
top of these (adding the upload size) and hands `InputLimits` to `EmotionRecognizer.prepare`, so a
limit raised with `emofusion serve --max-audio-seconds 1200` is the limit the recogniser applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from emofusion.errors import ConfigError


@dataclass(frozen=True)
class InputLimits:
    """Arguments:
        max_audio_seconds: longest recording accepted. Ten minutes by default: longer input is almost
            certainly not one utterance, and refusing it bounds the work one call can cause.
        max_text_chars: longest transcript accepted; None accepts any length (the model reads at most
            its ``max_tokens`` tokens anyway). The service sets one, since it reads untrusted text.
    """

    max_audio_seconds: float = 600.0
    max_text_chars: int | None = None

    def __post_init__(self) -> None:
        if not self.max_audio_seconds > 0:
            raise ConfigError(f"max_audio_seconds must be positive, got {self.max_audio_seconds!r}")
        if self.max_text_chars is not None and self.max_text_chars < 1:
            raise ConfigError(f"max_text_chars must be positive, got {self.max_text_chars!r}")
