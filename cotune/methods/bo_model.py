"""BO over the model parameters alone, on the uniform mixture."""

from __future__ import annotations

from cotune.methods.bo import BOMethod


class BOModelMethod(BOMethod):
    """GP-BO with full runs over the LoRA/model parameters only: what tuning the model on fixed data finds."""

    name = "bo-model"
    block = "model"
