"""Fuzz the configuration files covault reads: masking policies (YAML,
``masking/policy.py`` through ``privacy/safe_yaml.py``) and federated run configs (TOML,
``federated/config.py``).

Inputs: random bytes; line-level text mutations (a value replaced by a boundary value,
an anchor, an alias, a tag, a deep flow collection; lines deleted, duplicated, swapped,
cut; bytes that are not UTF-8); and tree-level mutations of the parsed document written
back as JSON (a YAML subset) or passed to ``parse_config``. A policy that loads is also
hashed, serialised and resolved, as ``mask check`` and ``mask apply`` do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st

from covault.cli import main
from federated.config import FLConfig, load_config, parse_config
from masking.policy import Policy
from privacy.errors import ConfigError, PolicyError

from ._fuzz import World, cli, fuzz_settings, mutate_json, mutate_text, outcome, random_bytes

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8))

FL_CONFIG = """\
kind = "horizontal"
label = "default"
rounds = 3
seed = 7
exclude = ["id"]

[training]
local_epochs = 2
learning_rate = 0.1
batch_size = 256

[aggregation]
method = "ckks"
key_holder = "bank_1"
min_parties = 2

[dp]
noise_multiplier = 0.5
clipping = "fixed"
clipping_norm = 1.0

[[party]]
name = "bank_1"
data = "bank_1.csv"

[[party]]
name = "bank_2"
data = "bank_2.parquet"
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("fuzz-configs")
    policy = Policy.preset("jrt0171").to_yaml()
    (d / "run.toml").write_text(FL_CONFIG)
    assert isinstance(load_config(d / "run.toml"), FLConfig)
    return World(dir=d, policy=policy.encode(), policy_doc=yaml.safe_load(policy),
                 toml=FL_CONFIG.encode(), toml_doc=tomllib.loads(FL_CONFIG))


# --------------------------------------------------------------------------- policies
def _use(policy: Policy) -> None:
    """What `mask check` and `mask apply` do with a policy that loaded."""
    assert len(policy.hash) == 64
    policy.to_yaml()
    for name in [None, *policy.view_names]:
        policy.view(name)
    policy.column_types(["id_no", "mobile", "name", "x"])


def _check_policy(world: World, blob: bytes) -> None:
    path: Path = world["dir"] / "policy.yaml"
    path.write_bytes(blob)
    got = outcome("masking policy (YAML)", lambda: Policy.load(path), limit_s=10)
    if isinstance(got, Policy):
        outcome("masking policy: use", lambda: _use(got))
        again = Policy.from_yaml(got.to_yaml())
        assert again.hash == got.hash, "a policy changed in a YAML round trip"


def test_valid_policy(world: World) -> None:
    _check_policy(world, world["policy"])


@fuzz_settings(40)
@given(random_bytes())
@example(BOMB.encode())
@example(b"a: " + b"[" * 20_000 + b"]" * 20_000)
@example(b"!!python/object/apply:os.system ['true']")
@example(b"version: 1\n---\nversion: 2\n")
@example(b"\xef\xbb\xbfversion: 1\n")
def test_policy_random(world: World, blob: bytes) -> None:
    _check_policy(world, blob)


@fuzz_settings(50)
@given(st.data())
def test_policy_text_mutations(world: World, data: st.DataObject) -> None:
    _check_policy(world, mutate_text(data, world["policy"], sep=b": "))


@fuzz_settings(40)
@given(st.data())
def test_policy_tree_mutations(world: World, data: st.DataObject) -> None:
    text = mutate_json(data, world["policy_doc"])
    _check_policy(world, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("escape", ["\\ud800\\udc00", "\\udc00", "\\ud83d\\ude00"])
def test_surrogate_escapes_are_refused(world: World, escape: str) -> None:
    """Found by this campaign: ``"\\ud800\\udc00"`` (a JSON-style surrogate pair) or a lone
    ``"\\udc00"`` in a double-quoted scalar loaded as a string holding surrogates, and
    ``Policy.hash`` (``mask apply``, ``mask diff``) then died with ``UnicodeEncodeError``.
    Every YAML file covault reads now refuses them with file, line and column."""
    doc = dict(world["policy_doc"])
    doc["description"] = "@ESCAPE@"
    path: Path = world["dir"] / "surrogate.yaml"
    path.write_text(json.dumps(doc).replace("@ESCAPE@", escape))
    with pytest.raises(PolicyError, match=r"surrogate.yaml:1: column \d+: .*surrogate"):
        Policy.load(path)
    res = cli("masking policy", main, ["mask", "check", str(path)])
    assert res.exit_code == 2 and "surrogate" in res.stderr


@fuzz_settings(15, deadline_s=5)
@given(st.data())
def test_cli_mask_check(world: World, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        blob = mutate_text(data, world["policy"], sep=b": ")
    else:
        blob = mutate_json(data, world["policy_doc"]).encode("utf-8", "surrogatepass")
    path: Path = world["dir"] / "cli-policy.yaml"
    path.write_bytes(blob)
    cli("masking policy", main, ["mask", "check", str(path)])


# --------------------------------------------------------------------------- FL config
def _check_toml(world: World, blob: bytes) -> None:
    path: Path = world["dir"] / "fuzz.toml"
    path.write_bytes(blob)
    got = outcome("FL config (TOML)", lambda: load_config(path))
    if isinstance(got, FLConfig):
        assert got.party_names and got.source == path


@fuzz_settings(30)
@given(random_bytes())
@example(b"kind = " + b"[" * 5000 + b"]" * 5000)
@example(b"rounds = " + b"9" * 5000)
@example(b'kind = "horizontal"\nlabel = "y"\nparty = [' + b"{name='a'}," * 2 + b"]")
def test_fl_config_random(world: World, blob: bytes) -> None:
    _check_toml(world, blob)


@fuzz_settings(80)
@given(st.data())
def test_fl_config_text_mutations(world: World, data: st.DataObject) -> None:
    _check_toml(world, mutate_text(data, world["toml"], sep=b" = "))


@fuzz_settings(80)
@given(st.data())
def test_fl_config_tree_mutations(world: World, data: st.DataObject) -> None:
    try:
        doc: Any = json.loads(mutate_json(data, world["toml_doc"]))
    except (ValueError, RecursionError):
        assume(False)  # not expressible in TOML; text mutations cover these
    assume(isinstance(doc, dict))
    got = outcome("FL config (parsed)", lambda: parse_config(
        doc, source=world["dir"] / "run.toml", text=FL_CONFIG))
    if isinstance(got, FLConfig):
        assert got.party_names


def test_found_nul_in_a_path_is_a_config_error(world: World) -> None:
    """Found by this campaign: a party's ``data = "\\u0000"`` raised ``ValueError:
    embedded null byte`` from pathlib in ``parse_config``; now a ``ConfigError``."""
    doc = json.loads(json.dumps(world["toml_doc"]))
    doc["party"][1]["data"] = "bank\x00.csv"
    with pytest.raises(ConfigError, match="run.toml: a file path"):
        parse_config(doc, source=world["dir"] / "run.toml", text=FL_CONFIG)


@fuzz_settings(10, deadline_s=10)
@given(st.data())
def test_cli_fl_run_preflight(world: World, data: st.DataObject) -> None:
    """`covault fl run` reads the config first; a malformed one exits 2 before Flower."""
    path: Path = world["dir"] / "cli.toml"
    blob = mutate_text(data, world["toml"], sep=b" = ")
    try:
        cfg = load_config_quiet(path, blob)
    except Exception:  # noqa: BLE001 - only broken configs go to the CLI
        cfg = None
    assume(cfg is None)
    cli("FL config", main, ["fl", "run", str(path), "--out", str(world["dir"] / "fl-out")])


def load_config_quiet(path: Path, blob: bytes) -> FLConfig:
    path.write_bytes(blob)
    return load_config(path)
