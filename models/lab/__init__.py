"""The lab: what makes and measures the models, not what the product runs.

Training (``train``, ``train_temporal``, ``train_estimator`` and their data), evaluation
(``evaluate``, ``eval_video``, ``eval_downstream``, ``calibrate_eval``, ``calibrate_clip_eval``),
``explain`` and ``noise_fit``.  Reached through ``python -m models train|eval|...``; the
product (``stream``, ``engines``) never imports it.
"""
