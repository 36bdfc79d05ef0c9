"""How it runs: the deployment code. `deploy.local` is the embedded stack of `make run`."""
