"""The composition root: which parts exist (`parts.py`), the app of a process (`app.py`) and
the `assistance` command (`cli.py`). The kernel (`assistance/`) knows no part; the parts know
the kernel; only this package knows them all."""
