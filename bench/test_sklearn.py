"""The scikit-learn estimators against scikit-learn's own (issue 11).

    .venv/bin/python -m pytest bench/test_sklearn.py

Groups (medians of whole fits; the ratios are printed in the session's summary):

- ``sk-<data set>-<solver>-<dtype>``: one fit of FusedMLPClassifier (FusedMLPRegressor
  for diabetes) and of MLPClassifier (MLPRegressor) with the same parameters (64 relu
  units, "adam" or "sgd", scikit-learn's defaults otherwise: batches of min(200, n), at
  most 200 epochs, tol 1e-4) on digits, wine, iris and diabetes (bench/estimators.py),
  in float64 and float32. Both must reach the same test score (float64: to 1e-9, and
  the same number of epochs). Target: fusedmlp at least 10x faster.
- ``sk-grid``: GridSearchCV over 24 settings on digits (3 folds, n_jobs=1), one round
  each. Target: at least 10x faster.
- ``sk-poisson-<solver>``: FusedMLPRegressor(loss="poisson") and MLPRegressor(loss=
  "poisson") on diabetes (its target as rates, bench/estimators.py), float64, as the
  ``sk-*`` fits: the same test score (R^2) and epochs. Target: as theirs.
- ``sk-es-<data set>``: the adam float64 fit with ``early_stopping=True`` (10% held out,
  scored after every epoch), both libraries: the same test score and epochs.
- ``sk-predict-<data set>``, ``sk-score-<data set>``: predict, and score, the test
  split with the adam float64 model of each library (fitted once, outside the timing):
  the same predictions (classes; the regressor's values to 1e-9) and score.
- ``sk-w-<data set>``: the adam float64 fit with sample weights (classes balanced; the
  regressor's uniform on [0.5, 2)), both libraries: the same weighted test score and
  epochs; the summary also gives fusedmlp's weighted fit against its unweighted one.

Needs scikit-learn (the ``sklearn`` extra, part of ``test`` and ``bench``).
"""

from __future__ import annotations

import estimators as E
import numpy as np
import pytest
from test_speed import _time

SOLVERS = ("adam", "sgd")
DTYPES = ("float64", "float32")
_SCORES: dict = {}


def _pair(benchmark, medians, report, group, impl, run, what="test score", **kw):
    """Time ``run`` as ``group/impl`` (``kw``: heavy=, exact=); once both libraries have
    run, report their scores and epochs and, if ``exact`` (default), require them equal
    (the score to 1e-9)."""
    exact = kw.pop("exact", True)
    score, epochs = _time(benchmark, medians, run, 1, f"{group}/{impl}", **kw)
    benchmark.extra_info.update(score=score, epochs=epochs)
    _SCORES.setdefault(group, {})[impl] = (score, epochs)
    if len(_SCORES[group]) == 2:
        (s1, e1), (s2, e2) = (_SCORES[group][k] for k in ("fused", "sklearn"))
        report(f"{group}: {what} {s1:.4f} (fusedmlp) {s2:.4f} (scikit-learn), "
               f"epochs {e1} / {e2}")  # fmt: skip
        if exact:
            assert s1 == pytest.approx(s2, rel=1e-9, abs=1e-12) and e1 == e2


@pytest.mark.parametrize("impl", ["fused", "sklearn"])
@pytest.mark.parametrize(
    "case",
    [pytest.param((n, s, d), marks=pytest.mark.benchmark(group=f"sk-{n}-{s}-{d}"),
                  id=f"{n}-{s}-{d}")
     for n in E.DATASETS for s in SOLVERS for d in DTYPES],
)  # fmt: skip
def test_fit(benchmark, medians, report, case, impl):
    name, solver, dtype = case
    run = E.make_fit(name, impl, solver, dtype)
    _pair(benchmark, medians, report, f"sk-{name}-{solver}-{dtype}", impl, run,
          heavy=name == "digits", exact=dtype == "float64")  # fmt: skip


@pytest.mark.parametrize("impl", ["fused", "sklearn"])
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.benchmark(group=f"sk-w-{n}")) for n in E.DATASETS],
)
def test_weighted_fit(benchmark, medians, report, name, impl):
    run = E.make_fit(name, impl, "adam", weighted=True)
    _pair(benchmark, medians, report, f"sk-w-{name}", impl, run, "weighted test score",
          heavy=name == "digits")  # fmt: skip


@pytest.mark.parametrize("impl", ["fused", "sklearn"])
@pytest.mark.parametrize(
    "solver",
    [pytest.param(s, marks=pytest.mark.benchmark(group=f"sk-poisson-{s}")) for s in SOLVERS],
)
def test_poisson_fit(benchmark, medians, report, solver, impl):
    run = E.make_fit(E.POISSON, impl, solver)
    _pair(benchmark, medians, report, f"sk-poisson-{solver}", impl, run, "test R^2")


@pytest.mark.parametrize("impl", ["fused", "sklearn"])
@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.benchmark(group=f"sk-es-{n}")) for n in E.DATASETS],
)
def test_early_stopping_fit(benchmark, medians, report, name, impl):
    run = E.make_fit(name, impl, "adam", early_stopping=True)
    _pair(benchmark, medians, report, f"sk-es-{name}", impl, run)


_PREDICTIONS: dict = {}


@pytest.mark.parametrize("impl", ["fused", "sklearn"])
@pytest.mark.parametrize(
    "case",
    [pytest.param((w, n), marks=pytest.mark.benchmark(group=f"sk-{w}-{n}"), id=f"{w}-{n}")
     for w in ("predict", "score") for n in E.DATASETS],
)  # fmt: skip
def test_predict(benchmark, medians, report, case, impl):
    what, name = case
    group = f"sk-{what}-{name}"
    out = _time(benchmark, medians, E.make_predict(name, impl, what), 1, f"{group}/{impl}")
    _PREDICTIONS.setdefault(group, {})[impl] = out
    if len(_PREDICTIONS[group]) == 2:
        ours, theirs = _PREDICTIONS[group]["fused"], _PREDICTIONS[group]["sklearn"]
        if name.startswith("diabetes") or what == "score":
            np.testing.assert_allclose(ours, theirs, rtol=1e-9)
        else:
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.benchmark(group="sk-grid")
@pytest.mark.parametrize("impl", ["fused", "sklearn"])
def test_grid_search(benchmark, medians, report, impl):
    run = E.make_grid(impl)
    # one round (scikit-learn's takes about half a minute); fusedmlp's compiles first
    warm = 1 if impl == "fused" else 0
    result = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=warm)
    if benchmark.stats is not None:
        medians(f"sk-grid/{impl}", benchmark.stats.stats)
    report(f"sk-grid {impl}: best {result[0]} at {result[1]:.4f}")
