"""Features: per-frame acoustic features of speech (pyAudioAnalysis's 34) and word vectors of text."""
