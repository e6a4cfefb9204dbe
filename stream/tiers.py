"""``--model auto`` on the live path: which model tier keeps up with the source, decided as it runs.

The tiers come from the registry (``models.registry``): one per-frame model per ``tier`` among
the released models, ordered by their cost per pixel (``Tier.cost``), most first (``base``, ``fast``,
then ``tiny`` once released); with ``--temporal auto`` asked, each counts the smoothing's cost
too and the lowest tier again without it follows (``SMOOTHING_MACS``).  ``TierPolicy``
watches the processor's time per frame against the source's frame interval (the budget) and the
frames the drop-oldest queue discarded, and says when to step down or up; it reads no clock of
its own, so a test can feed it any timings. ``stream.tierswitch.TierSwitcher`` opens the next
engine beside the running one and swaps it in between frames.

Hysteresis, so it does not oscillate: down only when the last ``down_after_s`` (2 s) as a
whole were over budget (the median time per frame above the interval, or more than 5 % of the
frames dropped); up only after ``up_after_s`` (10 s) in which the tier above was predicted to
fit with a margin (this tier's time times the ratio of the two as measured across a switch
between them, or of their costs before they have both run, under 80 % of the budget);
at most one switch per ``min_interval_s`` (4 s); the first frames after a switch (engine
warm-up) are not judged; and each step up that had to be undone doubles the wait before the
next.  Three rules act at once instead: a tier at 2 budgets a frame or more (``hopeless``,
after 3 judged frames); the start tier, a guess, at 4 budgets after its first judged frame
(which ``TierSwitcher.probe`` times before the source's first frame); and the start tier once
after its first 8 judged frames if they took over 1.1 budgets (the median); each steps
straight to the best lower tier predicted to fit.  A tier those start rules stepped to was
chosen by cost, a guess too, and its first 8 judged frames are judged so in their turn (not
its first frame alone: the smoothing's first averaged frame allocates, 128 ms at 720p).
"""
from __future__ import annotations

import logging
import statistics
from collections import deque
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)


# The engine's work a frame pixel outside the network (the frame converted in and out, the
# buffers around the graph), in the network's multiply-adds: onnxruntime-cpu on the 2-core dev
# VM took 12 ms a megapixel plus 22 ms per GMAC/MP (``python -m engines bench``: ``pico`` 24.6 ms
# at 1280x720, ``tiny`` 24.6 at 960x540, 2026-12-03).  Without it the ladder predicted ``pico``
# at 26 ms a 720p frame from ``fast``'s 150 and stepped to it; it took 41 to 45.
OVERHEAD_MACS = 550.0

# What the ``--temporal auto`` smoothing costs a frame pixel, counted like ``OVERHEAD_MACS``: live
# at 720p (``tiny-half``, ``python -m stream X --realtime --stats`` into the window, Xvfb, the
# 2-core VM, 2026-12-04) the processing took 44 to 61 ms a frame with it and 25 to 27 without
# (1.7 to 2.4 times; 700 makes it 2.3); at 640x360 (``fast`` into a file, 2026-12-01) 43 against
# 37 ms (1.16; 700 makes it 1.16).  Below the lowest model, ``auto`` steps down too: the ladder
# ends with the lowest model again without the smoothing.  ``light`` is no rung: on camera
# noise it scored exactly ``off`` (``python -m models eval-video --suite --model tiny --noise
# camera-light --product off,light,causal``: +0.00 dB on all four clips, where the causal
# ``auto`` gained 0.31 to 2.68).
SMOOTHING_MACS = 700.0


@dataclass(frozen=True)
class Tier:
    model: str  # the registered per-frame model that runs this tier
    tier: str  # its registry tier ("base", "fast", "tiny"...)
    macs: float  # multiply-adds per pixel (models.registry.macs_per_pixel)
    pixels: float = 1.0  # the share of the frame's pixels its engine handles (a quarter at half scale)
    smoothed: bool = False  # the ``auto`` smoothing runs after it (counted in its cost)
    smoothing: str | None = None  # a rung that runs ``model`` with this ``--temporal`` instead

    @property
    def name(self) -> str:
        """What the policy, the HUD and --stats call it: the model, and a rung's smoothing."""
        return self.model if self.smoothing is None else f"{self.model}, temporal {self.smoothing}"

    @property
    def cost(self) -> float:
        """Relative time a frame pixel: its multiply-adds, the engine's work around them and
        the smoothing's after them."""
        return self.macs + OVERHEAD_MACS * self.pixels + SMOOTHING_MACS * self.smoothed


def ladder(temporal: str | None = None) -> list[Tier]:
    """The registry's tiers, costliest (best) first: per tier, the released per-frame model
    named like the tier, else the first such model by name.  With ``temporal`` ``auto`` (what
    the run asked for), each costs its smoothing too, and the lowest tier again without it
    follows: where even that tier cannot keep up, the smoothing steps down before frames are
    dropped."""
    from models.registry import get_spec, macs_per_pixel, model_names

    chosen: dict[str, str] = {}
    for name in model_names():  # released only: a lab variant ships no weights
        spec = get_spec(name)
        if spec.temporal:  # a recurrent twin is --temporal auto's choice, not a tier
            continue
        if spec.tier not in chosen or name == spec.tier:
            chosen[spec.tier] = name
    tiers = [Tier(model, tier, macs_per_pixel(model), 0.25 if get_spec(model).half_scale else 1.0)
             for tier, model in chosen.items()]
    tiers.sort(key=lambda t: -t.cost)
    if temporal == "auto" and tiers:
        tiers = [replace(t, smoothed=True) for t in tiers]
        tiers.append(replace(tiers[-1], smoothed=False, smoothing="off"))
    return tiers


@dataclass(frozen=True)
class Switch:
    """One decision: ``to`` replaces ``frm`` because of ``why``."""

    frm: str
    to: str
    down: bool  # to a cheaper tier
    why: str
    at: float  # when it was asked for (the policy's clock, seconds)
    ran: float | None = None  # when the new tier's engine took over (it opens meanwhile)


class TierPolicy:
    """When to step a tier down or up, from per-frame timings (seconds) and the drop count.

    ``tiers``: model names, best (slowest) first; ``costs``: their relative cost per pixel
    (``Tier.cost``), used to predict a tier's time before it has run; ``budget_s``: the
    source's frame interval. Call ``observe`` after each frame; when it returns a model name,
    open that one and call ``switched`` once it runs (or ``unavailable`` if it cannot).
    """

    def __init__(self, tiers: list[str], start: str, budget_s: float, *,
                 costs: dict[str, float] | None = None, down_after_s: float = 2.0,
                 up_after_s: float = 10.0, min_interval_s: float = 4.0,
                 warmup_frames: int = 1, min_frames: int = 3, up_margin: float = 0.8,
                 drop_limit: float = 0.05, hopeless: float = 2.0, first_frames: int = 8,
                 first_margin: float = 1.1) -> None:
        if start not in tiers:
            raise ValueError(f"start tier: expected one of {', '.join(tiers)}, got {start!r}")
        if budget_s <= 0:
            raise ValueError(f"budget: expected seconds above 0, got {budget_s}")
        self.tiers = list(tiers)
        self.costs = dict(costs or {})
        self.budget_s = budget_s
        self.down_after_s = down_after_s
        self.up_after_s = up_after_s
        self.min_interval_s = min_interval_s
        self.warmup_frames = warmup_frames
        self.min_frames = min_frames  # in a window, e.g. after a pause emptied it
        self.up_margin = up_margin
        self.drop_limit = drop_limit
        self.hopeless = hopeless  # this many budgets a frame: step down at once, skipping
        # the start tier is a guess: its first ``first_frames`` judged frames decide at once
        # whether it fits (over ``first_margin`` budgets a frame: step down, skipping)
        self.first_frames = first_frames
        self.first_margin = first_margin
        self._first_judged = False
        # the start tier is a guess, and so is a tier the start rules stepped to (by cost)
        self._guessing = True
        self._guess_next = False
        self.current = start
        self.why = f"start tier, {budget_s * 1000:.0f} ms budget"  # why this tier runs
        self.state = ""  # how it does now, e.g. "21 ms/frame"
        self.switches: list[Switch] = []
        self.pending: str | None = None
        self.measured: dict[str, float] = {}  # seconds per frame each tier ran at, last seen
        # (upper, lower) -> upper's time / lower's, measured across a switch between them
        self.ratios: dict[tuple[str, str], float] = {}
        self._came_from: tuple[str, float] | None = None  # the tier left, and its time
        self._unavailable: set[str] = set()
        self._up_wait = up_after_s
        self._reset(None)

    def set_ladder(self, tiers: list[str], costs: dict[str, float]) -> None:
        """The tiers, once known (counting their costs takes a moment): what was observed
        on the current one so far still counts."""
        if self.current not in tiers:
            raise ValueError(f"tiers: expected a list with {self.current!r}, got {tiers}")
        self.costs = dict(costs)
        self.tiers = list(tiers)

    # -- what the caller reports ------------------------------------------------------------
    def observe(self, now: float, seconds: float, dropped: int) -> str | None:
        """One frame took ``seconds`` to process; ``dropped``: the queue's total so far.
        Returns the model to switch to, or None."""
        if self.pending is not None:
            return None
        if self._last_dropped is None:
            self._last_dropped = dropped
        if self._warmup > 0:  # the engine's first runs allocate: not its pace
            self._warmup -= 1
            self._last_dropped = dropped
            return None
        if self._since is None:
            self._since = now
        self._samples.append((now, seconds, dropped - self._last_dropped))
        self._last_dropped = dropped
        while self._samples and now - self._samples[0][0] > self.down_after_s:
            self._samples.popleft()
        if not self.switches and len(self._samples) == 1:
            # the start tier's first judged frame at twice the hopeless pace: one is enough (a
            # 720p source on ``fast`` here, 150 ms a frame against 33: the three frames more
            # cost 0.45 s, 14 frames dropped)
            far = self._hopeless(now, 2 * self.hopeless, " at the start")
            if far is not None:
                return far
        if len(self._samples) >= self.min_frames:
            hopeless = self._hopeless(now, self.hopeless)
            if hopeless is not None:
                return hopeless
        if not self._first_judged and len(self._samples) >= self.first_frames:
            self._first_judged = True
            if self._guessing:
                first = self._hopeless(now, self.first_margin, " at the start")
                if first is not None:
                    return first
        if now - self._since < self.down_after_s or len(self._samples) < self.min_frames:
            return None  # not a full window on this tier yet
        # the median: a few slow frames (a hiccup elsewhere) are not a pace; if they keep
        # coming, frames are dropped, and the drop share says so
        pace = statistics.median(s for _, s, _ in self._samples)
        drops = sum(d for _, _, d in self._samples)
        drop_share = drops / (drops + len(self._samples))
        self.measured[self.current] = pace
        if self._came_from is not None:  # both sides of the switch timed under the same load
            frm, then = self._came_from
            self._came_from = None
            pair = (frm, self.current) if self.tiers.index(frm) < self.tiers.index(self.current) \
                else (self.current, frm)
            self.ratios[pair] = (then / pace) if pair[0] == frm else (pace / then)
        ms, budget_ms = pace * 1000, self.budget_s * 1000
        if pace > self.budget_s or drop_share > self.drop_limit:
            self._fit_since = None
            over = (f"{ms:.0f} ms/frame over {budget_ms:.0f} ms budget" if pace > self.budget_s
                    else f"{drop_share:.0%} of frames dropped at {ms:.0f} ms/frame, "
                         f"{budget_ms:.0f} ms budget")
            lower = self._neighbour(+1)
            self.state = over if lower is not None else f"{over}, no lower tier"
            if lower is None:
                return None
            if now - self._last_switch < self.min_interval_s:
                return None
            return self._request(lower, f"stepped down from {self.current}: {over}", now)
        self.state = f"{ms:.0f} ms/frame"
        upper = self._neighbour(-1)
        if upper is None:
            return None
        predicted = pace * self._ratio(upper)
        if predicted > self.budget_s * self.up_margin or drops:
            self._fit_since = None
            return None
        if self._fit_since is None:
            self._fit_since = now
        if now - self._fit_since < self._up_wait or \
                now - self._last_switch < max(self.min_interval_s, self._up_wait):
            return None
        return self._request(upper, f"stepped up from {self.current}: {ms:.0f} ms/frame, "
                                    f"{upper} predicted {predicted * 1000:.0f} ms within "
                                    f"{budget_ms:.0f} ms budget", now)

    def switched(self, now: float) -> None:
        """The requested tier runs from now on."""
        if self.pending is None:
            return
        switch = self.switches[-1] = replace(self.switches[-1], ran=now)
        if switch.down and len(self.switches) > 1 and not self.switches[-2].down \
                and self.switches[-2].to == switch.frm:
            self._up_wait *= 2  # that step up did not hold: wait longer before the next
        self._came_from = (self.current, self.measured[self.current]) \
            if self.current in self.measured else None
        self.current, self.why, self.pending = self.pending, switch.why, None
        self._guessing, self._guess_next, self._first_judged = self._guess_next, False, False
        self.state = ""
        self._reset(now)

    def unavailable(self, model: str, reason: str, now: float) -> None:
        """``model`` could not be opened: skip it from now on."""
        log.warning("--model auto: %s does not open (%s); %s runs on", model, reason,
                    self.current)
        self._unavailable.add(model)
        if self.pending == model:
            self.pending = None
            self.switches.pop()
            self._last_switch = now

    # -- what the HUD and --stats show -------------------------------------------------------
    @property
    def note(self) -> str:
        """e.g. ``fast (stepped down from base: 62 ms/frame over 40 ms budget; now 21
        ms/frame)``."""
        return f"{self.current} ({self.why}" + (f"; now {self.state})" if self.state else ")")

    # -- inside ----------------------------------------------------------------------------
    def _reset(self, now: float | None) -> None:
        self._samples: deque[tuple[float, float, int]] = deque()
        self._since: float | None = None
        self._fit_since: float | None = None
        self._warmup = self.warmup_frames
        self._last_dropped: int | None = None  # the queue's total when this tier began
        self._last_switch = now if now is not None else float("-inf")

    def _neighbour(self, step: int) -> str | None:
        i = self.tiers.index(self.current) + step
        while 0 <= i < len(self.tiers):
            if self.tiers[i] not in self._unavailable:
                return self.tiers[i]
            i += step
        return None

    def _hopeless(self, now: float, budgets: float, when: str = "") -> str | None:
        """A tier that takes ``budgets`` budgets a frame or more (``hopeless``: a 720p camera
        on a tier meant for 360p) cannot keep up whatever the load does next: after
        ``min_frames`` frames, step down at once, not after the 2 s window and the 4 s
        between switches (at 30 fps those would drop most of the first 8 s), and straight to
        the best lower tier predicted to fit (its cost against this one's; the
        lowest if none).  The start tier is judged so after its first ``first_frames``, at
        ``first_margin`` budgets: a start tier that does not fit drops frames from the first
        second, and waiting out the 2 s window cost about 20 of them at 25 fps."""
        pace = statistics.median(s for _, s, _ in self._samples)
        lower = [n for n in self.tiers[self.tiers.index(self.current) + 1:]
                 if n not in self._unavailable]
        if pace < budgets * self.budget_s or not lower:
            return None
        base = self.costs.get(self.current)
        if not base or not all(self.costs.get(n) for n in lower):
            target = lower[0]  # a cost unknown: one step at a time
        else:
            target = next((n for n in lower if pace * self.costs[n] / base <= self.budget_s),
                          lower[-1])
        self.measured[self.current] = pace
        over = f"{pace * 1000:.0f} ms/frame over {self.budget_s * 1000:.0f} ms budget"
        self.state = over
        # chosen by cost at the start: a guess too, judged early in its turn
        return self._request(target, f"stepped down from {self.current}{when}: {over}", now,
                             guess=bool(when))

    def _ratio(self, upper: str) -> float:
        """How much slower ``upper`` is than the current tier: as measured across a switch
        between the two (under that moment's load), else from their costs."""
        if (upper, self.current) in self.ratios:
            return self.ratios[(upper, self.current)]
        a, b = self.costs.get(upper), self.costs.get(self.current)
        return a / b if a and b else float("inf")  # unknown cost: never guess upwards

    def _request(self, model: str, why: str, now: float, guess: bool = False) -> str:
        self.pending, self._guess_next = model, guess
        down = self.tiers.index(model) > self.tiers.index(self.current)
        self.switches.append(Switch(self.current, model, down, why, now))
        log.info("model tier: %s -> %s (%s)", self.current, model, why)
        return model
