"""Vertical federated learning: encrypted products, the protocol in process (what each
party receives), bad input naming the party, and the CLI on Flower's simulation."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from csv_rows import rewrite

pytest.importorskip("tenseal")

from federated.config import load_config  # noqa: E402
from federated.runner import _vertical_setups  # noqa: E402
from federated.vertical.dispatch import LocalSend, party_of  # noqa: E402
from federated.vertical.protocol import iv_vertical, run_vertical, score_vertical  # noqa: E402
from federated.vertical.sample import write_vertical  # noqa: E402
from privacy.errors import ConfigError, FederationError, HEError, InputError  # noqa: E402
from privacy.he.linear import (  # noqa: E402
    SLOTS,
    LinearEvaluator,
    LinearKeys,
    baby_steps,
    galois_steps,
)


# ------------------------------------------------------------------ encrypted products
@pytest.fixture(scope="module")
def keys() -> LinearKeys:
    return LinearKeys(sorted(set(galois_steps(64)) | set(galois_steps(8))))


def test_matvec_rmatvec_blocksum_match_numpy(keys: LinearKeys) -> None:
    rng = np.random.default_rng(0)
    ev = LinearEvaluator(keys.public_bundle())
    X = rng.normal(size=(300, 50))
    w = rng.normal(size=50)
    add = rng.normal(size=SLOTS)
    y = keys.decrypt(ev.matvec(X, keys.encrypt_tiled(w, 64), columns=64, add=add), 300, what="y")
    assert np.abs(y - (X @ w + add[:300])).max() < 1e-4
    d = np.zeros(SLOTS)
    d[:300] = rng.normal(size=300)
    shift = rng.uniform(-2**16, 2**16, SLOTS)
    blobs = keys.encrypt_vector(d - shift, rotations=baby_steps(64))
    g = keys.decrypt(ev.rmatvec(X / 300, blobs, columns=64, shift=shift, add=-np.ones(50)),
                     50, what="g")
    assert np.abs(g - (X.T @ d[:300] / 300 - 1)).max() < 1e-4
    G = rng.normal(size=(300, 7))
    r = rng.normal(size=300)
    c = keys.decrypt(ev.blocksum(keys.encrypt_rows(G, 8), r, columns=8), 7, what="c")
    assert np.abs(c - G.T @ r).max() < 1e-4
    zero = keys.decrypt(ev.matvec(np.zeros((5, 3)), keys.encrypt_tiled(w[:3], 4), columns=4),
                        5, what="zero")
    assert np.abs(zero).max() < 1e-6


def test_evaluator_rejects_bad_ciphertexts(keys: LinearKeys) -> None:
    ev = LinearEvaluator(keys.public_bundle())
    with pytest.raises(HEError, match="ciphertexts, expected"):
        ev.matvec(np.ones((2, 2)), keys.encrypt_tiled(np.ones(2), 64)[:1], columns=64)
    with pytest.raises(HEError, match="not valid|sane size"):
        ev.matvec(np.ones((2, 2)), [b"garbage"] * baby_steps(2), columns=2)
    with pytest.raises(HEError, match="power of two"):
        ev.matvec(np.ones((2, 2)), [], columns=3)
    assert "secret" not in keys.public_bundle()


# ------------------------------------------------------------------ protocol in process
def _setups(config: Path, work: Path) -> dict[str, dict[str, Any]]:
    cfg = load_config(config)
    (work / "state").mkdir(parents=True, exist_ok=True)
    return _vertical_setups(cfg, work, None)


def _cfg(epochs: int, **training: Any) -> dict[str, Any]:
    return {"seed": 1, "epochs": epochs, "iv": True, "training": {"batch_size": 512, **training}}


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], LocalSend]:
    folder = tmp_path_factory.mktemp("vfl2")
    config = write_vertical(folder, 1500, test_customers=600, hosts=2, seed=3)
    send = LocalSend(_setups(config, folder / "work"), record=True)
    result = run_vertical(send, _cfg(6), "bank", ["partner_1", "partner_2"])
    return folder, result, send


def test_joint_model_beats_the_guest_alone_and_matches_pooled_lr(two_hosts: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    folder, result, _ = two_hosts
    assert result["intersection"] > 1000 and result["test_intersection"] > 300
    assert result["global"]["auc"] > result["guest_only"]["auc"] + 0.05
    assert [h["epoch"] for h in result["history"]] == list(range(1, 7))
    # the pooled model on the joined data (the same preprocessing: median, scale, one-hot)
    import pandas as pd

    def joined(suffix: str) -> Any:
        frames = [pd.read_csv(folder / f"{n}{suffix}.csv")
                  for n in ("bank", "partner_1", "partner_2")]
        out = frames[0]
        for f in frames[1:]:
            out = out.merge(f, on="cust_id")
        return out

    train, test = joined(""), joined("_test")
    y, yt = (train.pop("default") == "yes").values, (test.pop("default") == "yes").values
    cols = [c for c in train.columns if c != "cust_id"]
    X = pd.get_dummies(train[cols], dummy_na=False)
    Xt = pd.get_dummies(test[cols], dummy_na=False).reindex(columns=X.columns, fill_value=0)
    med = X.median()
    X, Xt = X.fillna(med), Xt.fillna(med)
    mu, sd = X.mean(), X.std(ddof=0).replace(0, 1)
    pooled = LogisticRegression(max_iter=5000).fit((X - mu) / sd, y)
    auc = roc_auc_score(yt, pooled.decision_function((Xt - mu) / sd))
    # The guest orders the aligned rows with a CSPRNG (hosts must not learn it), so the
    # mini-batches differ run to run: over runs the six-epoch joint AUC sits 0.003-0.011
    # above the converged pooled model on these 441 test rows (the early-stopped model
    # generalises a little better). The issue's 0.005 bar is measured on Lending Club by
    # benchmarks/bench_vfl.py.
    assert -0.01 < result["global"]["auc"] - auc < 0.02
    assert set(result["iv"]) == set(cols)
    assert result["iv"]["h0_0"] > result["iv"]["g3"]  # signal columns over noise


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _leaves(v)]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _leaves(v)]
    return [obj]


def test_hosts_receive_no_labels_residuals_or_gradients_in_the_clear(two_hosts: Any) -> None:
    _, _, send = two_hosts
    hosts = {"partner_1", "partner_2"}
    allowed_float = {"lr", "lam", "lr_prev"}
    for party, action, payload in send.log:
        if party not in hosts:
            continue
        for key, value in payload.items():
            for leaf in _leaves(value):
                if isinstance(leaf, np.ndarray):
                    # row numbers or serialised ciphertexts / points, never real values
                    assert leaf.dtype.kind in "iu", (action, key, leaf.dtype)
                elif isinstance(leaf, float):
                    assert key in allowed_float, (action, key)
    bundle = next(p for party, a, p in send.log if a == "v.setup")["bundle"]
    assert set(bundle) == {"parms", "public", "galois"}  # no secret key ever leaves


def test_guest_receives_only_ciphertexts_and_counts(two_hosts: Any) -> None:
    _, _, send = two_hosts
    for party, action, payload in send.log:
        if party != "bank":
            continue
        for key, value in payload.items():
            for leaf in _leaves(value):
                if isinstance(leaf, np.ndarray):
                    assert leaf.dtype.kind in "iu", (action, key)
                elif isinstance(leaf, float):
                    # per-bin row counts (IV) and step sizes only
                    assert key in {"totals", "lr", "lr_prev", "lam"}, (action, key)
                    if key == "totals":
                        assert leaf == int(leaf)


def test_alignment_never_shows_ids_to_the_coordinator(two_hosts: Any) -> None:
    folder, _, send = two_hosts
    ids = {row["cust_id"] for row in csv.DictReader((folder / "bank.csv").open())}
    for _, _, payload in send.log:
        for leaf in _leaves(payload):
            if isinstance(leaf, str):
                assert leaf not in ids


def _run_keeping_aligned_rows(config: Path, work: Path, seed: int
                              ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A run's result and each party's table rows in aligned order (read after align:
    the parties' state is gone when the run ends)."""
    setups = _setups(config, work)
    local, rows = LocalSend(setups), {}

    def send(party: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = local(party, action, payload)
        if action == "v.align" and payload["split"] == "train":
            rows[party] = party_of(setups[party]).store.array("rows_train")
        return reply

    return run_vertical(send, {**_cfg(2), "seed": seed}, "bank", ["partner_1"]), rows


def test_a_config_run_again_aligns_validates_and_trains_on_the_same_rows(
        tmp_path: Path) -> None:
    # the aligned order is drawn from the run's seed: the same validation rows, batches
    # and losses every run of one config (a fresh order per run made the validation
    # figures of a small job change from run to run); another seed, another order
    config = write_vertical(tmp_path, 300, seed=1)
    runs = [_run_keeping_aligned_rows(config, tmp_path / f"work{k}", seed)
            for k, seed in enumerate((1, 1, 2))]
    (first, rows1), (again, rows2), (other, rows3) = runs
    assert first["evaluated_on"] == "validation"
    assert all(np.array_equal(rows1[p], rows2[p]) for p in rows1)
    # equal up to the CKKS noise of the masked shares
    assert [h["loss"] for h in again["history"]] == pytest.approx(
        [h["loss"] for h in first["history"]], abs=5e-3)
    assert sorted(rows3["bank"].tolist()) == sorted(rows1["bank"].tolist())
    assert not np.array_equal(rows3["bank"], rows1["bank"])
    assert other["intersection"] == first["intersection"]


def test_information_value_only(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 400, seed=2)
    send = LocalSend(_setups(config, tmp_path / "work"))
    out = iv_vertical(send, _cfg(1), "bank", ["partner_1"])
    assert out["intersection"] > 250
    assert out["party"]["h0_0"] == "partner_1" and out["party"]["g0"] == "bank"
    assert out["iv"]["h0_0"] > 0.02


# ------------------------------------------------------------------ bad input
def test_ids_that_do_not_match_name_the_parties(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    rewrite(tmp_path / "partner_1.csv",
             lambda rows: [r.update(cust_id="TEL-" + r["cust_id"]) for r in rows])
    send = LocalSend(_setups(config, tmp_path / "work"))
    with pytest.raises(InputError, match="only 0 customers shared with partner_1"):
        run_vertical(send, _cfg(1), "bank", ["partner_1"])
    assert not (tmp_path / "bank.model.json").exists()


def test_constant_host_feature_names_party_and_column(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    rewrite(tmp_path / "partner_1.csv", lambda rows: [r.update(h0_1="7") for r in rows])
    send = LocalSend(_setups(config, tmp_path / "work"))
    with pytest.raises(InputError, match="partner_1.*constant") as err:
        run_vertical(send, _cfg(1), "bank", ["partner_1"])
    assert "h0_1" in str(err.value)
    assert not list(tmp_path.glob("*.model.json"))  # nothing half-trained saved


def test_all_null_host_feature_names_party(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    rewrite(tmp_path / "partner_1.csv", lambda rows: [r.update(h0_2="") for r in rows])
    send = LocalSend(_setups(config, tmp_path / "work"))
    with pytest.raises(InputError, match="partner_1.*all values missing"):
        run_vertical(send, _cfg(1), "bank", ["partner_1"])


def test_errors_on_aligned_rows_name_the_files_row_and_line(tmp_path: Path) -> None:
    """The label is read on the aligned rows (in PSI's order): a missing one is named by
    its row and line in the guest's file, not by its place in the aligned order."""
    config = write_vertical(tmp_path, 100, seed=1)
    rewrite(tmp_path / "bank.csv", lambda rows: rows[5].update(default=""))
    send = LocalSend(_setups(config, tmp_path / "work"))
    with pytest.raises(InputError, match="bank.*missing label value") as info:
        run_vertical(send, _cfg(1), "bank", ["partner_1"])
    assert info.value.row == 6 and info.value.line == 7
    assert info.value.file == str(tmp_path / "bank.csv")


def test_host_with_the_label_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from federated.runner import preflight

    config = write_vertical(tmp_path, 100, seed=1)
    rewrite(tmp_path / "partner_1.csv", lambda rows: [r.update(default="no") for r in rows])
    with pytest.raises(InputError, match="partner_1.*must not hold the label"):
        preflight(load_config(config))


def test_duplicate_customer_ids_are_refused(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 100, seed=1)
    rewrite(tmp_path / "partner_1.csv", lambda rows: rows.append(dict(rows[0])))
    send = LocalSend(_setups(config, tmp_path / "work"))
    with pytest.raises(InputError, match="partner_1.*appears twice") as info:
        run_vertical(send, _cfg(1), "bank", ["partner_1"])
    # the copy is the last data row, on the line after it (the header is line 1)
    last = len((tmp_path / "partner_1.csv").read_text().splitlines()) - 1
    assert info.value.row == last and info.value.line == last + 1
    assert f"(rows 1 and {last})" in str(info.value)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('id = "cust_id"\n', ""), "needs 'id'"),
    (lambda t: t.replace('role = "host"', 'role = "guest"'), "exactly one guest"),
    (lambda t: t.replace('role = "host"\n', ""), "needs a role"),
    (lambda t: t.replace('role = "host"', 'role = "arbiter"'), "role"),
    (lambda t: t + "\n[dp]\nnoise_multiplier = 1.0\n", "dp is not available"),
])
def test_bad_vertical_configs_name_the_key(tmp_path: Path, change: Any, message: str) -> None:
    config = write_vertical(tmp_path, 50, seed=1)
    config.write_text(change(config.read_text()))
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_a_party_without_a_test_file_is_named(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 50, test_customers=20, seed=1)
    text = config.read_text().replace('test = "partner_1_test.csv"\n', "")
    config.write_text(text)
    with pytest.raises(ConfigError, match="partner_1.*no 'test'"):
        load_config(config)


# ------------------------------------------------------------------ CLI on Flower
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from click.testing import CliRunner

    from covault.cli import main

    folder = tmp_path_factory.mktemp("vflcli")
    config = write_vertical(folder, 800, test_customers=300, epochs=3, seed=4)
    res = CliRunner().invoke(main, ["fl", "run", str(config), "--format", "json",
                                    "--ledger", str(folder / "audit.db")])
    assert res.exit_code == 0, res.output
    return folder, json.loads(res.output)


def test_cli_run_prints_the_issue_json(cli_run: Any) -> None:
    folder, data = cli_run
    assert list(data)[:7] == ["kind", "intersection", "test_intersection", "global",
                              "guest_only", "history", "iv"]
    assert data["kind"] == "vertical" and set(data["global"]) >= {"auc", "ks"}
    assert set(data["history"][0]) >= {"epoch", "loss", "auc", "seconds"}
    assert data["global"]["auc"] > data["guest_only"]["auc"]
    for name in ("bank", "partner_1"):
        part = json.loads((folder / f"{name}.model.json").read_text())
        assert part["party"] == name and (folder / f"{name}.model.json").stat().st_mode & 0o077 == 0
    assert "shares" in json.loads((folder / "bank.model.json").read_text())
    from privacy.ledger import Ledger

    for name in ("bank", "partner_1"):
        with Ledger(folder / f"audit.{name}.db", origin=name) as led:
            kinds = [r.kind for r in led.records()]
        assert "fl.vertical.intersection" in kinds and "fl.message" in kinds
        assert "fl.vertical.learned" in kinds


def test_cli_score_and_iv(cli_run: Any) -> None:
    from click.testing import CliRunner

    from covault.cli import main

    folder, data = cli_run
    out = folder / "scores.csv"
    res = CliRunner().invoke(main, ["fl", "score", str(folder / "vfl.toml"), "-o", str(out),
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == data["test_intersection"]
    assert all(0 < float(r["probability"]) < 1 for r in rows)
    res = CliRunner().invoke(main, ["fl", "score", str(folder / "vfl.toml"), "-o", str(out)])
    assert res.exit_code == 2 and "--force" in res.output
    res = CliRunner().invoke(main, ["fl", "iv", str(folder / "vfl.toml")])
    assert res.exit_code == 0 and "information value" in res.output and "h0_0" in res.output


def test_cli_bad_vertical_config_exits_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from covault.cli import main

    config = write_vertical(tmp_path, 50, seed=1)
    config.write_text(config.read_text().replace('id = "cust_id"\n', ""))
    res = CliRunner().invoke(main, ["fl", "run", str(config)])
    assert res.exit_code == 2 and "'id'" in res.output


def test_unknown_party_error_is_federation_error() -> None:
    send = LocalSend({"x": {"party": "x", "role": "arbiter", "state": "/nonexistent"}})
    with pytest.raises(FederationError, match="unknown role"):
        send("x", "v.hello", {})


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 600, test_customers=200, seed=6)
    send = LocalSend(_setups(config, tmp_path / "work"))
    cfg = {**_cfg(30, early_stopping=True, validation=0.2, patience=1, tol=0.01),
           "iv": False}
    result = run_vertical(send, cfg, "bank", ["partner_1"])
    assert len(result["history"]) < 30  # stopped before the last epoch
    losses = [h["loss"] for h in result["history"]]
    best = result["best_epoch"]
    assert len(losses) == best + 1  # patience 1: one epoch without a 1 % gain
    # every later epoch failed to gain tol = 1 % on the kept one: min >= best * (1 - tol)
    assert losses[best - 1] * (1 - 0.01) <= min(losses)
    assert all(loss >= losses[best - 1] * (1 - 0.01) for loss in losses[best:])
    assert result["evaluated_on"] == "test"


def test_id_type_aligns_mobiles_written_differently(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 120, seed=8)

    def as_mobile(rows: list[dict[str, str]], style: str) -> None:
        for r in rows:
            n = f"187{int(r['cust_id'][1:]):08d}"
            r["cust_id"] = n if style == "plain" else f"+86 {n[:3]} {n[3:7]} {n[7:]}"

    rewrite(tmp_path / "bank.csv", lambda rows: as_mobile(rows, "plain"))
    rewrite(tmp_path / "partner_1.csv", lambda rows: as_mobile(rows, "spaced"))
    setups = _setups(config, tmp_path / "work")
    with pytest.raises(InputError, match="only 0 customers shared"):
        iv_vertical(LocalSend(setups), _cfg(1), "bank", ["partner_1"])
    text = config.read_text().replace('id = "cust_id"', 'id = "cust_id"\nid_type = "mobile"')
    config.write_text(text)
    out = iv_vertical(LocalSend(_setups(config, tmp_path / "work2")), _cfg(1), "bank",
                      ["partner_1"])
    assert out["intersection"] > 80


# ------------------------------------------------------------------ ids as written
def _numeric_ids(rows: list[dict[str, str]], offset: int, width: int = 0) -> None:
    """Replace each ``cust_id`` (``C<number>``) by a number: ``base + n * 100000 +
    offset`` with a 20-digit base (``width`` 0), or ``n`` zero-padded to ``width``."""
    for r in rows:
        n = int(r["cust_id"][1:])
        r["cust_id"] = (f"{n:0{width}d}" if width else
                        str(62220210000000000000 + n * 100000 + offset))


def test_long_numeric_ids_are_compared_as_written(tmp_path: Path) -> None:
    # 20-digit account numbers do not fit a double: read as numbers, ids 7 apart became
    # equal and the parties "shared" customers they do not have in common
    config = write_vertical(tmp_path, 200, seed=1)
    rewrite(tmp_path / "bank.csv", lambda rows: _numeric_ids(rows, 0))
    rewrite(tmp_path / "partner_1.csv", lambda rows: _numeric_ids(rows, 7))
    with pytest.raises(InputError, match="only 0 customers shared with partner_1"):
        iv_vertical(LocalSend(_setups(config, tmp_path / "w1")), _cfg(1), "bank",
                    ["partner_1"])
    # the same ids on both sides (consecutive customers 100000 apart) align exactly
    rewrite(tmp_path / "partner_1.csv", lambda rows: [
        r.update(cust_id=str(int(r["cust_id"]) - 7)) for r in rows])
    out = iv_vertical(LocalSend(_setups(config, tmp_path / "w2")), _cfg(1), "bank",
                      ["partner_1"])
    assert out["intersection"] > 120


def test_leading_zeros_are_part_of_the_id(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 200, test_customers=80, seed=1)
    for name in ("bank", "partner_1"):
        rewrite(tmp_path / f"{name}.csv", lambda rows: _numeric_ids(rows, 0, width=8))
        rewrite(tmp_path / f"{name}_test.csv", lambda rows: _numeric_ids(rows, 0, width=8))
    setups = _setups(config, tmp_path / "work")
    run_vertical(LocalSend(setups), {**_cfg(1), "iv": False}, "bank", ["partner_1"])
    out = tmp_path / "scores.csv"
    send = LocalSend(_setups(config, tmp_path / "work_score"))
    send.setups["bank"]["scores"] = str(out)
    score_vertical(send, {"seed": 1}, "bank", ["partner_1"])
    written = [r["cust_id"] for r in csv.DictReader(out.open())]
    assert written and all(len(i) == 8 and i.startswith("0") for i in written)
    # "00000012" and "12" are two customers
    rewrite(tmp_path / "partner_1.csv", lambda rows: [
        r.update(cust_id=r["cust_id"].lstrip("0")) for r in rows])
    with pytest.raises(InputError, match="only 0 customers shared with partner_1"):
        iv_vertical(LocalSend(_setups(config, tmp_path / "w3")), _cfg(1), "bank",
                    ["partner_1"])


def test_scoring_refuses_model_parts_of_different_runs(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 300, test_customers=80, seed=1)
    run_vertical(LocalSend(_setups(config, tmp_path / "w1")), {**_cfg(1), "iv": False},
                 "bank", ["partner_1"])
    old_host = (tmp_path / "partner_1.model.json").read_text()
    run_vertical(LocalSend(_setups(config, tmp_path / "w2")), {**_cfg(2), "iv": False},
                 "bank", ["partner_1"])
    (tmp_path / "partner_1.model.json").write_text(old_host)
    send = LocalSend(_setups(config, tmp_path / "w3"))
    send.setups["bank"]["scores"] = str(tmp_path / "scores.csv")
    with pytest.raises(FederationError, match="partner_1.*not from the run"):
        score_vertical(send, {"seed": 1}, "bank", ["partner_1"])
    assert not (tmp_path / "scores.csv").exists()


def test_information_value_keeps_a_column_name_two_parties_hold(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 400, seed=2)
    rewrite(tmp_path / "partner_1.csv", lambda rows: [r.update(g0=r.pop("h0_0"))
                                                     for r in rows])
    out = iv_vertical(LocalSend(_setups(config, tmp_path / "work")), _cfg(1), "bank",
                      ["partner_1"])
    assert {"bank:g0", "partner_1:g0"} <= set(out["iv"]) and "g0" not in out["iv"]
    assert out["party"]["bank:g0"] == "bank" and out["party"]["partner_1:g0"] == "partner_1"
    assert out["iv"]["partner_1:g0"] > 0.02  # the host's strong column, not overwritten


def test_probabilities_match_the_event_rate_of_a_rare_label(tmp_path: Path) -> None:
    # a label with ~3 % events (the sample's defaults, thinned at random: the ranking
    # signal stays, weakly). The residual is linearised at the prior log-odds: the mean
    # score sits at the event rate and the log loss at the base rate's or better
    # (expanded at 0, as FATE's, the mean score was ~0.25, the log loss twice the rate's)
    config = write_vertical(tmp_path, 3000, test_customers=1500, seed=4)
    rng = np.random.default_rng(0)

    def thin(rows: list[dict[str, str]]) -> None:
        for r in rows:
            if r["default"] == "yes" and rng.random() > 0.2:
                r["default"] = "no"

    rewrite(tmp_path / "bank.csv", thin)
    rewrite(tmp_path / "bank_test.csv", thin)
    result = run_vertical(LocalSend(_setups(config, tmp_path / "work")),
                          {**_cfg(5), "iv": False}, "bank", ["partner_1"])
    out = tmp_path / "scores.csv"
    send = LocalSend(_setups(config, tmp_path / "work_score"))
    send.setups["bank"]["scores"] = str(out)
    score_vertical(send, {"seed": 1}, "bank", ["partner_1"])
    p = {r["cust_id"]: float(r["probability"]) for r in csv.DictReader(out.open())}
    y = {r["cust_id"]: r["default"] == "yes" for r in csv.DictReader(
        (tmp_path / "bank_test.csv").open()) if r["cust_id"] in p}
    rate = float(np.mean([r["default"] == "yes" for r in csv.DictReader(
        (tmp_path / "bank.csv").open())]))
    assert 0.01 < rate < 0.06
    mean = float(np.mean(list(p.values())))
    assert rate / 2 < mean < 2 * rate  # expanded at 0 it was ~10x the rate
    test_rate = float(np.mean(list(y.values())))
    base = -(test_rate * np.log(rate) + (1 - test_rate) * np.log(1 - rate))
    assert result["global"]["logloss"] < 1.05 * base  # expanded at 0: ~2x the base rate's


def test_a_third_label_value_names_the_guest_file(tmp_path: Path) -> None:
    config = write_vertical(tmp_path, 200, seed=1)
    rewrite(tmp_path / "bank.csv", lambda rows: rows[5].update(default="maybe"))
    with pytest.raises(InputError, match="needs exactly 2 values") as err:
        run_vertical(LocalSend(_setups(config, tmp_path / "work")), {**_cfg(1), "iv": False},
                     "bank", ["partner_1"])
    assert "bank.csv" in str(err.value) and "'maybe'" in str(err.value)
