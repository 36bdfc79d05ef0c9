"""Settings shared by every part, read from the environment (and an optional `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistance.business_time import BusinessCalendar
from assistance.commitment import Commitment

DEFAULT_MAIL_SIGNING_KEY = "change-me-in-production"
MIN_SIGNING_KEY_CHARS = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # ENVIRONMENT=production: the process refuses to start with a default secret
    # (`unsafe_for_production`); the manifests in deploy/k8s set it.
    environment: Literal["development", "production"] = "development"

    # Where the embedded default keeps its data (Temporal SQLite file, NATS store, PostgreSQL).
    data_dir: Path = Path("data")
    # PostgreSQL; empty means an embedded server under data_dir (local runs only).
    database_url: str = ""
    database_pool_size: int = 20

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "dossiers"

    nats_url: str = "nats://127.0.0.1:4222"
    nats_replicas: int = 1  # JetStream stream replicas (3 on a production cluster)

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # DEV_PAGES=1: the local-only pages (/dev/mails shows live sign-in links). `make run` sets
    # it; production never does, and without it those pages cannot be mounted (issue 13).
    dev_pages: bool = False
    # Links in mails and feeds; unset, it follows HTTP_HOST and HTTP_PORT.
    public_url: str = ""

    # R3: business calendar (Europe/Paris), first-response budget in business hours.
    business_timezone: str = "Europe/Paris"
    business_hours: str = "09:00-12:00,13:00-18:00"
    closed_days: str = ""
    # R3 first-response commitment (assistance/commitment.py): the budget, and when to warn.
    first_response_hours: float = Field(default=4.0, gt=0)
    first_response_warning_fraction: float = Field(default=0.75, gt=0, lt=1)
    # R2 follow-through, in business hours (a dossier keeps the values it was opened with).
    reminder_hours: float = 4.0
    escalation_hours: float = 8.0
    customer_reminder_hours: float = 16.0
    service_reminder_hours: float = 40.0
    confirmation_hours: float = 40.0
    usage_target_hours: float = 1.0
    reopen_window_days: int = 180

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    # a mail whose sender died mid-send is sent again after this (assistance/mail_once.py)
    mail_sending_lease_seconds: float = 300.0
    mail_from: str = "assistance@manao.eu"
    # Outbound mail: the domain of Message-IDs, and the key that signs them. A reply is tied to
    # its dossier only through a Message-ID signed with this key (never through From), so set a
    # long random secret in production and keep it stable: changing it orphans older threads.
    mail_domain: str = "assistance.manao.eu"
    mail_signing_key: str = DEFAULT_MAIL_SIGNING_KEY
    support_address: str = "assistance@manao.eu"  # Reply-To of every mail to customers
    training_lead_email: str = "formation@manao.eu"  # staff notices with audience training_lead
    screen_share_url: str = "https://partage.manao.eu/salle/{room}"  # R6 screen-sharing rooms

    # Inbound mail (R1): the receiver for the support address, run by intake. Port 0 disables.
    mail_listen_host: str = "127.0.0.1"
    mail_listen_port: int = Field(default=2526, ge=0, le=65535)  # SMTP
    mail_lmtp_port: int = Field(default=0, ge=0, le=65535)  # LMTP, for a local MTA
    mail_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)  # larger: 552 at SMTP time
    mail_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)  # larger: not kept
    # The authserv-id our MTA writes in Authentication-Results (issue 13); empty: no verdict is
    # believed. A DMARC failure on a known organisation's domain is then quarantined.
    mail_trusted_authserv_id: str = ""
    mail_rate_limit_per_hour: int = Field(default=20, ge=0)  # per sender; beyond: quarantine
    # Software of a mail naming none (subject tag `[code]`, or `support+code@`); empty: the
    # first software of the directory, flagged as guessed for the technician.
    mail_default_software: str = ""
    # Optional IMAP mailbox poll (empty host: off); the mailbox is only read, never changed.
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_ssl: bool = True
    imap_user: str = ""
    imap_password: str = ""
    imap_folder: str = "INBOX"
    imap_poll_seconds: float = Field(default=60.0, gt=0)

    # OpenTelemetry: OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318; empty disables export.
    otel_exporter_otlp_endpoint: str = ""
    # empty: named after the parts the process runs (`assistance-intake`, `assistance-worker`,
    # `assistance-services` for every service, `assistance-all`): docs/decisions/0021
    otel_service_name: str = ""
    # Metrics (docs/decisions/0021): readings of the system's state (open dossiers, the
    # outbox, consumers' lag) are taken at most this often; the OTLP push interval.
    metrics_cache_seconds: float = Field(default=5.0, gt=0)
    metrics_export_seconds: float = Field(default=15.0, gt=0)
    # The Temporal SDK's own metrics (Prometheus) on this port of a process running the worker;
    # 0: off.
    temporal_metrics_port: int = Field(default=0, ge=0, le=65535)

    # Request bodies (issue 11): larger ones get a 413 before they are read whole. Multipart
    # uploads (the site's attachments) get the site's attachment limits: 5 files of 10 MiB
    # (SITE_MAX_ATTACHMENTS × SITE_MAX_ATTACHMENT_BYTES) plus 1 MiB of form fields.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_upload_bytes: int = Field(default=51 * 1024 * 1024, gt=0)

    # The outbox relay polls at least this often (it is also woken by LISTEN/NOTIFY).
    relay_poll_seconds: float = Field(default=1.0, gt=0)

    # Failure policy (docs/decisions/0013): item failures are retried this many times with
    # this backoff, then parked; a dependency that is down is waited for, uncounted.
    failure_max_attempts: int = Field(default=8, ge=1)
    failure_backoff_seconds: str = "1,2,5,10,30,60,120"
    outage_max_wait_seconds: float = Field(default=15.0, gt=0)
    outbox_max_attempts: int = Field(default=10, ge=1)
    outbox_retention_days: float = Field(default=7.0, gt=0)
    # RGPD retention (decision 0024): a closed dossier's personal data is erased this long after
    # its closure plus the reopen window; daily at a Paris time, in batches of this size.
    personal_data_retention_days: int = Field(default=3 * 365, ge=1)
    personal_data_retention_at: str = Field(default="03:30", pattern=r"^\d{2}:\d{2}$")
    personal_data_retention_batch: int = Field(default=50, ge=1, le=1000)
    stuck_activity_attempts: int = Field(default=3, ge=1)  # shown as stuck beyond this
    operations_notify_seconds: float = Field(default=60.0, gt=0)  # admins' mail, batched

    # Graceful stop on SIGTERM (deploy/README.md, "Stopping"): /readyz answers 503 « arrêt en
    # cours » at once and requests are still served for SHUTDOWN_NOTICE_SECONDS (the load
    # balancer stops sending); then no new connection is accepted, and requests in flight,
    # consumers' and relays' batches and the worker's tasks have SHUTDOWN_GRACE_SECONDS to end.
    shutdown_notice_seconds: float = Field(default=0.0, ge=0)
    shutdown_grace_seconds: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _public_url_follows_the_port(self) -> Settings:
        if not self.public_url:
            host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
            host = f"[{host}]" if ":" in host else host
            self.public_url = f"http://{host}:{self.http_port}"
        return self

    def unsafe_for_production(self) -> str | None:
        """Why this configuration must not serve in production (ENVIRONMENT=production), in
        French and English; None when it may."""
        if self.environment != "production":
            return None
        if self.mail_signing_key == DEFAULT_MAIL_SIGNING_KEY:
            return (
                "MAIL_SIGNING_KEY a sa valeur par défaut : en production, donnez une clé "
                "secrète, longue et stable (depuis un Secret). / MAIL_SIGNING_KEY has its "
                "default value: in production, set a long, stable secret key (from a Secret)."
            )
        if len(self.mail_signing_key) < MIN_SIGNING_KEY_CHARS:
            return (
                f"MAIL_SIGNING_KEY est trop courte (moins de {MIN_SIGNING_KEY_CHARS} caractères)."
                f" / MAIL_SIGNING_KEY is too short (under {MIN_SIGNING_KEY_CHARS} characters)."
            )
        return None

    def dossier_policy(self) -> dict[str, object]:
        """The rules a new dossier is opened under (`services.dossier.state.DossierPolicy`)."""
        return {
            "timezone": self.business_timezone,
            "business_hours": self.business_hours,
            "closed_days": self.closed_days,
            "first_response_hours": self.first_response_hours,
            "warning_fraction": self.first_response_warning_fraction,
            "reminder_hours": self.reminder_hours,
            "escalation_hours": self.escalation_hours,
            "customer_reminder_hours": self.customer_reminder_hours,
            "service_reminder_hours": self.service_reminder_hours,
            "confirmation_hours": self.confirmation_hours,
            "usage_target_hours": self.usage_target_hours,
            "reopen_window_days": self.reopen_window_days,
        }

    def commitment(self) -> Commitment:
        """R3: the first-response commitment new dossiers are opened under."""
        return Commitment(self.first_response_hours, self.first_response_warning_fraction)

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar.parse(
            self.business_hours, self.closed_days, timezone=self.business_timezone
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
