"""`make bench`: the deposit path under load, on the real stack, against bare baselines.

    python -m bench [--concurrency 50] [--requests 3000] [--seconds 60] [--skip-baselines]
                    [--output docs/benchmarks.md]

The method and its costs: docs/decisions/0005-benchmark-method.md.
"""
