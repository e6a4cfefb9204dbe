"""How a model runs on a device: one interface, one module per runtime, builder and bench.

```python
from engines import open_engine
with open_engine("fast", backend="auto") as eng:   # tensorrt -> torch-cuda -> onnxruntime -> torch-cpu
    out = eng.infer(frames, sigma)                  # (B,H,W,3) uint8 in and out, sigma 0..255
```
"""
from __future__ import annotations

from .base import BACKENDS, Engine, EngineError, Pending
from .select import open_engine

__all__ = ["BACKENDS", "Engine", "EngineError", "Pending", "open_engine"]
