from __future__ import annotations

import dataclasses

import pytest
import yaml

from fedcofit_lite.config import (
    CONFIG_DIR,
    ConfigError,
    RunConfig,
    config_from_dict,
    describe,
    load_config,
)

PRESETS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def test_presets_exist():
    assert {"ci", "cpu", "gpu", "large"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_round_trips_through_yaml(preset):
    cfg = load_config(preset)
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


def test_default_config_round_trips_and_every_option_has_help():
    assert config_from_dict(RunConfig().to_dict()) == RunConfig()
    rows = describe()
    assert len(rows) > 30
    assert all(help_text for _, _, help_text in rows), [n for n, _, h in rows if not h]


def test_overrides_are_typed():
    cfg = load_config("ci", ["train.lr=1e-4", "lora.target_modules=[q_proj]", "federation.rounds=3"])
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.lora.target_modules == ["q_proj"]
    assert cfg.federation.rounds == 3


@pytest.mark.parametrize(
    "override, field_name",
    [
        ("federation.n_clients=0", "federation.n_clients"),
        ("lora.r=0", "lora.r"),
        ("train.lr=-1", "train.lr"),
        ("consensus.min_agreement=1.5", "consensus.min_agreement"),
        ("generation.top_p=0", "generation.top_p"),
        ("lora.target_modules=[]", "lora.target_modules"),
        ("data.dirichlet_alpha=0", "data.dirichlet_alpha"),
    ],
)
def test_impossible_values_name_the_field(override, field_name):
    with pytest.raises(ConfigError, match=field_name.replace(".", r"\.")):
        load_config("ci", [override])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config("ci", ["train.learning_rate=0.1"])
    assert "train.learning_rate" in str(err.value) and "'lr'" in str(err.value)


def test_wrong_type_and_bad_choice():
    with pytest.raises(ConfigError, match=r"lora\.r = 'two': expected int"):
        load_config("ci", ["lora.r=two"])
    with pytest.raises(ConfigError, match=r"federation\.rounds .*expected int, got bool"):
        load_config("ci", ["federation.rounds=true"])
    with pytest.raises(
        ConfigError, match=r"data\.partition = 'random'.*choose one of \['iid', 'dirichlet', 'by_family'\]"
    ):
        load_config("ci", ["data.partition=random"])


def test_client_models_must_match_n_clients():
    with pytest.raises(
        ConfigError,
        match=r"federation\.client_models = \[.*\]: give one model per client \(federation\.n_clients = 3\)",
    ):
        load_config("ci", ["federation.client_models=[tiny-random, tiny-random]"])


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="presets"):
        load_config("no-such-preset")


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.field=value"):
        load_config("ci", ["federation.rounds"])


def test_config_is_plain_dataclasses():
    cfg = RunConfig()
    assert all(
        dataclasses.is_dataclass(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.name in ("model", "lora")
    )


def test_a_clusterer_parameter_sits_under_its_own_key_and_is_checked_by_its_spec():
    from fedcofit_lite.federation.methods import check_names
    from fedcofit_lite.protocol.cluster import clusterer_from_config

    cfg = check_names(load_config("ci", ["consensus.clusterer=dbscan", "consensus.clusterer_params.eps=0.3"]))
    assert clusterer_from_config(cfg.consensus).get_params() == {"eps": 0.3, "min_samples": 2}
    with pytest.raises(ConfigError, match=r"consensus\.clusterer_params\.eps = 3\.0: cosine distance lies in \(0, 2\]"):
        check_names(load_config("ci", ["consensus.clusterer=dbscan", "consensus.clusterer_params.eps=3"]))
    with pytest.raises(ConfigError, match=r"unknown config key 'consensus\.clusterer_params\.distance_threshold'.*eps"):
        check_names(
            load_config("ci", ["consensus.clusterer=dbscan", "consensus.clusterer_params.distance_threshold=1"])
        )


def test_a_retired_flat_clusterer_key_names_its_new_key():
    with pytest.raises(ConfigError, match=r"consensus\.clusterer_params\.distance_threshold=0\.2"):
        load_config("ci", ["consensus.distance_threshold=0.2"])


def test_a_run_folder_of_an_earlier_release_reads_its_clusterer_keys(tmp_path):
    old = yaml.safe_load(load_config("cpu").to_yaml())
    old["consensus"].pop("clusterer_params")
    flat = {"distance_threshold": 0.15, "linkage": "average", "eps": 0.15, "min_samples": 2, "min_cluster_size": 2}
    old["consensus"].update(flat, k_max=4, min_silhouette=0.2)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    assert load_config(tmp_path / "config.yaml", recorded=True) == load_config("cpu")
    old["consensus"].update(distance_threshold=0.3, eps=0.4)  # the other clusterers' keys are dropped
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    assert load_config(tmp_path / "config.yaml", recorded=True).consensus.clusterer_params == {
        "distance_threshold": 0.3
    }
