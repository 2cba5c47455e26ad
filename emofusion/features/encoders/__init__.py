"""Pretrained encoders beside the paper's (optional extra ``emofusion[encoders]``).

* :mod:`.registry` - the one registry of frozen encoders (``ENCODERS``: key, name, extra, width,
  frame step, layer, normalisation, loader); everything below and the pipeline read it;
* :mod:`.sentence` - all-MiniLM-L6-v2 sentence vectors for transcripts (``st``: T-ST, M-*-ST);
* :mod:`.whisper` - Whisper tiny.en encoder frames for recordings, CTranslate2 (``wt``: S-WT, M-WT-ST);
* ``whisper_torch`` - the Whisper encoder in PyTorch, any layer (``wt2``, ``wtv``, ``wb``: S-WT2, S-WTV, S-WB, M-*-ST);
* :mod:`.cache` - every entry's outputs cached on disk per text / per audio file, like the acoustic frames.

The encoders stay frozen: they run outside the trained network, their outputs are the model's
input features, and only the small heads behind them are trained. That keeps training on two CPU
cores in seconds per epoch and lets a corpus be embedded once. ``docs/results/encoders/`` has the
measurements behind each choice (pooling, input length, heads, loss weighting, layers).
"""
