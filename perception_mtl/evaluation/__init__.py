from .metrics import *  # noqa: F401,F403  (registers the metrics)
