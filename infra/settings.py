"""The one Settings object: every CRMLEDGER_* variable, read once.

Embedded defaults: with no database URL the ledger runs on an embedded
PostgreSQL under CRMLEDGER_HOME and may generate its own JWT secret and master
key there. Once a database URL is set (a real deployment), secrets must be given
and are never generated.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.rules import DEFAULT_SEGMENTS


class Settings(BaseSettings):
    """Configuration from CRMLEDGER_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CRMLEDGER_", extra="ignore")

    database_url: str | None = None
    # PostgreSQL schema of the event store and the ledger's own tables.
    database_schema: str = "public"
    # PostgreSQL schema of the read models (projections/schema.py).
    readmodel_schema: str = "readmodel"
    kafka_bootstrap: str | None = None
    # Partitions and replicas of the topics the ledger creates (infra/topics.py).
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    # Consumer group session timeout; unset: short on the embedded broker (infra/broker.py).
    kafka_session_timeout_ms: int | None = Field(default=None, ge=1000)
    home: Path = Path(".crmledger")
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    # Checked on every token when set; tokens `crmledger token` signs carry them (api/auth.py).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # The longest lifetime of a token this service signs or accepts (exp - iat).
    jwt_max_lifetime_hours: float = Field(default=12, gt=0)
    # An OpenID Connect provider (api/oidc_tokens.py, the console's sign-in): its issuer URL,
    # this service's client, the claim holding the roles (a list or a space-separated
    # string), and the `aud` its access tokens carry (unset: the client id).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_roles_claim: str = "roles"
    oidc_audience: str | None = None
    # The least time between two fetches of the provider's keys forced by an unknown `kid`.
    oidc_jwks_cooldown_seconds: float = Field(default=30, ge=0)
    # A console session (console/sessions.py) ends after this many minutes without a request,
    # and at the latest CRMLEDGER_JWT_MAX_LIFETIME_HOURS after its sign-in.
    console_idle_minutes: float = Field(default=30, gt=0)
    # How long an Idempotency-Key is remembered; an older key counts as new (infra/idempotency.py).
    idempotency_ttl_hours: float = Field(default=24, gt=0)
    master_key: SecretStr | None = None
    # The Ed25519 seed (base64 of 32 bytes) that signs the tree's checkpoints
    # (infra/secrets.py; generated on the embedded default like the master key).
    signing_key: SecretStr | None = None
    # The checkpoints' origin line; unset: `crmledger/<ledger id>` (infra/checkpoints.py).
    ledger_origin: str | None = None
    # A checkpoint is signed at least this often while events arrive (infra/notary.py).
    checkpoint_seconds: float = Field(default=60, gt=0)
    timezone: str = "UTC"
    retention_days: int = Field(default=2555, ge=1)
    # The continuous verifier reads the whole ledger again this often (infra/verifier.py).
    verify_sweep_hours: float = Field(default=24, gt=0)
    # How long a re-published inbound CloudEvent (same source and id) is still
    # recognised as applied; older id receipts are pruned (infra/inbound_receipts.py).
    inbound_receipt_days: float = Field(default=7, gt=0)
    segments: list[str] = Field(default_factory=lambda: sorted(DEFAULT_SEGMENTS))
    host: str = "127.0.0.1"
    port: int = 8000
    pool_size: int = Field(default=5, ge=1)
    # Every cache is bounded, so a process's memory does not grow with the ledger:
    # accounts kept in memory per process (eventsourcing's LRU aggregate cache),
    # unwrapped account keys (infra/keys.py), and verified tokens (api/auth.py).
    account_cache_size: int = Field(default=10_000, ge=1)
    key_cache_size: int = Field(default=10_000, ge=1)
    token_cache_size: int = Field(default=10_000, ge=1)
    # What the connections say in pg_stat_activity; a role adds its name
    # (`crmledger-api`, infra/connection_budget.py).
    application_name: str = Field(default="crmledger", min_length=1, max_length=48)
    # PostgreSQL timeouts (infra/database.py): libpq's connect timeout (s, 2 at least),
    # the wait for a pooled connection (s), and each statement's limit (ms, 0 = none).
    # While the database is away a request fails within about these, with a 503.
    db_connect_timeout: int = Field(default=2, ge=1)
    db_pool_timeout: float = Field(default=2.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=0)

    @field_validator("database_schema", "readmodel_schema")
    @classmethod
    def _plain_identifier(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError("schema names must be plain SQL identifiers")
        return v

    @model_validator(mode="after")
    def _oidc_audience_known(self) -> Settings:
        # A provider's tokens are checked against an audience: without one, none could be.
        if self.oidc_issuer and not (self.oidc_audience or self.oidc_client_id):
            raise ValueError(
                "CRMLEDGER_OIDC_ISSUER needs CRMLEDGER_OIDC_CLIENT_ID or CRMLEDGER_OIDC_AUDIENCE"
            )
        return self

    @property
    def embedded(self) -> bool:
        """True when no database URL is set: local development on embedded servers."""
        return self.database_url is None
