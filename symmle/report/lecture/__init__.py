"""The lecture-note steps of a derivation: a builder per model kind over one shared core.

``core`` holds the :class:`Step` record and the notation and checked rearrangements every builder uses;
``scalar`` writes the lecture of a scalar IID model; ``steps`` picks the builder for a model.
"""
