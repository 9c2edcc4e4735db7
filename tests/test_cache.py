"""The cache of derivations on disk: same results as without it, and nothing read is trusted blindly.

Each test has a cache directory of its own (``SYMMLE_CACHE_DIR``).  A derivation read back must
give byte-identical text, JSON, LaTeX and Markdown, and the same fit; an entry that is corrupt,
stale or changed (even with a valid hash) is ignored and rewritten; a directory that cannot be
written is no cache, not an error.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symmle
from symmle.base.budget import attempt
from symmle.cli import cli
from symmle.model.build import inline_model, load_model
from symmle.model.catalogue import family_names
from symmle.symbolic import cache, codec
from symmle.symbolic import derivation as derivation_module
from symmle.symbolic.recheck import recheck

POWER = ("theta*x**(theta - 1)", "x", "0,1", ["theta:positive"])


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """A fresh cache directory for each test, switched on."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV_DIR, str(directory))
    monkeypatch.delenv(cache.ENV_OFF, raising=False)
    return directory


_PRISTINE: dict[str, tuple] = {}


def stored(own_cache: Path, name: str = "normal"):
    """``(derivation, entry path)``: derived once per session, the entry copied to this test's cache."""
    if name not in _PRISTINE:
        d = symmle.derive(name, cache=False)
        cache.store(d.model, 20.0, d.likelihood, d.stationarity, d.information)
        (path,) = [p for p in entries(own_cache) if p.name == cache._path(cache.key_of(d.model, 20.0)).name]
        _PRISTINE[name] = (d, path.read_bytes())
    d, data = _PRISTINE[name]
    path = cache._path(cache.key_of(d.model, 20.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return d, path


def entries(directory: Path) -> list[Path]:
    return sorted((directory / "derivations").glob("*.json")) if (directory / "derivations").exists() else []


def outputs(d) -> dict[str, str]:
    return {
        "text": d.to_text(),
        "json": json.dumps(d.to_dict(), indent=2),
        "latex": d.to_latex(standalone=True),
        "markdown": d.to_markdown(),
    }


def sample(d, n=400, seed=3):
    from symmle.simulate.sampling import draw

    model = d.model
    return draw(model, {s.name: v for s, v in model.point().items()}, n, np.random.default_rng(seed))


# --------------------------------------------------------------------------
# the same results, read back
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "normal",  # closed forms
        "gamma",  # a reduced equation and a profile relation
        "uniform",  # an order statistic
        "poisson",  # discrete
        "weibull_scale",  # a known constant, sums over the data
    ],
)
def test_a_derivation_read_back_gives_the_same_outputs_and_fit(name, own_cache):
    fresh = symmle.derive(name)
    assert len(entries(own_cache)) == 1
    found = cache.load(fresh.model, 20.0)
    assert found.status == "hit"
    read_back = symmle.derive(name)
    assert read_back.likelihood == fresh.likelihood
    assert read_back.stationarity == fresh.stationarity
    assert read_back.information == fresh.information
    assert outputs(read_back) == outputs(fresh)
    x = sample(fresh)
    consts = {q.name: v for q, v in zip(fresh.model.constants, fresh.model.constant_point().values())}
    afresh = symmle.fit(name, x, consts, cache=False).to_dict()
    cold = symmle.fit(name, x, consts).to_dict()  # a known constant: another entry, stored now
    warm = symmle.fit(name, x, consts).to_dict()
    assert afresh == cold == warm


def test_an_inline_model_is_cached_by_its_canonical_form(own_cache):
    m = inline_model(*POWER)
    fresh = symmle.derive(m)
    assert cache.load(m, 20.0).status == "hit"
    # the same model built again is the same entry; another density is another entry
    again = symmle.derive(inline_model(*POWER))
    assert outputs(again) == outputs(fresh)
    assert len(entries(own_cache)) == 1
    symmle.derive(inline_model("theta*x**(theta - 1)", "x", "0,2", ["theta:positive"], validate=False))
    assert len(entries(own_cache)) == 2


def test_constants_and_time_budgets_are_part_of_the_key(own_cache):
    m = load_model("weibull_scale")
    symmle.derive(m)
    symmle.derive(m.with_constants({"k": "2"}))
    symmle.derive(m, timeout=30)
    assert len(entries(own_cache)) == 3
    assert cache.load(m.with_constants({"k": "3"}), 20.0).status == "no entry"


def test_the_command_line_prints_the_same_with_and_without_the_cache(own_cache, tmp_path):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).normal(2.0, 1.5, 2000))
    env = dict(os.environ)

    def symmle_cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "symmle", *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return proc.stdout

    cold = symmle_cli("derive", "normal", "--format", "json")
    assert entries(own_cache)
    assert symmle_cli("derive", "normal", "--format", "json") == cold
    assert symmle_cli("derive", "normal", "--format", "json", "--no-cache") == cold
    assert symmle_cli("derive", "normal", "--format", "latex") == symmle.derive("normal").to_latex() + "\n"
    assert symmle_cli("fit", "normal", str(data)) == symmle_cli("fit", "normal", str(data), "--no-cache")


# --------------------------------------------------------------------------
# --no-cache and cache=False
# --------------------------------------------------------------------------


def plant_warning(path: Path, text: str) -> None:
    """Add a warning to a stored derivation, with a valid hash (warnings are text: nothing checks them)."""
    doc = json.loads(path.read_text())
    warnings = doc["payload"]["stationarity"]["v"]["warnings"]["v"]
    warnings.append(text)
    rehash(path, doc)


def rehash(path: Path, doc: dict) -> None:
    canonical = json.dumps(doc["payload"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    doc["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    path.write_text(json.dumps(doc))


def test_no_cache_neither_reads_nor_writes(own_cache):
    runner = CliRunner()
    result = runner.invoke(cli, ["derive", "exponential", "--no-cache"])
    assert result.exit_code == 0 and not entries(own_cache)
    result = runner.invoke(cli, ["derive", "exponential"])
    assert result.exit_code == 0 and len(entries(own_cache)) == 1
    plant_warning(entries(own_cache)[0], "planted in the cache")
    assert "planted in the cache" in runner.invoke(cli, ["derive", "exponential"]).stdout
    assert "planted in the cache" not in runner.invoke(cli, ["derive", "exponential", "--no-cache"]).stdout
    assert "planted" not in repr(symmle.derive("exponential", cache=False).warnings)
    # the flag is gone with the command: the next one uses the cache again
    assert "planted in the cache" in runner.invoke(cli, ["derive", "exponential"]).stdout


def test_every_deriving_command_takes_no_cache(own_cache, tmp_path):
    data = tmp_path / "x.txt"
    data.write_text("0.5\n1.5\n1.0\n")
    runner = CliRunner()
    for args in (
        ["derive", "exponential"],
        ["fit", "exponential", str(data)],
        ["compile", "exponential", "-o", str(tmp_path / "m.py")],
        ["check", "poisson", "--true", "lam=3", "--n", "40", "--reps", "20", "--agree", "0", "--seed", "1"],
    ):
        result = runner.invoke(cli, [*args, "--no-cache"])
        assert result.exit_code == 0, result.output
    assert not entries(own_cache)


def test_the_library_options_switch_it_off(own_cache, monkeypatch):
    symmle.derive("poisson", cache=False)
    symmle.fit("poisson", [1, 2, 2, 4], cache=False)
    symmle.check("poisson", {"lam": 3}, n=40, reps=20, seed=1, agree=0, cache=False)
    assert not entries(own_cache)
    monkeypatch.setenv(cache.ENV_OFF, "1")
    symmle.derive("poisson")
    assert not entries(own_cache)
    symmle.derive("poisson", cache=True)  # an explicit option wins over the environment
    assert len(entries(own_cache)) == 1
    assert symmle.clear_cache() == 1 and not entries(own_cache)


# --------------------------------------------------------------------------
# entries that are not trusted
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut short
        lambda text: "not json at all {",
        lambda text: json.dumps({"symmle_cache": 1}),
        lambda text: text.replace("T1", "T9", 1),  # content changed, hash not updated
        lambda text: "[" * 100_000 + "]" * 100_000,  # nested beyond any parser's depth
        lambda text: "",
    ],
)
def test_a_corrupt_entry_is_ignored(damage, own_cache):
    d, path = stored(own_cache)
    path.write_text(damage(path.read_text()))
    found = cache.load(d.model, 20.0)
    assert found.records is None and found.status.startswith("corrupt"), found.status


def test_a_bad_entry_is_rewritten_by_the_fresh_derivation(own_cache):
    d, path = stored(own_cache, "exponential")
    path.write_text("{")
    again = symmle.derive("exponential")
    assert outputs(again) == outputs(d)
    assert cache.load(d.model, 20.0).status == "hit"


def test_an_entry_for_another_version_is_not_used(own_cache, monkeypatch):
    d, path = stored(own_cache)
    versions = dict(cache._versions())
    monkeypatch.setattr(cache, "_versions", lambda: {**versions, "sympy": "0.0.1"})
    assert cache.load(d.model, 20.0).status == "no entry"
    # even where the old file lies at the new entry's place
    new_path = cache._path(cache.key_of(d.model, 20.0))
    new_path.write_bytes(path.read_bytes())
    assert cache.load(d.model, 20.0).status.startswith("stale")


def node_at(doc, *keys):
    node = doc["payload"]
    for k in keys:
        node = node[k]
    return node


def estimator_node(doc, name):
    pairs = node_at(doc, "stationarity", "v", "estimators", "v")
    (record,) = [v for k, v in pairs if k == name]
    return record["v"]


def tamper(path: Path, change) -> None:
    """Change a stored formula and recompute the hash: a valid-looking entry."""
    doc = json.loads(path.read_text())
    change(doc)
    rehash(path, doc)


def set_expr(holder: dict, key, expr) -> None:
    holder[key] = {"$": "expr", "v": codec.encode_expr(expr)}


def sym(d, name):
    return {
        **d.model.symbols,
        **{s.symbol.name: s.symbol for s in d.likelihood.statistics},
        "N": d.likelihood.N,
    }[name]


TAMPERS = {
    # an estimator off by one observation
    "estimator": (
        "normal",
        lambda d, doc: set_expr(estimator_node(doc, "mu"), "expr", sym(d, "T1") / (sym(d, "N") + 1)),
    ),
    # the variance estimator unbiased instead of maximum likelihood
    "variance": (
        "normal",
        lambda d, doc: set_expr(
            estimator_node(doc, "sigma2"),
            "expr",
            (sym(d, "N") * sym(d, "T2") - sym(d, "T1") ** 2) / (sym(d, "N") * (sym(d, "N") - 1)),
        ),
    ),
    # a Fisher entry doubled
    "fisher": (
        "normal",
        lambda d, doc: set_expr(
            node_at(doc, "information", "v"),
            "fisher",
            sp.Matrix([[2 / sym(d, "sigma2"), 0], [0, 1 / (2 * sym(d, "sigma2") ** 2)]]),
        ),
    ),
    # the bound not the inverse of N I
    "crlb": (
        "normal",
        lambda d, doc: set_expr(
            node_at(doc, "information", "v"),
            "crlb",
            sp.Matrix([[sym(d, "sigma2") / sym(d, "N"), 0], [0, sym(d, "sigma2") ** 2 / sym(d, "N")]]),
        ),
    ),
    # a wrong expectation behind the information
    "expectation": (
        "normal",
        lambda d, doc: node_at(doc, "information", "v", "expectations", "v")[0].__setitem__(
            1, {"$": "expr", "v": codec.encode_expr(sym(d, "mu") + 1)}
        ),
    ),
    # the log-likelihood with a term more
    "log-likelihood": (
        "normal",
        lambda d, doc: set_expr(
            node_at(doc, "likelihood", "v"),
            "log_likelihood",
            d.log_likelihood + sym(d, "mu") * sym(d, "N") / 100,
        ),
    ),
    # a right formula near the check point, a wrong one elsewhere
    "branch": (
        "normal",
        lambda d, doc: set_expr(
            estimator_node(doc, "mu"),
            "expr",
            sp.Piecewise(
                (sym(d, "T1") / sym(d, "N"), sp.Abs(sym(d, "T1") / sym(d, "N")) < 1000),
                (2 * sym(d, "T1") / sym(d, "N"), True),
            ),
        ),
    ),
    # a score that is not the derivative of the log-likelihood
    "score": (
        "normal",
        lambda d, doc: set_expr(
            node_at(doc, "stationarity", "v", "score", "v"), 0, d.stationarity.score[0] + 1
        ),
    ),
    # twice the sample maximum, in both places it is stored
    "boundary": ("uniform", lambda d, doc: both_boundary(doc, 2 * d.likelihood.order_statistics[1])),
    # only one of the two copies changed
    "boundary copy": (
        "uniform",
        lambda d, doc: set_expr(estimator_node(doc, "theta"), "expr", 2 * d.likelihood.order_statistics[1]),
    ),
    # a reduced equation that is not the score's, in both places it is stored
    "equation": ("gamma", lambda d, doc: both_equations(doc, d.stationarity.equations[0], 1)),
    # only one of the two copies changed
    "equation copy": (
        "gamma",
        lambda d, doc: set_expr(
            node_at(doc, "stationarity", "v", "equations", "v"),
            0,
            sp.Eq(d.stationarity.equations[0].lhs, d.stationarity.equations[0].rhs + 1, evaluate=False),
        ),
    ),
    # a profile relation off by a factor, in both places it is stored
    "profile": ("gamma", lambda d, doc: both_profile(d, doc, 2)),
    # a support constraint said to bind where it does not (the lecture states it)
    "support root": (
        "uniform",
        lambda d, doc: set_expr(
            node_at(doc, "stationarity", "v", "support", "v", 0, "v", 1, "v", "constraints", "v", 0, "v"),
            "root",
            2 * d.likelihood.order_statistics[1],
        ),
    ),
}


def both_boundary(doc, expr) -> None:
    set_expr(estimator_node(doc, "theta"), "expr", expr)
    set_expr(node_at(doc, "stationarity", "v", "boundary", "v", 0, "v"), 1, expr)


def both_equations(doc, eq, shift) -> None:
    new = sp.Eq(eq.lhs, eq.rhs + shift, evaluate=False)
    set_expr(estimator_node(doc, "a"), "equation", new)
    set_expr(node_at(doc, "stationarity", "v", "equations", "v"), 0, new)


def both_profile(d, doc, factor) -> None:
    ((b, value),) = d.stationarity.profile
    set_expr(estimator_node(doc, "b"), "equation", sp.Eq(b, factor * value))
    set_expr(node_at(doc, "stationarity", "v", "profile", "v", 0, "v"), 1, factor * value)


@pytest.mark.parametrize("what", sorted(TAMPERS))
def test_a_changed_formula_with_a_valid_hash_is_rejected(what, own_cache):
    name, change = TAMPERS[what]
    d, path = stored(own_cache, name)
    tamper(path, lambda doc: change(d, doc))
    found = cache.load(d.model, 20.0)
    assert found.records is None and found.status.startswith(("rejected", "corrupt")), found.status


def test_a_tampered_entry_is_rewritten_by_the_fresh_derivation(own_cache):
    d, path = stored(own_cache, "uniform")
    tamper(path, lambda doc: both_boundary(doc, 2 * d.likelihood.order_statistics[1]))
    again = symmle.derive("uniform")
    assert again.solutions["theta"].expr == d.likelihood.order_statistics[1]
    assert outputs(again) == outputs(d)
    assert cache.load(d.model, 20.0).status == "hit"


# --------------------------------------------------------------------------
# the reader: no evaluation, bounded
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "node",
    [
        ["exp", "__import__('os').system('true')"],  # a string where an expression goes
        ["Symbol", "__import__('os').system('true')"],  # a name outside the symbol table
        ["Symbol", "y"],
        ["eval", ["Integer", "1"]],
        ["Lambda", ["Symbol", "x"], ["Symbol", "x"]],
        ["Function", "f"],
        ["Pow", ["Integer", "9"], ["Integer", "387420489"]],  # 9**9**9 would never finish
        ["factorial", ["Integer", "1000000000"]],
        ["Integer", "1" * 5000],
        ["Integer", "0x10"],
        ["Rational", "1", "0"],
        ["Float", 0, "1", 0, 1, 10**9],
        ["Matrix", "mutable", 10**6, 10**6, []],
        ["Add"] + [["Integer", "1"]],  # Add(1) rebuilds as 1, not as the stored tree
        [],
        "Integer",
        ["S", "__class__"],
    ],
)
def test_the_reader_refuses_what_is_not_a_derivation(node):
    table = codec.SymbolTable.of(load_model("exponential"))
    with pytest.raises(codec.Unreadable):
        codec.decode_expr(node, table)


def test_entries_are_read_without_any_evaluator(own_cache, monkeypatch):
    d, path = stored(own_cache)
    doc = json.loads(path.read_text())
    table = codec.SymbolTable.of(d.model, [s.expr for s in d.likelihood.statistics])

    def forbidden(*args, **kwargs):
        raise AssertionError("stored text reached an evaluator")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sp, "sympify", forbidden)
    import sympy.parsing.sympy_parser as sympy_parser

    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    st = codec.decode(doc["payload"]["stationarity"], d.model, table)
    info = codec.decode(doc["payload"]["information"], d.model, table)
    assert st == d.stationarity and info == d.information


def test_symbols_come_from_the_model(own_cache):
    d, _ = stored(own_cache)
    table = codec.SymbolTable.of(d.model, [s.expr for s in d.likelihood.statistics])
    mu = codec.decode_expr(["Symbol", "mu"], table)
    assert mu is d.model.symbols["mu"] and mu.is_real
    t2 = codec.decode_expr(["Symbol", "T2"], table)
    assert (
        t2 == d.likelihood.statistics[1].symbol
        and t2.assumptions0 == d.likelihood.statistics[1].symbol.assumptions0
    )
    with pytest.raises(codec.Unreadable):
        codec.decode_expr(["Symbol", "T3"], table)


# --------------------------------------------------------------------------
# writing: complete derivations only, atomically, bounded, never an error
# --------------------------------------------------------------------------


def test_a_derivation_cut_short_by_its_budget_is_not_stored(own_cache, monkeypatch):
    real = derivation_module.solve_stationarity

    def with_a_time_out(lik, *, timeout=None):
        attempt("a strategy that runs out of time", 0.01, lambda: time.sleep(1))
        return real(lik, timeout=timeout)

    monkeypatch.setattr(derivation_module, "solve_stationarity", with_a_time_out)
    d = symmle.derive("exponential")
    assert d.estimators["lam"] is not None and not entries(own_cache)


def test_a_stage_that_used_up_its_budget_is_not_stored(own_cache, monkeypatch):
    real = derivation_module.fisher_information

    def slow(lik, regular, *, timeout=None):
        time.sleep(1.0)  # the Fisher entries share one deadline: later ones may have been skipped
        return real(lik, regular, timeout=timeout)

    monkeypatch.setattr(derivation_module, "fisher_information", slow)
    symmle.derive("exponential", timeout=1.2)
    assert not entries(own_cache)
    symmle.derive("exponential", timeout=5)
    assert len(entries(own_cache)) == 1


def test_an_unwritable_directory_is_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(cache.ENV_DIR, str(blocker / "cache"))  # below a regular file: never a directory
    d = symmle.derive("poisson")
    assert cache.load(d.model, 20.0).status == "no entry"
    proc = subprocess.run(
        [sys.executable, "-m", "symmle", "derive", "poisson"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == d.to_text()


def test_processes_share_the_directory(own_cache):
    code = "import symmle; print(symmle.derive('exponential').to_text(), end='')"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
        )
        for _ in range(3)
    ]
    texts = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(texts)) == 1
    assert len(entries(own_cache)) == 1
    assert not list((own_cache / "derivations").glob("*.tmp"))
    assert cache.load(load_model("exponential"), 20.0).status == "hit"


def test_the_least_recently_used_entries_go_first(own_cache, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    symmle.derive("exponential")
    time.sleep(0.05)
    symmle.derive("poisson")
    time.sleep(0.05)
    symmle.derive("exponential")  # read back: now the most recently used
    time.sleep(0.05)
    symmle.derive("geometric")
    assert cache.load(load_model("exponential"), 20.0).status == "hit"
    assert cache.load(load_model("geometric"), 20.0).status == "hit"
    assert cache.load(load_model("poisson"), 20.0).status == "no entry"


def test_the_cache_lives_in_the_user_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache.cache_dir() == tmp_path / "xdg" / "symmle"
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"


@pytest.mark.parametrize("name", family_names("scalar"))
def test_every_family_reads_back_and_passes_its_checks(name, derivation):
    """A derivation the checks would refuse is never served from the cache: a silent slowdown."""
    d = derivation(name)
    payload = {k: codec.encode(getattr(d, k), d.model) for k in ("likelihood", "stationarity", "information")}
    table = codec.SymbolTable.of(d.model, [s.expr for s in d.likelihood.statistics])
    back = {k: codec.decode(json.loads(json.dumps(v)), d.model, table) for k, v in payload.items()}
    assert back == {"likelihood": d.likelihood, "stationarity": d.stationarity, "information": d.information}
    recheck(d.model, back["likelihood"], back["stationarity"], back["information"], np.random.default_rng())


def test_what_would_not_read_back_is_not_written(own_cache, monkeypatch):
    """An entry the reader would refuse (a record of a newer kind, say) would be a miss at every read."""
    d = symmle.derive("exponential", cache=False)

    def refuse(model, payload):
        raise codec.Unreadable("a record this reader does not know")

    monkeypatch.setattr(cache, "_decode", refuse)
    status = cache.store(d.model, 20.0, d.likelihood, d.stationarity, d.information)
    assert status.startswith("not cacheable") and not entries(own_cache)
