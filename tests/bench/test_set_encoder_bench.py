"""``bench --set-encoder``: the reference path it times computes what the fused one does,
and its table has one row per size with the ratio autograd / fused."""

from __future__ import annotations

import pytest
import torch

from dnt_rllib.bench import set_encoder


def test_fused_and_autograd_pools_agree_on_a_bench_batch() -> None:
    torch.manual_seed(0)
    items = set_encoder.ItemEncoder(5, [8])
    x = torch.rand(4, 9, 5)
    torch.testing.assert_close(items(x), set_encoder.autograd_pool(items, x))


def test_table_rows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(set_encoder, "SIZES", ((3, 2), (5, 4)))
    assert set_encoder.main(seconds=0.01) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| (") and "U, N" not in line]
    assert [r.split(" |")[0] for r in rows] == ["| (3, 2)", "| (5, 4)"]
    for row in rows:
        autograd, fused, ratio = (float(c.strip().rstrip("×")) for c in row.split("|")[2:5])
        assert ratio == pytest.approx(autograd / fused, abs=0.051)
