"""Mail intake (R1), by concern:

- parsing, never raising: `parse.py` (the walk and `ParsedMail`), `headers.py`, `mime.py`,
  `bodies.py` (HTML), `attachments.py`, `dsn.py` (delivery status notifications);
- the decision rules, pure: `rules.py` (dedupe key, loops, quoted text, software, description);
- ingestion: `ingest.py` (one mail → a new dossier, a reply, a quarantine or a bounce);
- storage: `repo.py` (the mail tables, SQL only);
- receiving: `receiver.py` (SMTP and LMTP), `imap.py` (the optional mailbox poll);
- the HTTP API: `api.py` (ledger, quarantine, release, discard, bounces, attachments), with
  its payloads in `models.py`.
"""
