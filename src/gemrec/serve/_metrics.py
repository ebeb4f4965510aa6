"""Prometheus metrics of one app instance (its own registry: bounded label sets, no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Latency histograms per route template, event counters and the model version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "gemrec_request_seconds",
            "Request latency by route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.responses = Counter(
            "gemrec_responses",
            "Responses by route template and status class",
            ["route", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "gemrec_events_ingested", "Events durably stored", registry=self.registry
        )
        self.duplicates = Counter(
            "gemrec_events_duplicate", "Events ignored as retries", registry=self.registry
        )
        self.items = Gauge(
            "gemrec_catalogue_items", "Items in the serving catalogue", registry=self.registry
        )
        self.model = Gauge(
            "gemrec_model_info",
            "The loaded model (value 1)",
            ["model", "version"],
            registry=self.registry,
        )
        self.reloads = Counter("gemrec_model_reloads", "Model reloads", registry=self.registry)
        self.strategies = Counter(
            "gemrec_recommendations",
            "Lists served by strategy (personalized, fold_in or a cold-start path)",
            ["strategy"],
            registry=self.registry,
        )

    def set_model(self, name: str, version: str) -> None:
        self.model.clear()
        self.model.labels(model=name, version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
