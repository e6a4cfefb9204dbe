"""The exported stem (pixel-unshuffle + pool + head folded into strided convs) equals the model."""
from __future__ import annotations

import pytest
import torch
from engine_helpers import random_net

from engines.export import FoldedStem, fold_stem


@pytest.mark.parametrize("model", ["fast", "base", "base-temporal"])
def test_folded_stem_matches_model(model):
    net = random_net(model, seed=3)
    folded = fold_stem(net)
    assert isinstance(folded, FoldedStem)
    m = net.multiple
    g = torch.Generator().manual_seed(1)
    args = [torch.rand(2, 3, 3 * m, 5 * m, generator=g), torch.rand(2, 1, 3 * m, 5 * m, generator=g) * 0.3]
    if net.cfg.temporal:
        args.append(torch.rand(2, 3, 3 * m, 5 * m, generator=g))
    with torch.no_grad():
        ref, got = net(*args), folded(*args)
        assert (got - ref).abs().max().item() < 1e-5
        if net.cfg.temporal:  # no prev: the model uses the frame itself
            assert (folded(*args[:2]) - net(*args[:2])).abs().max().item() < 1e-5


def test_fold_falls_back_when_the_model_differs(caplog):
    net = random_net("fast")
    # a model whose forward the fold does not reproduce (as if the architecture changed)
    net.forward = lambda x, sigma, prev=None: x * 0.5  # type: ignore[method-assign]
    assert fold_stem(net) is net
    assert "exporting the model as is" in caplog.text
