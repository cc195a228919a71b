"""covault federated: joint modelling on Flower.

``federated.run(config) -> FLResult`` runs the job a TOML config describes (see
:mod:`federated.config`); ``covault fl run CONFIG.toml`` is the same from the shell.
Flower, TenSEAL and scikit-learn are imported only when a run needs them.
"""

from federated.config import FLConfig, load_config
from federated.runner import FLResult, run, score

__all__ = ["FLConfig", "FLResult", "load_config", "run", "score"]
