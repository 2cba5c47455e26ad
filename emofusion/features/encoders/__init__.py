"""Pretrained encoders beside the paper's (optional extra ``emofusion[encoders]``).

* :mod:`.sentence` - all-MiniLM-L6-v2 sentence vectors for transcripts (T-ST, M-*-ST);
* :mod:`.whisper` - Whisper tiny.en encoder frames for recordings (S-WT, M-WT-ST);
* :mod:`.cache` - both cached on disk per text / per audio file, like the acoustic frames.

Both encoders stay frozen: they run outside the trained network, their outputs are the model's
input features, and only the small heads behind them are trained. That keeps training on two CPU
cores in seconds per epoch and lets a corpus be embedded once. ``docs/results/encoders/`` has the
measurements behind each choice (pooling, input length, heads, loss weighting).
"""
