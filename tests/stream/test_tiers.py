"""``--model auto``'s stepping policy (stream/tiers.py) on fake timings: a made-up clock and
made-up seconds per frame, so every decision is a value to assert, not a race."""
from __future__ import annotations

import pytest

from stream.tiers import TierPolicy, ladder

TIERS = ["base", "fast", "tiny"]
COSTS = {"base": 50_000.0, "fast": 4_000.0, "tiny": 1_600.0}  # MACs per pixel, as registered
FPS = 25.0
BUDGET = 1 / FPS  # 40 ms


def feed(policy: TierPolicy, seconds: float, duration: float, t0: float = 0.0,
         drop_every: int = 0, dropped: int = 0, fps: float = FPS) -> tuple[float, str | None, int]:
    """Frames at ``fps`` each taking ``seconds``, for ``duration`` s from ``t0``; stops at the
    first switch asked for. Returns (time reached, the model asked for, drops so far)."""
    t = t0
    n = 0
    while t < t0 + duration:
        t += 1 / fps
        n += 1
        if drop_every and n % drop_every == 0:
            dropped += 1
        want = policy.observe(t, seconds, dropped)
        if want is not None:
            return t, want, dropped
    return t, None, dropped


def policy(start: str = "base", **kw) -> TierPolicy:
    return TierPolicy(TIERS, start, BUDGET, costs=COSTS, **kw)


def test_steps_down_after_sustained_overload_only():
    p = policy(first_frames=10**6)  # the window's rule alone (the start's: below)
    # 1.5 s over budget: not yet (the window is 2 s)
    t, want, _ = feed(p, 0.062, 1.5)
    assert want is None and p.current == "base"
    t, want, _ = feed(p, 0.062, 2.0, t0=t)
    assert want == "fast" and p.pending == "fast"
    assert p.switches[-1].frm == "base"
    assert p.switches[-1].why == "stepped down from base: 62 ms/frame over 40 ms budget"
    # while the next engine opens nothing more is asked
    assert feed(p, 0.2, 3.0, t0=t)[1] is None
    p.switched(t + 3.0)
    assert p.current == "fast" and p.pending is None and p.switches[-1].ran == t + 3.0
    assert p.note == "fast (stepped down from base: 62 ms/frame over 40 ms budget)"


def test_a_short_spike_does_not_step_down():
    p = policy()
    t, want, _ = feed(p, 0.030, 3.0)
    assert want is None
    t, want, _ = feed(p, 0.300, 0.2, t0=t)  # 5 slow frames in a 2 s window of 30 ms ones
    assert want is None
    t, want, _ = feed(p, 0.030, 5.0, t0=t)
    assert want is None and p.current == "base" and not p.switches
    assert p.note == "base (start tier, 40 ms budget; now 30 ms/frame)"


def test_dropped_frames_alone_step_down():
    p = policy()
    # 35 ms a frame is within 40, but one frame in 10 is dropped (10 % > 5 %)
    _, want, _ = feed(p, 0.035, 4.0, drop_every=10)
    assert want == "fast"
    assert "dropped" in p.switches[-1].why


def test_never_below_the_lowest_tier():
    p = policy(start="tiny")
    _, want, _ = feed(p, 0.5, 30.0)
    assert want is None and p.current == "tiny" and not p.switches
    assert p.note == "tiny (start tier, 40 ms budget; now 500 ms/frame over 40 ms budget, " \
                     "no lower tier)"


def test_unavailable_tier_is_skipped_and_stepping_stops_there():
    p = TierPolicy(["base", "fast"], "base", BUDGET, costs=COSTS)
    t, want, _ = feed(p, 0.1, 3.0)
    assert want == "fast"
    p.unavailable("fast", "no weights", t)
    assert p.pending is None and not p.switches
    t, want, _ = feed(p, 0.1, 10.0, t0=t)
    assert want is None and p.current == "base"


def test_steps_up_only_after_a_long_margin_and_with_headroom():
    p = policy(start="fast")
    # fast at 3 ms: base predicted 3 * 50000/4000 = 37.5 ms > 0.8 * 40: stays
    t, want, _ = feed(p, 0.003, 30.0)
    assert want is None and p.current == "fast"
    # fast at 2 ms: base predicted 25 ms, within 32 ms: asked for only after 10 s of that
    t, want, _ = feed(p, 0.002, 9.0, t0=t)
    assert want is None
    t, want, _ = feed(p, 0.002, 3.0, t0=t)
    assert want == "base"
    assert p.switches[-1].why == ("stepped up from fast: 2 ms/frame, base predicted 25 ms "
                                  "within 40 ms budget")


def test_step_up_waits_after_a_switch():
    p = policy(start="fast")
    _, want, _ = feed(p, 0.060, 3.0)
    assert want == "tiny"
    p.switched(3.0)
    # tiny at 24 ms just after the switch: fast measured 2.5x tiny
    t, want, _ = feed(p, 0.024, 3.0, t0=3.0)
    assert want is None and p.ratios[("fast", "tiny")] == pytest.approx(2.5)
    # then 4 ms: fast predicted 10 ms, yet not asked for before 10 s of that
    t, want, _ = feed(p, 0.004, 9.5, t0=t)
    assert want is None
    t, want, _ = feed(p, 0.004, 3.0, t0=t)
    assert want == "fast"


def test_no_oscillation_the_measured_ratio_and_a_longer_wait_after_a_failed_step_up():
    p = policy(start="fast")
    # fast overloaded: down to tiny
    t, want, _ = feed(p, 0.060, 3.0)
    assert want == "tiny"
    p.switched(t)
    # tiny measured at 20 ms right after: fast/tiny measured 3x, not the MACs' 2.5x
    t, want, _ = feed(p, 0.020, 60.0, t0=t)
    assert want is None  # fast predicted 60 ms: stays on tiny for a minute
    assert p.ratios[("fast", "tiny")] == pytest.approx(3.0)
    # the load goes away: tiny at 8 ms, fast predicted 24 ms: up after 10 s
    t, want, _ = feed(p, 0.008, 15.0, t0=t)
    assert want == "fast"
    p.switched(t)
    # ...but fast is over budget again: down
    t, want, _ = feed(p, 0.045, 10.0, t0=t)
    assert want == "tiny"
    p.switched(t)
    # fast measured 45 ms against tiny's 8 now: predicted 45, no step up however long
    t, want, _ = feed(p, 0.008, 30.0, t0=t)
    assert want is None
    assert p.ratios[("fast", "tiny")] == pytest.approx(0.045 / 0.008)
    # tiny down to 4 ms: fast predicted 22.5 ms, but the wait is now 20 s, not 10
    t1, want, _ = feed(p, 0.004, 19.0, t0=t)
    assert want is None
    _, want, _ = feed(p, 0.004, 5.0, t0=t1)
    assert want == "fast"
    # in all, four switches over about two and a half minutes
    assert [s.to for s in p.switches] == ["tiny", "fast", "tiny", "fast"]


def test_warm_up_frames_are_not_judged():
    p = policy(warmup_frames=3)
    for i in range(3):  # three slow first runs, then steady 20 ms
        assert p.observe(0.04 * (i + 1), 1.0, 0) is None
    _, want, _ = feed(p, 0.020, 5.0, t0=0.12)
    assert want is None and p.state == "20 ms/frame"


def test_checks_its_inputs():
    with pytest.raises(ValueError, match="expected one of base, fast, tiny, got 'huge'"):
        TierPolicy(TIERS, "huge", BUDGET)
    with pytest.raises(ValueError, match="budget"):
        TierPolicy(TIERS, "base", 0.0)


def test_the_ladder_is_the_registry_s_released_tiers_costliest_first():
    from models.registry import get_spec, model_names

    tiers = ladder()
    names = [t.model for t in tiers]
    assert names[:2] == ["base", "fast"]  # whatever else ships (tiny, nano, pico), it costs less
    assert all(not get_spec(n).temporal and n in model_names() for n in names)
    assert len({t.tier for t in tiers}) == len(tiers)
    assert [t.cost for t in tiers] == sorted((t.cost for t in tiers), reverse=True)


def test_the_ladder_counts_the_engine_s_work_around_the_network():
    """Predicted from ``fast`` at 150 ms a 720p frame (measured live, 33 ms budget), ``pico``
    (41 to 45 ms measured) does not fit and ``tiny-half`` (28 to 31) does; by multiply-adds
    alone ``pico`` read 26 ms and the ladder stepped to it."""
    cost = {t.model: t.cost for t in ladder()}
    assert 150 * cost["pico"] / cost["fast"] > 1000 / 30
    assert 150 * cost["tiny-half"] / cost["fast"] < 1000 / 30 * 0.8
    p = TierPolicy([t.model for t in ladder()], "fast", 1 / 30, costs=cost)
    _, want, _ = feed(p, 0.150, 2.0, fps=30)
    assert want == "tiny-half"


def test_a_tier_released_later_joins_the_ladder(monkeypatch):
    """A tier ships as a lab variant until its weights do; released, it takes its place by
    cost with nothing here to change (``nano`` joined below ``tiny`` that way, ``pico``
    below ``nano``, and ``tiny-half`` below ``pico``)."""
    import dataclasses

    from models import registry

    assert [t.model for t in ladder()] == ["base", "fast", "tiny", "nano", "pico", "tiny-half"]
    monkeypatch.setitem(registry._REGISTRY, "pico",
                        dataclasses.replace(registry._REGISTRY["pico"], lab=True))
    assert [t.model for t in ladder()] == ["base", "fast", "tiny", "nano", "tiny-half"]


def test_the_ladder_may_arrive_after_the_first_frames():
    p = TierPolicy(["fast"], "fast", BUDGET)
    t, want, _ = feed(p, 0.060, 3.0)  # over budget, nowhere to go yet
    assert want is None and p.state.endswith("no lower tier")
    p.set_ladder(TIERS, COSTS)
    assert p.observe(t + 0.04, 0.060, 0) == "tiny"  # what was observed still counts
    with pytest.raises(ValueError, match="expected a list with 'fast'"):
        p.set_ladder(["base", "tiny"], COSTS)


def test_a_hopeless_tier_steps_down_at_once_and_skips_to_what_fits():
    """A tier at 2 budgets a frame or more cannot keep up: after 3 judged frames (not the 2 s
    window) it steps down, straight to the best tier predicted to fit."""
    p = policy()
    t, want, _ = feed(p, 0.120, 1.0)  # base at 120 ms (3 budgets): fast predicted 9.6 ms
    assert want == "fast" and t == pytest.approx(4 / FPS)  # warm-up frame + 3 judged
    assert p.switches[-1].why == "stepped down from base: 120 ms/frame over 40 ms budget"
    p.switched(t)
    # fast at 150 ms (a 720p source): tiny predicted 60 ms, over budget, is the lowest
    t, want, _ = feed(p, 0.150, 1.0, t0=t)
    assert want == "tiny" and t == pytest.approx(8 / FPS)  # at once: no 4 s between switches


def test_a_start_tier_at_four_budgets_steps_after_its_first_judged_frame():
    p = policy()
    t, want, _ = feed(p, 0.200, 1.0)  # base at 200 ms (5 budgets)
    assert want == "fast" and t == pytest.approx(2 / FPS)  # warm-up frame + 1 judged
    assert p.switches[-1].why == "stepped down from base at the start: 200 ms/frame over 40 ms budget"
    p.switched(t)
    t, want, _ = feed(p, 0.200, 1.0, t0=t)  # once switched, the 3 judged frames again
    assert want == "tiny" and t == pytest.approx(6 / FPS)


def test_hopeless_skips_past_a_tier_predicted_too_slow():
    p = TierPolicy(["fast", "tiny", "nano"], "fast", 1 / 30,
                   costs={"fast": 3890.0, "tiny": 1620.0, "nano": 1040.0})
    _, want, _ = feed(p, 0.090, 1.0, fps=30)  # tiny predicted 37 ms > 33: nano (24 ms)
    assert want == "nano"
    q = TierPolicy(["fast", "tiny", "nano"], "fast", 1 / 30,
                   costs={"fast": 3890.0, "tiny": 1620.0, "nano": 1040.0})
    assert feed(q, 0.070, 1.0, fps=30)[1] == "tiny"  # tiny predicted 29 ms: fits


def test_under_two_budgets_waits_for_the_window_and_steps_one_tier():
    p = policy(first_frames=10**6)  # the window's rule alone (the start's: below)
    t, want, _ = feed(p, 0.079, 3.0)  # just under 2 budgets
    assert want == "fast" and t >= 2.0
    q = TierPolicy(TIERS, "base", BUDGET)  # costs unknown: one step even when hopeless
    assert feed(q, 0.300, 1.0)[1] == "fast"


def test_a_start_tier_that_does_not_fit_steps_down_after_its_first_frames():
    """The start tier is a guess: 8 judged frames over 1.1 budgets step down at once (not
    after the 2 s window), to the best tier predicted to fit; within 1.1 budgets, or later
    in the run, the window decides as before."""
    p = policy(start="fast")
    t, want, _ = feed(p, 0.048, 1.0)  # fast at 48 ms against 40: tiny predicted 19 ms
    assert want == "tiny" and t == pytest.approx(9 / FPS)  # warm-up frame + 8 judged
    assert p.switches[-1].why == "stepped down from fast at the start: 48 ms/frame over 40 ms budget"
    q = policy(start="fast")
    assert feed(q, 0.043, 1.5)[1] is None  # 1.075 budgets: the 2 s window decides
    assert feed(q, 0.043, 1.0, t0=1.5)[1] == "tiny"
    r = policy(start="fast")  # judged once, at the start: a later slow spell waits for the
    t, want, _ = feed(r, 0.030, 1.0)  # window's median (half of its 2 s), not 8 frames
    assert want is None
    t, want, _ = feed(r, 0.048, 2.0, t0=t)
    assert want == "tiny" and t > 1.9 and "at the start" not in r.switches[-1].why


def test_a_tier_chosen_by_cost_at_the_start_is_judged_early_too():
    """The tier the start rules step to is predicted by cost, a guess like the start tier: its
    first 8 judged frames over 1.1 budgets step on at once (a 720p source here: ``tiny-half``
    with the ``auto`` smoothing predicted to fit, measured 46 to 61 ms a frame against 33, and
    the window and the 4 s between switches kept it 4 s); a tier the window stepped to waits
    for the window.  Its first judged frame alone decides nothing: the smoothing's first
    averaged frame allocates (128 ms at 720p in-process, 32 to 54 after)."""
    p = TierPolicy(["fast", "tiny", "nano", "pico"], "fast", BUDGET,
                   costs={"fast": 4000.0, "tiny": 1600.0, "nano": 800.0, "pico": 400.0})
    t, want, _ = feed(p, 0.050, 1.0)  # fast at 1.25 budgets: tiny predicted 20 ms
    assert want == "tiny"
    p.switched(t)
    t2, want, _ = feed(p, 0.048, 1.0, t0=t)  # tiny at 1.2 budgets after all
    assert want == "nano" and t2 - t == pytest.approx(9 / FPS)
    assert "at the start" in p.switches[-1].why
    p.switched(t2)  # nano's first judged frame at 4 budgets: not enough, the 3-frame median is
    t3, want, _ = feed(p, 0.17, 2 / FPS, t0=t2)
    assert want is None
    assert feed(p, 0.17, 2 / FPS, t0=t3)[1] == "pico"
    q = policy(start="fast", first_frames=10**6)  # the window's rule alone
    t, want, _ = feed(q, 0.048, 3.0)
    assert want == "tiny" and "at the start" not in q.switches[-1].why
    q.switched(t)
    t2, want, _ = feed(q, 0.048, 1.5, t0=t)
    assert want is None


def test_below_the_lowest_model_the_auto_smoothing_steps_down():
    """With ``--temporal auto`` asked, each tier counts the smoothing's cost and the lowest
    comes again without it; with any other smoothing asked the ladder ends at the lowest
    model.  The probe's 720p ``fast`` (156 to 274 ms a frame today, the engine alone) predicts
    the lowest model with the smoothing over the 33 ms budget (it took 44 to 61 live) and
    without it within (25 to 27)."""
    from stream.tiers import SMOOTHING_MACS

    models = ladder()
    tiers = ladder("auto")
    assert [t.model for t in tiers] == [t.model for t in models] + [models[-1].model]
    assert [t.cost for t in tiers[:-1]] == [t.cost + SMOOTHING_MACS for t in models]
    assert (tiers[-1].smoothing, tiers[-1].cost) == ("off", models[-1].cost)
    assert tiers[-1].name == f"{models[-1].model}, temporal off"
    assert [t.cost for t in tiers] == sorted((t.cost for t in tiers), reverse=True)
    assert ladder("light") == ladder("off") == models
    p = TierPolicy([t.name for t in tiers], "fast", 1 / 30, costs={t.name: t.cost for t in tiers})
    _, want, _ = feed(p, 0.200, 1.0, fps=30)
    assert want == "tiny-half, temporal off"
