"""The lecture-note steps of a derivation."""
