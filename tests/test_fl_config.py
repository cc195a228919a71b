"""The federated run config: federated.config.load_config / parse_config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from federated.config import FLConfig, load_config, parse_config
from privacy.errors import ConfigError, CovaultError

MINIMAL = """\
kind = "horizontal"
label = "y"

[[party]]
name = "bank_1"
data = "bank_1.csv"

[[party]]
name = "bank_2"
data = "data/bank_2.parquet"
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert isinstance(err, CovaultError) and isinstance(err, ValueError)
    assert err.file == str(path)
    assert str(path) in str(err)
    return err


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of ``text`` containing ``needle``."""
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# --- valid configs --------------------------------------------------------------------


def test_minimal_config_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert isinstance(cfg, FLConfig)
    assert cfg.kind == "horizontal" and cfg.mode == "simulation" and cfg.model == "logistic"
    assert cfg.label == "y" and cfg.positive is None
    assert cfg.party_names == ["bank_1", "bank_2"]
    assert cfg.aggregation.method == "fedavg"
    assert cfg.training.learning_rate == "auto" and cfg.training.C == 1.0
    assert cfg.dp is None and cfg.test is None
    assert cfg.rounds == 30


def test_relative_paths_resolve_against_the_config_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "configs"
    sub.mkdir()
    text = MINIMAL.replace('label = "y"', 'label = "y"\ntest = "../held_out.csv"')
    path = write(sub, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (path, Path("../configs/run.toml")):
        cfg = load_config(given)
        assert cfg.party[0].data == (sub / "bank_1.csv").resolve()
        assert cfg.party[1].data == (sub / "data" / "bank_2.parquet").resolve()
        assert cfg.test == (tmp_path / "held_out.csv").resolve()
        assert cfg.base_dir.resolve() == sub.resolve()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "b.csv"
    text = MINIMAL.replace('"bank_1.csv"', f'"{target.as_posix()}"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.party[0].data == target


def test_full_config_parses(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"', textwrap.dedent("""\
        label = "y"
        positive = "bad"
        rounds = 5
        seed = 3
        exclude = ["row_id"]

        [training]
        local_epochs = 2
        learning_rate = 0.5
        C = 2.0

        [aggregation]
        method = "ckks"
        key_holder = "bank_2"
        min_parties = 2

        [dp]
        noise_multiplier = 0.8
        clipping = "fixed"
        clipping_norm = 1.5
        """))
    cfg = load_config(write(tmp_path, text))
    assert cfg.positive == "bad" and cfg.rounds == 5 and cfg.exclude == ["row_id"]
    assert cfg.training.learning_rate == 0.5 and cfg.training.local_epochs == 2
    assert cfg.aggregation.method == "ckks" and cfg.aggregation.key_holder == "bank_2"
    assert cfg.dp is not None and cfg.dp.clipping_norm == 1.5


def test_parse_config_without_source_resolves_against_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = parse_config({"kind": "horizontal", "label": "y",
                        "party": [{"name": "a", "data": "a.csv"},
                                  {"name": "b", "data": "b.csv"}]})
    assert cfg.party[0].data == (tmp_path / "a.csv").resolve()


# --- unknown and missing keys ---------------------------------------------------------


def test_unknown_top_level_key_names_key_and_line(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"', 'label = "y"\nlables = "z"')
    err = error_of(tmp_path, text)
    assert "unknown key 'lables'" in str(err)
    assert err.line == line_of(text, "lables")


def test_unknown_key_in_aggregation(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[aggregation]\n'
                           'method = "fedavg"\nproximal_muu = 0.3\n')
    err = error_of(tmp_path, text)
    assert "aggregation" in str(err) and "'proximal_muu'" in str(err)
    assert err.line == line_of(text, "proximal_muu")


def test_unknown_key_in_second_party_names_its_index_and_line(tmp_path: Path) -> None:
    text = MINIMAL + 'datta = "x.csv"\n'
    err = error_of(tmp_path, text)
    assert "party[1]" in str(err) and "unknown key 'datta'" in str(err)
    assert err.line == line_of(text, "datta")


def test_unknown_key_in_first_party(tmp_path: Path) -> None:
    text = MINIMAL.replace('data = "bank_1.csv"', 'data = "bank_1.csv"\nweight = 2')
    err = error_of(tmp_path, text)
    assert "party[0]" in str(err) and "'weight'" in str(err)
    assert err.line == line_of(text, "weight")


def test_source_is_not_a_config_key(tmp_path: Path) -> None:
    """``source`` is the file's own path: a file cannot set it (it used to be dropped
    silently, so a typo'd or injected key went unnoticed)."""
    text = MINIMAL.replace('label = "y"', 'label = "y"\nsource = "/elsewhere/run.toml"')
    err = error_of(tmp_path, text)
    assert "unknown key 'source'" in str(err)
    assert err.line == line_of(text, "source =")


def test_unknown_method_names_aggregation_method(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[aggregation]\n'
                           'method = "fedsgd"\n')
    err = error_of(tmp_path, text)
    assert "aggregation.method" in str(err) and "'fedsgd'" in str(err)
    assert "fedavg" in str(err)  # lists what is expected
    assert err.line == line_of(text, "fedsgd")


def test_missing_label(tmp_path: Path) -> None:
    err = error_of(tmp_path, MINIMAL.replace('label = "y"\n', ""))
    assert "missing required key 'label'" in str(err)


def test_missing_party(tmp_path: Path) -> None:
    err = error_of(tmp_path, 'kind = "horizontal"\nlabel = "y"\n')
    assert "'party'" in str(err)


def test_party_without_data(tmp_path: Path) -> None:
    err = error_of(tmp_path, MINIMAL.replace('data = "bank_1.csv"\n', ""))
    assert "party[0]" in str(err) and "'data'" in str(err)


# --- consistency ----------------------------------------------------------------------


def test_duplicate_party_names(tmp_path: Path) -> None:
    text = MINIMAL.replace('"bank_2"', '"bank_1"')
    err = error_of(tmp_path, text)
    assert "unique" in str(err) and "bank_1" in str(err)
    assert err.line == text.splitlines().index('name = "bank_1"', 5) + 1  # the repeat


def test_single_party_refused(tmp_path: Path) -> None:
    text = MINIMAL[: MINIMAL.index("[[party]]\nname = \"bank_2\"")]
    err = error_of(tmp_path, text)
    assert "at least 2 parties" in str(err)


def test_bad_party_name(tmp_path: Path) -> None:
    err = error_of(tmp_path, MINIMAL.replace('"bank_2"', '"bank 2/../x"'))
    assert "party[1].name" in str(err)


def test_key_holder_must_be_a_party(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[aggregation]\n'
                           'method = "ckks"\nkey_holder = "bank_9"\n')
    err = error_of(tmp_path, text)
    assert "key_holder" in str(err) and "'bank_9'" in str(err)
    assert "bank_1" in str(err)  # says which parties there are


def test_min_parties_above_party_count(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[aggregation]\nmin_parties = 3\n')
    err = error_of(tmp_path, text)
    assert "min_parties" in str(err)


def test_fixed_clipping_needs_a_norm(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[dp]\nnoise_multiplier = 1.0\n'
                           'clipping = "fixed"\n')
    err = error_of(tmp_path, text)
    assert "dp" in str(err) and "clipping_norm" in str(err)
    assert err.line == line_of(text, 'clipping = "fixed"')


def test_dp_with_krum_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[aggregation]\nmethod = "krum"\n'
                           '\n[dp]\nnoise_multiplier = 1.0\n')
    err = error_of(tmp_path, text)
    assert "dp" in str(err) and "'krum'" in str(err)


def test_dp_needs_noise_multiplier(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"\n', 'label = "y"\n\n[dp]\nclipping = "adaptive"\n')
    err = error_of(tmp_path, text)
    assert "dp" in str(err) and "'noise_multiplier'" in str(err)


@pytest.mark.parametrize(("key", "value"), [
    ("rounds", "0"), ("rounds", '"ten"'), ("seed", '"x"'), ("mode", '"cloud"')])
def test_bad_top_level_values_name_the_key(tmp_path: Path, key: str, value: str) -> None:
    text = MINIMAL.replace('label = "y"', f'label = "y"\n{key} = {value}')
    err = error_of(tmp_path, text)
    assert str(err).split(": ", 2)[1].startswith(key)
    assert err.line == line_of(text, f"{key} =")


@pytest.mark.parametrize(("key", "value"), [
    ("learning_rate", "0"), ("learning_rate", '"fast"'), ("C", "-1"), ("local_epochs", "0")])
def test_bad_training_values_name_the_key(tmp_path: Path, key: str, value: str) -> None:
    text = MINIMAL.replace('label = "y"\n', f'label = "y"\n\n[training]\n{key} = {value}\n')
    err = error_of(tmp_path, text)
    assert f"training.{key}" in str(err)
    assert err.line == line_of(text, f"{key} =")


def test_test_party_column_needs_a_test_file(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"', 'label = "y"\ntest_party_column = "bank"')
    err = error_of(tmp_path, text)
    assert "test_party_column" in str(err)


def test_label_listed_as_feature(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"', 'label = "y"\nnumeric = ["x", "y"]')
    err = error_of(tmp_path, text)
    assert "numeric" in str(err) and "'y'" in str(err)


def test_column_both_numeric_and_categorical(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"', 'label = "y"\nnumeric = ["x"]\ncategorical = ["x"]')
    err = error_of(tmp_path, text)
    assert "both numeric and categorical" in str(err) and "x" in str(err)


def test_vertical_without_id_or_roles_says_what_is_missing(tmp_path: Path) -> None:
    err = error_of(tmp_path, MINIMAL.replace('"horizontal"', '"vertical"'))
    assert "a vertical run needs 'id'" in str(err)
    err = error_of(tmp_path, MINIMAL.replace('"horizontal"', '"vertical"\nid = "cid"'))
    assert "needs a role" in str(err)


def test_unknown_kind(tmp_path: Path) -> None:
    err = error_of(tmp_path, MINIMAL.replace('"horizontal"', '"diagonal"'))
    assert str(err).split(": ", 2)[1].startswith("kind")
    assert err.line == 1


# --- the file itself ------------------------------------------------------------------


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = MINIMAL.replace('label = "y"', 'label = "y"\nrounds = = 3')
    err = error_of(tmp_path, text)
    assert "not valid TOML" in str(err)
    assert err.line == line_of(text, "rounds = = 3")
    assert f":{err.line}:" in str(err)


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


def test_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_bytes(b'kind = "\xff\xfe"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


# --- a SuperLink run by the coordinator, SuperNodes by the banks ----------------------

REMOTE = """\
kind = "horizontal"
mode = "deployment"
label = "y"

[deployment]
superlink = "fl.coordinator.example:9093"
root_certificates = "certs/ca.crt"

[[party]]
name = "bank_1"

[[party]]
name = "bank_2"
"""


def test_remote_superlink_keeps_data_on_the_banks(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, REMOTE))
    assert cfg.deployment.superlink == "fl.coordinator.example:9093"
    assert cfg.deployment.root_certificates == (tmp_path / "certs" / "ca.crt").resolve()
    assert [p.data for p in cfg.party] == [None, None]


@pytest.mark.parametrize("change, message", [
    (('mode = "deployment"\n', ""), 'needs mode = "deployment"'),
    (('root_certificates = "certs/ca.crt"\n', ""), "superlink needs root_certificates"),
    (('superlink = "fl.coordinator.example:9093"\n', ""),
     "root_certificates is only used with superlink"),
    (('"fl.coordinator.example:9093"', '"fl.coordinator.example"'), "deployment.superlink"),
])
def test_remote_superlink_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    err = error_of(tmp_path, REMOTE.replace(*change))
    assert message in str(err)


def test_party_without_data_needs_a_remote_superlink(tmp_path: Path) -> None:
    text = MINIMAL.replace('data = "bank_1.csv"\n', "")
    assert "party 'bank_1' has no 'data' file" in str(error_of(tmp_path, text))
