"""The evolutions service's entry points: `router` (HTTP) and `start(rt)` (background work)."""
