"""Sampling from a model and ``check``: Monte Carlo verdicts on the estimators, and plots.
"""
