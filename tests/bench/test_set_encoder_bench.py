"""``bench --set-encoder``: its table has one row per size with the ratio autograd / fused
(that its reference computes what the fused path does, values and gradients, is
``tests/rllib_ext/test_set_model.py``'s)."""

from __future__ import annotations

import pytest

from dnt_rllib.bench import set_encoder


def test_table_rows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(set_encoder, "SIZES", ((3, 2), (5, 4)))
    assert set_encoder.main(seconds=0.01) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| (") and "U, N" not in line]
    assert [r.split(" |")[0] for r in rows] == ["| (3, 2)", "| (5, 4)"]
    for row in rows:
        autograd, fused, ratio = (float(c.strip().rstrip("×")) for c in row.split("|")[2:5])
        assert ratio == pytest.approx(autograd / fused, abs=0.051)
