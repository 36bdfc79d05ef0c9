"""Mail receiver ports for this test run.

The session's `system` fixture builds its settings from the environment for whatever it does not
set itself; giving the receiver free ports here (before any fixture runs) keeps concurrent test
runs on one machine from fighting over the default SMTP port.
"""

from __future__ import annotations

import os

from assistance.stack import free_port

os.environ.setdefault("MAIL_LISTEN_PORT", str(free_port()))
os.environ.setdefault("MAIL_LMTP_PORT", str(free_port()))
