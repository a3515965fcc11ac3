"""Plumb: collect human preferences, train reward models, align policies with TRL.

The `plumb` package is the shared kernel: the command line, config loading, model
loading, the data contract between stages and experiment tracking. It imports no stage.
"""

__version__ = "0.1.0"
