"""`RunResult`: the scores of one trained model on one test fold, as experiments produce them and
reports read them. Kept apart from the report so that running experiments never imports plotting."""

from __future__ import annotations

from dataclasses import dataclass

from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics
from emofusion.evaluation.protocols import PROTOCOLS


@dataclass
class RunResult:
    """Scores of one trained model on one test fold.

    Arguments:
        model: Table-1 name (e.g. "M-CBLA-BLR"); other names are reported without paper numbers.
        protocol: "paper" or "loso".
        seed: training seed.
        fold: the test session, e.g. "Ses05".
        metrics: scores on that fold.
    """

    model: str
    protocol: str
    seed: int
    fold: str
    metrics: Metrics

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r} for model {self.model!r}; choose one of {list(PROTOCOLS)}")

    def to_dict(self) -> dict:
        return {"model": self.model, "protocol": self.protocol, "seed": self.seed, "fold": self.fold,
                "metrics": self.metrics.to_json()}

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        missing = [key for key in ("model", "protocol", "seed", "fold", "metrics") if key not in d]
        if missing:
            raise ConfigError(f"run result lacks {missing}; it has keys {sorted(d)}")
        return cls(model=str(d["model"]), protocol=str(d["protocol"]), seed=int(d["seed"]), fold=str(d["fold"]),
                   metrics=Metrics.from_json(d["metrics"]))
