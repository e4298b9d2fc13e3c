"""`Settings`: what one search runs to, as one frozen object that is also the ``search``
section of ``config.json`` (`Settings.to_dict` / `Settings.from_dict`).

`Search` takes them as flat keywords (its public API), checks them and builds this object;
the run directory saves it, a resume reads it back, and the loop runs to it. A new plain
setting is a `keyword` field here (with a default, so older run directories still load), the
`Search` keyword of the same name (public API), and a flag in the CLI's parser: saving and
resuming follow from the field. Only plain values are saved: a strategy, fitness transform,
objective or scheduler of your own is named, never pickled, and must be passed again on
resume.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Settings"]


def _plain(value: Any) -> bool:
    """JSON-like data only (what ``config.json`` can hold)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def keyword(default: Any = attrs.NOTHING) -> Any:
    """A setting that is a `Search` keyword of the same name, saved and resumed as it is."""
    return attrs.field(default=default, metadata={"keyword": True})


@attrs.frozen(kw_only=True)
class Settings:
    """The ``search`` section of ``config.json``.

    ``strategy`` is a built-in name, or ``"custom"`` for a strategy object of your own;
    ``fitness`` the name of the transform (None: none); ``objectives`` a list of
    ``{"name", "direction", "custom"}`` (None: one metric); ``fidelity`` the scheduler's saved form
    (``fidelity.fidelity_config``); ``inherit_weights`` the heredity slot rule or False;
    ``circuit_breaker`` None (one population), 0 (off) or N; ``callbacks`` what each
    callback said of itself."""

    generations: int = keyword()
    population_size: int = keyword()
    seed: int = keyword()
    metric: str = keyword()
    maximize: bool
    strategy: str
    strategy_options: dict[str, Any] = attrs.field(factory=dict)
    fitness: str | None = None
    objectives: list[dict[str, Any]] | None = None
    constraints: list[str] = attrs.field(factory=list)
    latency_batch: int = 1
    fidelity: dict[str, Any] | None = None
    inherit_weights: str | bool = False
    circuit_breaker: int | None = keyword(None)
    callbacks: list[str] = attrs.field(factory=list)

    @property
    def heredity(self) -> str | None:
        """The slot rule new candidates inherit a donor's weights by (None: no heredity)."""
        return self.inherit_weights or None

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        """The fields passed to `Search` as they are (the rest are translated: a strategy's
        name and options, a scheduler's saved form, ...)."""
        return tuple(f.name for f in attrs.fields(cls) if f.metadata.get("keyword"))

    def search_keywords(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.keywords()}

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: Any = "config.json") -> Settings:
        """Read the saved section back, checked: a known field each, plain values of the
        right kind; a field an older run lacks takes its default."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: the search settings are not a mapping")
        known = {f.name: f for f in attrs.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown search settings {unknown} (written by a newer "
                             "pytorch-devol?)")
        missing = [n for n, f in known.items() if f.default is attrs.NOTHING and n not in data]
        if missing:
            raise ValueError(f"{where}: the search settings lack {missing}")
        for name in ("generations", "population_size", "seed"):
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}: search setting {name} must be an int >= 0, got "
                                 f"{value!r}")
        bad = [n for n, v in data.items() if not _plain(v)]
        if bad or not isinstance(data["maximize"], bool) or \
                not isinstance(data["strategy"], str) or not isinstance(data["metric"], str):
            raise ValueError(f"{where}: search settings {bad or ['maximize/strategy/metric']} "
                             "have values of the wrong kind")
        values = {**data}
        if values.get("strategy_options") is None:
            values["strategy_options"] = {}
        if values.get("inherit_weights") is None:
            values["inherit_weights"] = False
        return cls(**values)
