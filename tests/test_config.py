"""The config: composed by Hydra from the schema's defaults, the presets and the catalogue's settings."""
import dataclasses

import pytest

from ablations.catalogue import MISTAKES, lookup
from ablations.errors import UsageError
from ablations.runner.config import check_overrides, composed, dotted_keys, groups, resolve
from ablations.runner.training import TrainSettings
from data import SyntheticSpec
from model import GPTConfig


@pytest.mark.parametrize("spec", MISTAKES, ids=lambda spec: spec.name)
def test_each_mistake_composes_with_its_catalogue_settings_and_the_command_line_wins(spec):
    resolved = dotted_keys(resolve(composed([f"mistake={spec.name}"])))
    assert resolved["mistake"] == spec.name
    assert all(resolved[key] == value for key, value in spec.settings.items())
    typed = dotted_keys(resolve(composed([f"mistake={spec.name}", "model.n_layers=3", "train.lr=0.5"])))
    assert typed["model.n_layers"] == 3 and typed["train.lr"] == 0.5


def test_defaults_are_the_dataclasses_defaults():
    """The schema takes the training, model and synthetic-source defaults from the dataclasses the code runs with."""
    base = resolve(composed(["mistake=all"]))
    train = dataclasses.asdict(TrainSettings())
    assert base["steps"] == train.pop("steps") and base["train"] == {**train, "lr_grid": list(train["lr_grid"])}
    assert all(base["model"][key] == getattr(GPTConfig(), key) for key in base["model"])
    assert all(base["data"][key] == value for key, value in dataclasses.asdict(SyntheticSpec()).items())
    assert set(groups()["model"]) == {"tiny", "nanogpt_cpu", "gpt2_small"}
    assert resolve(composed(["mistake=all", "model=nanogpt_cpu"]))["model"]["d_model"] == 128


def test_a_sweep_needs_multirun():
    with pytest.raises(UsageError, match="add -m"):
        check_overrides(["mistake=post_norm,no_residual"])
    check_overrides(["-m", "mistake=post_norm,no_residual"])


def test_a_variant_config_applies_the_catalogue_settings_of_that_variant_alone():
    from ablations.runner.config import variant_config

    resolved = resolve(composed(["mistake=tiny_vocab", "data.tiny_vocab_size=12", "data.vocab_size=40"]))
    tiny, position = lookup("tiny_vocab"), lookup("position_overflow")
    assert variant_config(tiny, resolved, "broken")["data"]["vocab_size"] == 12  # "${data.tiny_vocab_size}", resolved
    assert variant_config(tiny, resolved, "correct")["data"]["vocab_size"] == 40
    overflow = resolve(composed(["mistake=position_overflow"]))
    assert variant_config(position, overflow, "sinusoidal")["model"]["position"] == "sinusoidal"  # a fix
    assert variant_config(position, overflow, "correct")["model"]["position"] == overflow["model"]["position"]
