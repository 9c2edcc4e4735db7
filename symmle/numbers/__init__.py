"""Numbers from a Derivation: compiled estimators, generated modules, data loading and fit."""
