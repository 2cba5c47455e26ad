"""`RunResult`: the scores of one trained model on one test fold, as experiments produce them and
reports read them. Kept apart from the report so that running experiments never imports plotting."""

from __future__ import annotations

from dataclasses import dataclass, field

from emofusion.errors import ConfigError
from emofusion.evaluation.metrics import Metrics
from emofusion.evaluation.protocols import PROTOCOLS, SpeakerOverlap


@dataclass
class RunResult:
    """Scores of one trained model on one test fold.

    Arguments:
        model: Table-1 name (e.g. "M-CBLA-BLR"); other names are reported without paper numbers.
        protocol: a name in `PROTOCOLS` ("paper", "loso" or "loco").
        seed: training seed.
        fold: the test session, e.g. "Ses05" (``corpus/session`` over several corpora), or under
            "loco" the held-out corpus: a loco run's metrics are that corpus's figures.
        metrics: scores on that fold.
        overlap: test speakers also heard in training (None in results saved before it was recorded).
        facts: how the model was computed, for the report's header: ``precision`` ("bf16"/"fp32"),
            ``device``, ``cpu_capability``, ``gpu``, and for text models ``word_vectors`` (name or
            file) and ``vector_dim``, for encoder models ``pretrained_encoders``. Empty in results saved
            before they were recorded.
    """

    model: str
    protocol: str
    seed: int
    fold: str
    metrics: Metrics
    overlap: SpeakerOverlap | None = None
    facts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r} for model {self.model!r}; choose one of {list(PROTOCOLS)}")

    def to_dict(self) -> dict:
        d = {"model": self.model, "protocol": self.protocol, "seed": self.seed, "fold": self.fold,
             "metrics": self.metrics.to_json()}
        if self.overlap is not None:
            d["speaker_overlap"] = self.overlap.to_json()
        if self.facts:
            d["facts"] = dict(self.facts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        missing = [key for key in ("model", "protocol", "seed", "fold", "metrics") if key not in d]
        if missing:
            raise ConfigError(f"run result lacks {missing}; it has keys {sorted(d)}")
        overlap = SpeakerOverlap.from_json(d["speaker_overlap"]) if "speaker_overlap" in d else None
        return cls(model=str(d["model"]), protocol=str(d["protocol"]), seed=int(d["seed"]), fold=str(d["fold"]),
                   metrics=Metrics.from_json(d["metrics"]), overlap=overlap, facts=dict(d.get("facts") or {}))
