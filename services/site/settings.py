"""The site's settings, read from the environment (and an optional `.env`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SiteSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_prefix="SITE_")

    # Signs the session cookie. Empty: derived from MAIL_SIGNING_KEY (set one or the other to a
    # long random secret in production; changing it signs everybody out).
    session_key: str = ""
    session_hours: float = Field(default=12.0, gt=0)
    # Where the site reaches the services' HTTP APIs. Empty: this same process (the site runs
    # with the services, `assistance run --target all`); set it to the ingress's URL when the
    # site runs alone (`--target site`).
    api_url: str = ""
    api_timeout_seconds: float = Field(default=20.0, gt=0)
    # Attachments (customer replies, deposits, technician responses).
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_attachments: int = Field(default=5, ge=0)


@lru_cache
def get_site_settings() -> SiteSettings:
    return SiteSettings()
