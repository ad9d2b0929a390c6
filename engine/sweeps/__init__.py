"""Sweeps: a grid of run specs (``spec``) run on Ray with one writer (``driver``); joining a running,
token-authenticated cluster is ``cluster``."""
