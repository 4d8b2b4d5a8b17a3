"""The command line explains itself: every option has a help text, and `--help` states the defaults that exist."""

from __future__ import annotations

import argparse

import pytest

from tsvq.cli import build_parser, main


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """`tsvq` itself and each of its subcommands."""
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **action.choices}


@pytest.mark.parametrize("name", sorted(_parsers()))
def test_every_option_has_help(name):
    actions = _parsers()[name]._actions  # the subcommand list is documented by its subcommands' own help
    undocumented = [a.dest for a in actions if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert not undocumented, f"tsvq {name}: options without help: {undocumented}"


def test_help_states_real_defaults_only(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "seed of the draw (default: 0)" in text
    assert "how many windows to draw (default: 16)" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_prepare_options_come_from_the_config_fields(capsys):
    import dataclasses

    from tsvq.data import PrepareConfig

    destinations = {a.dest for a in _parsers()["prepare"]._actions}
    fields = [f for f in dataclasses.fields(PrepareConfig) if not str(f.type).startswith("dict")]
    assert {f.name for f in fields} <= destinations  # a new config field is a new option, with its help
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 4.096)" in text and "seed of the split and the lead mixtures (default: 0)" in text


def test_repeated_set_flags_all_apply(tmp_path):
    """`--set a=1 --set b=2` is how people write overrides; each flag must add to the others, not replace them."""
    from tsvq.cli import build_parser, load_stage_config

    args = build_parser().parse_args(
        [
            "train",
            "diffusion",
            "--config",
            "recipes/mitbih/diffusion.yaml",
            "--set",
            "model.block_out_channels=[64, 128]",
            "--set",
            "training.max_steps=30",
            "training.batch_size=8",
        ]
    )
    config = load_stage_config(args.stage, args.config, args.set)
    assert list(config.model.block_out_channels) == [64, 128]
    assert (config.training.max_steps, config.training.batch_size) == (30, 8)
