"""GPTConfig: presets and validation that names the field and the fix."""

import dataclasses

import pytest

from slm_course.config import GPTConfig, TrainConfig


def test_seed_preset_matches_the_seed_project():
    cfg = GPTConfig.seed()
    assert (cfg.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd) == (50257, 128, 6, 6, 384)
    assert cfg.dropout == 0.1 and cfg.bias is True
    assert cfg.head_dim == 64


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("block_size", -1),
        ("n_layer", 0),
        ("n_head", 0),
        ("n_embd", -384),
        ("n_layer", 2.5),
        ("block_size", True),
    ],
)
def test_non_positive_or_non_integer_sizes_name_the_field(field, value):
    with pytest.raises(ValueError, match=rf"GPTConfig\.{field} must be a positive integer"):
        GPTConfig(**{field: value})


def test_n_embd_not_divisible_by_n_head_names_both_fields_and_suggests_heads():
    with pytest.raises(ValueError, match=r"n_embd \(384\) must be divisible by GPTConfig\.n_head \(5\)") as err:
        GPTConfig(n_embd=384, n_head=5)
    assert "pick n_head from" in str(err.value) and " 6," in str(err.value)


@pytest.mark.parametrize("dropout", [-0.1, 1.0, 1.5])
def test_dropout_outside_unit_interval_is_rejected(dropout):
    with pytest.raises(ValueError, match=r"GPTConfig\.dropout must be in \[0, 1\)"):
        GPTConfig(dropout=dropout)


def test_round_trip_through_dict_and_unknown_fields_are_named():
    cfg = GPTConfig.tiny(vocab_size=300)
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown GPTConfig field\(s\) \['n_heads'\]"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_heads": 4})


def test_replace_validates_again():
    cfg = GPTConfig.tiny()
    assert cfg.replace(n_layer=3).n_layer == 3
    with pytest.raises(ValueError, match="n_head"):
        cfg.replace(n_head=3)


@pytest.mark.parametrize("config_class", [GPTConfig, TrainConfig])
def test_every_field_carries_the_help_text_the_command_line_prints(config_class):
    from slm_course.train import build_parser

    helps = {f.name: f.metadata.get("help") for f in dataclasses.fields(config_class)}
    assert all(helps.values()), [name for name, text in helps.items() if not text]
    text = " ".join(build_parser().format_help().split())  # argparse wraps the lines
    for name, help_text in helps.items():
        assert f"--{name}" in text and " ".join(help_text.split()) in text
