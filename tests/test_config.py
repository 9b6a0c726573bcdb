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


@pytest.mark.parametrize("value, seconds", [("10m", 600.0), ("90s", 90.0), ("1.5h", 5400.0), ("45", 45.0), (600, 600.0),
                                            (2.5, 2.5)])
def test_time_budget_reads_seconds_and_durations(value, seconds):
    assert TrainConfig(time_budget=value).time_budget == seconds


@pytest.mark.parametrize("value", ["ten minutes", "0", -5, "m", True])
def test_a_bad_time_budget_names_the_field_and_the_forms(value):
    with pytest.raises(ValueError, match=r"TrainConfig.time_budget must be a positive number of seconds or a duration like '10m'"):
        TrainConfig(time_budget=value)


def test_a_time_budget_needs_warmup_updates_to_time():
    with pytest.raises(ValueError, match=r"TrainConfig.time_budget times the warmup updates.*warmup_iters must be at least 5"):
        TrainConfig(time_budget=60, warmup_iters=2)


@pytest.mark.parametrize("field, value, message", [
    ("pos_emb", "alibi", r"GPTConfig.pos_emb must be one of \('learned', 'rope'\)"),
    ("norm", "batchnorm", r"GPTConfig.norm must be one of \('layernorm', 'rmsnorm'\)"),
    ("mlp", "geglu", r"GPTConfig.mlp must be one of \('gelu', 'swiglu', 'relu2'\)"),
    ("qk_norm", 1, r"GPTConfig.qk_norm must be True or False"),
    ("tie_embeddings", "yes", r"GPTConfig.tie_embeddings must be True or False"),
])
def test_bad_architecture_options_name_the_field_and_the_choices(field, value, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{field: value})


def test_rope_needs_an_even_head_size():
    with pytest.raises(ValueError, match=r"pos_emb='rope' rotates pairs.*\(3\) must be even"):
        GPTConfig(n_embd=12, n_head=4, pos_emb="rope")
