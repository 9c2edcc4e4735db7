"""The symbolic pipeline: likelihood -> stationarity -> information -> Derivation.

Every symbolic result is verified numerically here before it is reported.  Nothing in this
folder imports ``report``, ``numbers`` or ``simulate`` at module level.
"""
