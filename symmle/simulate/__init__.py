"""Sampling from a model and ``check``: Monte Carlo verdicts on the estimators, and plots.

``sampling`` draws from a model; ``check`` runs a simulation check: ``simulation`` draws and
estimates the replicates, ``agreement`` cross-checks them with an independent optimiser,
``verdicts`` holds the results against their tolerances, ``results`` keeps them, ``progress``
shows the run and ``plots`` draws it.
"""
