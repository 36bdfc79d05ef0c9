"""The local stack (`make run`, the tests): real Temporal, NATS, PostgreSQL and a mail catcher
as child processes, supervised. Needs the `[local]` extra (the servers' binaries); never imported by
the production image."""
