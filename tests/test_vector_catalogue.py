"""Every vector family of the catalogue, through every stage (issue 12).

Parametrized over ``family_names("vector")`` so that a new vector spec is tested as soon as it is
added: it derives with every closed form verified entrywise (or a numeric kind), its sampler draws
rows the model accepts, a fit of its own draws lands near the truth (within five standard errors
per entry), and the compiled estimator agrees with the fit.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import symmle
from symmle.model.catalogue import family_names
from symmle.model.explicit import model_point
from symmle.simulate.vector_sampling import vector_sampler

VECTOR = family_names("vector")


def test_the_catalogue_has_the_issues_vector_families():
    assert {
        "mvnormal",
        "mvnormal_known_cov",
        "mvnormal_diagonal",
        "mvnormal_isotropic",
        "categorical",
        "multinomial",
        "dirichlet",
    } <= set(VECTOR)
    assert not set(VECTOR) & set(family_names("scalar"))


@pytest.fixture(scope="module", params=VECTOR)
def family(request):
    name = request.param
    d0 = symmle.derive(name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    point = model_point(d0.model, 3, rng)
    consts = {q.name: np.asarray(point[q.symbol]).tolist() for q in d0.model.constants}
    d = symmle.derive(name, constants=consts) if consts else d0
    truth = {q.name: np.asarray(point[q.symbol], dtype=float) for q in d.model.parameters}
    x = vector_sampler(d.model, {**truth, **{k: np.asarray(v) for k, v in consts.items()}}, 3)(4000, rng)
    return name, d, truth, x


def test_derives_with_verified_closed_forms(family):
    name, d, _, _ = family
    for q in d.model.parameters:
        e = d.solutions[q.name]
        assert e.kind in ("closed_form", "numeric"), (name, q.name, e.note)
        assert e.kind != "closed_form" or e.verified
    assert not [w for w in d.warnings if "failed" in w or "not reported" in w], d.warnings
    assert d.crlb is not None, name


def test_fit_of_its_own_draws_lands_near_the_truth(family):
    name, d, truth, x = family
    r = symmle.fit(d, x)
    for q in d.model.parameters:
        est, se = np.asarray(r.estimates[q.name]), np.asarray(r.stderr[q.name])
        assert np.all(se > 0), (name, q.name)
        z = np.abs(est - truth[q.name].reshape(est.shape)) / se
        assert np.max(z) < 5, (name, q.name, est, truth[q.name])
    assert np.isfinite(r.log_likelihood)


def test_compiled_estimator_agrees_with_fit(family):
    name, d, _, x = family
    r = symmle.fit(d, x)
    est = d.compile()(x)
    for q in d.model.parameters:
        assert np.allclose(
            np.asarray(est[q.name]).reshape(-1),
            np.asarray(r.estimates[q.name]).reshape(-1),
            rtol=1e-8,
            atol=1e-12,
        ), (name, q.name)
