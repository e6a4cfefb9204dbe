"""``--model auto`` on a live source: the tier switcher between the policy (``stream.tiers``)
and the live processor (``stream.livecli.LiveProcessor``), which it is handed per frame."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .options import DenoiseOptions
from .session import smoothing_device
from .tiers import Tier, TierPolicy, ladder

log = logging.getLogger(__name__)


class TierSwitcher:
    """``--model auto`` on a live source: the policy (stream/tiers.py) is told each frame's
    processing time and the drops; the engine it asks for is opened on a thread while the
    current one keeps running, and swapped in between frames (``LiveProcessor.swap``).

    ``asked``: the denoise options as asked (the temporal mode is planned again per tier);
    ``start``: the tier's model to begin with, which the session opened; ``dropped``: the
    drop-oldest queue's count; ``on_switch``: told after each swap (the window's HUD).
    """

    def __init__(self, session: Any, asked: DenoiseOptions, start: str, budget_s: float,
                 dropped: Callable[[], int],
                 on_switch: Callable[[TierSwitcher], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.session = session
        self.asked = asked
        self.start = start
        self.budget_s = budget_s
        self.dropped = dropped
        self.on_switch = on_switch
        self.clock = clock
        self.began = clock()
        # judging starts at once; the tiers to step to come when their costs are counted
        self.policy = TierPolicy([start], start, budget_s)
        self.rungs: dict[str, Tier] = {}  # the ladder by name, once counted
        self._ready: tuple[Any, ...] | None = None  # from the opener thread
        self._closed = False
        self._lock = threading.Lock()
        self.frames: dict[str, int] = {}  # frames processed per tier
        self.last: Any = None  # the last frame's picture: the next engine warms up on its like
        self._threads = [threading.Thread(target=self._load_ladder, daemon=True,
                                          name="tier-ladder")]
        self._threads[0].start()

    @property
    def note(self) -> str:
        """Which tier runs and why, for the HUD and --stats."""
        return self.policy.note

    def _load_ladder(self) -> None:
        try:
            tiers = ladder(self.asked.temporal)
        except Exception as exc:  # noqa: BLE001 - auto degrades to a fixed model
            log.warning("--model auto: cannot list the model tiers (%s); %s stays", exc,
                        self.start)
            return
        names = [t.name for t in tiers]
        if self.start not in names:
            log.warning("--model auto: %s is not a released tier (%s); it stays", self.start,
                        ", ".join(names))
            return
        log.info("--model auto: tiers %s, starting at %s, budget %.1f ms/frame",
                 " > ".join(names), self.start, self.budget_s * 1000)
        self.rungs = {t.name: t for t in tiers}
        self.policy.set_ladder(names, {t.name: t.cost for t in tiers})

    def probe(self, live: Any, height: int | None, width: int | None) -> None:
        """Before the first frame: time the start tier on a frame of the source's size (its
        first run, which allocates, then one more) and, where that is far over budget (the
        policy's start rule: four budgets), open the tier predicted to fit now, so the source's
        first second is not spent dropping frames (a 720p source on ``fast`` here: 216 to
        285 ms a frame, 20 to 27 frames dropped before the switch).  Best effort: no size, no
        probe."""
        if not height or not width:
            return
        self._threads[0].join()
        frame = np.full((1, height, width, 3), 128, np.uint8)
        frame[0, ::2, ::2] = 140  # a little texture: a flat frame may take a shortcut
        level = np.array([10.0], np.float32)
        # the probe times the engine alone, where a frame's time counts the ``auto`` smoothing
        # after it too, as the tiers' costs do: scaled up by the smoothing's part of the cost,
        # so the tiers predicted to fit are not predicted too fast (a 720p source: ``tiny-half``
        # with the smoothing predicted 29 ms from ``fast``'s 120, and took 41 to 43)
        rung = self.rungs.get(self.start)
        with_smoothing = rung.cost / dataclasses.replace(rung, smoothed=False).cost if rung else 1.0
        for _ in range(self.policy.warmup_frames + 1):  # the warm-up run, and one judged
            t0 = self.clock()
            self.session.engine.infer(frame, level)
            want = self.policy.observe(self.clock(), (self.clock() - t0) * with_smoothing, 0)
        if want is None:
            return
        self.last = frame[0]  # the new tier's first run, which allocates, on its like
        self._open(want)
        self.before_frame(live)

    def after_frame(self, seconds: float, image: Any = None) -> None:
        self.last = image if image is not None else self.last
        self.frames[self.policy.current] = self.frames.get(self.policy.current, 0) + 1
        want = self.policy.observe(self.clock(), seconds, self.dropped())
        if want is not None:
            opener = threading.Thread(target=self._open, args=(want,), daemon=True,
                                      name=f"tier-open-{want}")
            self._threads.append(opener)
            opener.start()

    def _open(self, name: str) -> None:
        from .session import make_processor, open_engine, plan

        rung = self.rungs.get(name)
        asked = dataclasses.replace(self.asked, model=rung.model if rung is not None else name)
        if rung is not None and rung.smoothing is not None:  # the smoothing steps down too
            asked = dataclasses.replace(asked, temporal=rung.smoothing)
        engine = processor = None
        try:
            planned = plan(asked)
            engine = open_engine(planned)
            # tiers switch live only, where the Wiener pass runs when asked for (``--wiener on``)
            processor = make_processor(planned, engine, wiener=planned.wiener == "on")
            if self.last is not None:  # its first run allocates: not on the frame thread
                engine.infer(np.zeros_like(self.last)[None], np.array([10.0], np.float32))
        except Exception as exc:  # noqa: BLE001 - told to the policy on the frame thread
            if engine is not None:
                engine.close()
            getattr(processor, "close", lambda: None)()
            self._ready = ("failed", name, exc)
            return
        with self._lock:
            if self._closed:  # the run ended while it opened
                engine.close()
                getattr(processor, "close", lambda: None)()
                return
            self._ready = ("ready", planned, engine, processor)

    def before_frame(self, live: Any) -> None:
        """Between frames: swap in an engine that finished opening."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return
        if ready[0] == "failed":
            self.policy.unavailable(ready[1], str(ready[2]), self.clock())
            return
        _, planned, engine, processor = ready
        old, old_processor = self.session.engine, self.session.processor
        live.swap(processor, planned.temporal, bool(getattr(engine, "temporal", False)),
                  smoothing_device(engine),
                  stepped_off=planned.temporal == "off" and self.asked.temporal != "off")
        # the session closes the engine that runs at the end
        self.session.engine, self.session.processor = engine, processor
        self.session.denoise = planned
        old.close()
        getattr(old_processor, "close", lambda: None)()  # its coarse-noise helper engine
        self.policy.switched(self.clock())
        log.info("model tier now %s", self.policy.note)
        if self.on_switch is not None:
            self.on_switch(self)

    def summary(self) -> str:
        """The --stats lines: the tier that ran last and why, and each switch."""
        lines = [f"  model tier: {self.note}"]
        for s in self.policy.switches:
            ran = f", running {s.ran - self.began:.1f} s" if s.ran is not None else ""
            lines.append(f"  tier switch: {s.frm} -> {s.to} asked {s.at - self.began:.1f} s"
                         f"{ran}")
        if len(self.frames) > 1:
            lines.append("  frames per tier: " + ", ".join(f"{k} {n}"
                                                           for k, n in self.frames.items()))
        return "\n".join(lines)

    def close(self, timeout: float = 10.0) -> None:
        """After the run: an engine that opened but was never swapped in is closed; one
        still opening is closed when it arrives, which is waited for (up to ``timeout``: a
        thread left in torch or an exporter at interpreter exit can crash it)."""
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, None
        if ready is not None and ready[0] == "ready":
            ready[2].close()
            getattr(ready[3], "close", lambda: None)()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
