"""Typed configs: profiles, overrides, unknown keys, the stable hash."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from derain_lib.config import (
    PROFILES,
    ConfigError,
    config_from_dict,
    config_hash,
    dump_config,
    load_config,
    profile_config,
    profile_datasets,
)
from derain_lib.train import build_model_from_config


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_and_dataset_loads(profile: str) -> None:
    names = profile_datasets(profile)
    assert names, f"{profile} has no datasets section"
    hashes = {config_hash(profile_config(profile, d)) for d in names}
    assert len(hashes) == len(names)  # each data set is a different run


def test_paper_profile_follows_model_spec() -> None:
    want = {  # MODEL_SPEC §5: stride, flip copies, epochs per data set
        "rain100l": (40, True, 100),
        "rain100h": (80, False, 100),
        "rain1400": (100, False, 50),
    }
    assert set(profile_datasets("paper")) == set(want)
    for ds, (stride, hflip, epochs) in want.items():
        c = profile_config("paper", ds)
        assert (c.data.stride, c.data.hflip, c.train.epochs) == (stride, hflip, epochs)
        assert (c.data.patch, c.train.batch_size, c.train.lr) == (120, 18, 2e-4)
        assert c.train.betas == (0.0, 0.999) and c.train.scheduler == "constant"
        assert c.train.loss == "ssim" and c.model.name == "sian"
        assert c.dataset == ds and ds in c.data.train and ds in c.data.test
    model = build_model_from_config(profile_config("paper", "rain100l"))
    assert model.config.init_std == 0.02  # N(0, 0.02) by default


def test_other_choices_are_options() -> None:
    c = profile_config(
        "paper",
        "rain100h",
        ["train.betas=[0.9, 0.999]", "train.scheduler=multistep", "train.milestones=[30, 50]",
         "model.kwargs.init_std=null", "train.loss=l1", "model.name=sian-baseline"],
    )  # fmt: skip
    assert c.train.betas == (0.9, 0.999) and c.train.milestones == (30, 50)
    assert c.train.scheduler == "multistep" and c.train.loss == "l1"
    assert build_model_from_config(c).config.init_std is None


def test_overrides_are_typed_and_dotted() -> None:
    c = load_config("smoke", ["train.lr=1e-3", "model.kwargs.channels=8", "eval.tile=64"])
    assert c.train.lr == 1e-3 and isinstance(c.train.lr, float)
    assert c.model.kwargs == {"channels": 8} and c.eval.tile == 64
    assert config_hash(c) != config_hash(load_config("smoke"))


@pytest.mark.parametrize(
    "override",
    ["train.lrr=1", "trian.lr=1", "train.batch_size=many", "train.loss=huber",
     "train.betas=[0.9]", "train.lr=[1", "dataset=rain9000", "data.workers=1.5"],
)  # fmt: skip
def test_bad_overrides_are_one_line_naming_the_key(override: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config("smoke", [override])
    named = {"trian.lr=1": "trian", "dataset=rain9000": "rain9000"}
    assert named.get(override, override.split("=")[0]) in str(e.value)
    assert len(str(e.value).splitlines()) == 1


def test_unknown_key_or_bad_value_in_a_file_names_the_file_and_key(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  name: sian\ndata:\n  pach: 48\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: data\.pach"):
        load_config(p)
    p.write_text("train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: train\.lr"):
        load_config(p)
    p.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML"):
        load_config(p)


def test_hash_is_stable_and_canonical(tmp_path: Path) -> None:
    c = load_config("smoke")
    # same content, keys in another order and written another way: same hash
    d = c.to_dict()
    shuffled = {k: d[k] for k in reversed(list(d))}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(shuffled, sort_keys=True, default_flow_style=True))
    assert config_hash(load_config(p)) == config_hash(c)
    assert config_hash(config_from_dict(yaml.safe_load(dump_config(c)))) == config_hash(c)
    assert len(config_hash(c)) == 12 and int(config_hash(c), 16) >= 0
    # every field counts
    for item in ["train.seed=1", "data.hflip=true", "eval.overlap=16", "name=x"]:
        assert config_hash(load_config("smoke", [item])) != config_hash(c), item


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no such config file or profile"):
        load_config("nonprofile")
