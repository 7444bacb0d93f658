from .detectors import *  # noqa: F401,F403  (registers the assembled models)
