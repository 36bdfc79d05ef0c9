"""The month, simulated: the real DossierWorkflow run over simulated weeks (issue 16).

`assistance simulate` replays weeks of requests on Temporal's time-skipping test server: the
dossiers are the real `DossierWorkflow`, the simulated staff act on them only through its
updates and signals (the commands the API sends), the training, bugs and evolutions services
answer through the signals the bridge delivers, and their rules are the services' own pure
functions. Nothing needs PostgreSQL or NATS: the activities that write to the outbox are
replaced by in-memory recorders, which also give the report its figures.

Pure pieces, tested without servers: the scenario (`scenario.py`), the arrival model
(`arrivals.py`), who works next (`desk.py`), the report's figures (`figures.py`) and the search
for the smallest team (`staffing.py`). The run itself: `world.py` (simulated time and the
people), `services.py` (training, bugs, evolutions), `recorder.py` (the in-memory activities),
`run.py` (the server, the worker, the clock); `report.py` writes the table and the HTML page.
"""
