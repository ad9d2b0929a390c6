"""Robustness: test accuracy against covariate-shift strength, per method and classifier."""

from toptune.dashboard.widgets import study_page

study_page.show(study_page.ROBUSTNESS)
