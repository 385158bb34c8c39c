"""The RLlib model a trial's ``model`` section asks for, written out layer by layer."""

from __future__ import annotations

from typing import Any

import pytest

from dnt_rllib.trial.settings import model_config


@pytest.mark.parametrize(
    ("model", "layers", "activation"),
    [
        ({}, [256, 256], "relu"),  # the paper's: two layers of 256, ReLU
        ({"width": 128}, [128, 128], "relu"),  # the paper's two layers, 128 wide
        ({"depth": 3}, [256, 256, 256], "relu"),
        ({"width": 48, "depth": 1}, [48], "relu"),
        ({"fcnet_hiddens": [64]}, [64], "relu"),  # the user's layers, the paper's activation
        ({"fcnet_activation": "tanh"}, [256, 256], "tanh"),
        ({"fcnet_hiddens": [32, 16, 8], "fcnet_activation": "tanh"}, [32, 16, 8], "tanh"),
        ({"width": 32, "fcnet_activation": "elu"}, [32, 32], "elu"),
    ],
)
def test_the_model_is_the_papers_with_the_users_choices_on_top(
    model: dict[str, Any], layers: list[int], activation: str
) -> None:
    built = model_config(model)
    assert built == {"fcnet_hiddens": layers, "fcnet_activation": activation}
