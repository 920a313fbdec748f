"""Prometheus metrics for the web process."""

from prometheus_client import CollectorRegistry, Counter, Histogram

registry = CollectorRegistry(auto_describe=True)

http_requests = Counter(
    "siskamling_http_requests_total", "HTTP requests handled", ["method", "route", "status"], registry=registry
)
http_latency = Histogram(
    "siskamling_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
logins = Counter("siskamling_logins_total", "Login attempts", ["outcome"], registry=registry)
