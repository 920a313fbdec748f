"""Prometheus metrics for the web process."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

registry = CollectorRegistry(auto_describe=True)

http_requests = Counter(
    "siskamling_http_requests_total", "HTTP requests handled", ["method", "route", "status"], registry=registry
)
http_latency = Histogram(
    "siskamling_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
logins = Counter("siskamling_logins_total", "Login attempts", ["outcome"], registry=registry)
live_delay = Histogram(
    "siskamling_live_delay_seconds",
    "Live video: from the recorder receiving a frame to its WebSocket write to the last viewer of it",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5),
    registry=registry,
)
live_viewers = Gauge("siskamling_live_viewers", "Live video viewers connected to this process", registry=registry)
live_dropped = Counter(
    "siskamling_live_dropped_frames_total", "Frames not sent to a viewer who could not keep up (resumed at a keyframe)",
    registry=registry,
)
