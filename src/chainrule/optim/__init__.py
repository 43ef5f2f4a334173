"""Optimizers (eager in-place steps and compiled update rules) and learning-rate schedules."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from . import lr_scheduler
from .lr_scheduler import StepLR, CosineAnnealingLR

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "StepLR", "CosineAnnealingLR"]
