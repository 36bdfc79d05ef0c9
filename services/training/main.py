"""The training service's entry points: `router` (HTTP) and `start(rt)` (background work)."""
