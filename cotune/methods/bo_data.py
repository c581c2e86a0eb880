"""BO over the data mixture alone, the model parameters fixed at their defaults."""

from __future__ import annotations

from cotune.methods.bo import BOMethod


class BODataMethod(BOMethod):
    """GP-BO with full runs over the mixture only: what tuning the data for a fixed model finds."""

    name = "bo-data"
    block = "data"
