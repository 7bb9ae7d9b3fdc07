"""Every read-model table, in its own PostgreSQL schema (CRMLEDGER_READMODEL_SCHEMA).

The one module holding the read models' DDL, as infra/schema.py holds the
ledger schema's: read models are disposable (a rebuild refills them from the
events) and projections may not import infra, so their tables stay here.
Every statement names the schema; the one-time migrations of older tables sit
beside the table they change.
"""

from __future__ import annotations

DDL = """
CREATE SCHEMA IF NOT EXISTS {rm};

-- How far each read model has applied each Kafka partition, by global position.
CREATE TABLE IF NOT EXISTS {rm}.positions (
    projection text NOT NULL,
    partition integer NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (projection, partition)
);

CREATE TABLE IF NOT EXISTS {rm}.accounts (
    account_id uuid PRIMARY KEY,
    external_ref text,
    status text NOT NULL,
    segment text NOT NULL,
    service_plan text NOT NULL,
    channel text NOT NULL,
    opened_at timestamptz NOT NULL,
    opened_day date NOT NULL,
    closed_at timestamptz,
    closed_day date,
    close_reason text,
    details_current_at timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    version integer NOT NULL,
    -- Contact fields as the events carry them: AES-GCM ciphertext under the account's key.
    name_sealed text,
    email_sealed text,
    phone_sealed text,
    erased boolean NOT NULL DEFAULT false
);
-- A directory made before contact fields were sealed held them in clear: drop
-- those columns (a rebuild of the directory then fills the sealed ones and the
-- tokens, and its TRUNCATE leaves no old row on disk).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = '{rm}' AND table_name = 'accounts' AND column_name = 'email')
    THEN
        ALTER TABLE {rm}.accounts DROP COLUMN name, DROP COLUMN email, DROP COLUMN phone,
            ADD COLUMN name_sealed text, ADD COLUMN email_sealed text,
            ADD COLUMN phone_sealed text;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS accounts_segment ON {rm}.accounts (segment, status);
CREATE INDEX IF NOT EXISTS accounts_opened ON {rm}.accounts (opened_day);
CREATE INDEX IF NOT EXISTS accounts_closed ON {rm}.accounts (closed_day);
CREATE INDEX IF NOT EXISTS accounts_external_ref ON {rm}.accounts (external_ref);
-- The directory's order (oldest opening first, keyset cursor): a page is read in
-- index order, not sorted from every account that passes the filters.
CREATE INDEX IF NOT EXISTS accounts_opened_at ON {rm}.accounts (opened_at, account_id);
-- Accounts due for review, stalest first: only the open, unerased ones, in that
-- order, with the report's columns (read from the index alone).
CREATE INDEX IF NOT EXISTS accounts_due ON {rm}.accounts (details_current_at, account_id)
    INCLUDE (external_ref, segment, channel) WHERE status = 'open' AND NOT erased;

-- The directory's accounts counted where each is now (segment, plan, channel):
-- opened on its opening day, closed on its closing day, and `ended` on the later
-- of the two, so the accounts active at a day are those opened less those ended
-- before it. Kept per day and per month (`grain`, the month's first day), so a
-- sum over any range reads at most two months of days and one row per month
-- before them, however many accounts there are. A one-time fill from the
-- accounts, for a directory made before the table.
DO $$
BEGIN
    IF to_regclass('{rm}.account_flows') IS NULL THEN
        CREATE TABLE IF NOT EXISTS {rm}.account_flows (
            grain text NOT NULL CHECK (grain IN ('day', 'month')),
            day date NOT NULL,
            segment text NOT NULL,
            service_plan text NOT NULL,
            channel text NOT NULL,
            opened bigint NOT NULL DEFAULT 0,
            closed bigint NOT NULL DEFAULT 0,
            ended bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (grain, day, segment, service_plan, channel)
        );
        INSERT INTO {rm}.account_flows
        SELECT g.grain, CASE g.grain WHEN 'day' THEN f.day
                                     ELSE date_trunc('month', f.day)::date END,
               f.segment, f.service_plan, f.channel,
               sum(f.opened), sum(f.closed), sum(f.ended)
        FROM (
            SELECT opened_day AS day, segment, service_plan, channel,
                   1 AS opened, 0 AS closed, 0 AS ended FROM {rm}.accounts
            UNION ALL
            SELECT closed_day, segment, service_plan, channel, 0, 1, 0
            FROM {rm}.accounts WHERE closed_day IS NOT NULL
            UNION ALL
            SELECT greatest(opened_day, closed_day), segment, service_plan, channel, 0, 0, 1
            FROM {rm}.accounts WHERE closed_day IS NOT NULL
        ) f CROSS JOIN (VALUES ('day'), ('month')) g (grain)
        GROUP BY 1, 2, 3, 4, 5;
    END IF;
END $$;

-- The directory's blind index: a keyed token (truncated HMAC-SHA256) per
-- contact field and normalised search term (a name's words, an email, a
-- phone's digits), so personal fields are searched without being held in clear.
CREATE TABLE IF NOT EXISTS {rm}.account_tokens (
    account_id uuid NOT NULL,
    kind text NOT NULL,
    token bytea NOT NULL,
    PRIMARY KEY (account_id, kind, token)
);
CREATE INDEX IF NOT EXISTS account_tokens_lookup ON {rm}.account_tokens (kind, token);

-- The KPI read model's own view of each account: where its facts belong.
CREATE TABLE IF NOT EXISTS {rm}.kpi_accounts (
    account_id uuid PRIMARY KEY,
    segment text NOT NULL,
    channel text NOT NULL,
    opened_day date NOT NULL,
    closed_day date
);

-- The KPI accounts counted where each is now (segment, opening channel), per day
-- and per month as account_flows: accounts active at a day are those opened
-- less those ended before it, read from at most two months of days and a row
-- per month, not counted from every account. A one-time fill from kpi_accounts.
DO $$
BEGIN
    IF to_regclass('{rm}.kpi_account_flows') IS NULL THEN
        CREATE TABLE IF NOT EXISTS {rm}.kpi_account_flows (
            grain text NOT NULL CHECK (grain IN ('day', 'month')),
            day date NOT NULL,
            segment text NOT NULL,
            channel text NOT NULL,
            opened bigint NOT NULL DEFAULT 0,
            ended bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (grain, day, segment, channel)
        );
        INSERT INTO {rm}.kpi_account_flows
        SELECT g.grain, CASE g.grain WHEN 'day' THEN f.day
                                     ELSE date_trunc('month', f.day)::date END,
               f.segment, f.channel, sum(f.opened), sum(f.ended)
        FROM (
            SELECT opened_day AS day, segment, channel, 1 AS opened, 0 AS ended
            FROM {rm}.kpi_accounts
            UNION ALL
            SELECT greatest(opened_day, closed_day), segment, channel, 0, 1
            FROM {rm}.kpi_accounts WHERE closed_day IS NOT NULL
        ) f CROSS JOIN (VALUES ('day'), ('month')) g (grain)
        GROUP BY 1, 2, 3, 4;
    END IF;
END $$;

-- Additive facts per day, segment and channel: every counter is a plain sum.
CREATE TABLE IF NOT EXISTS {rm}.daily_facts (
    day date NOT NULL,
    segment text NOT NULL,
    channel text NOT NULL,
    new_customers bigint NOT NULL DEFAULT 0,
    lost_customers bigint NOT NULL DEFAULT 0,
    purchases bigint NOT NULL DEFAULT 0,
    refunds bigint NOT NULL DEFAULT 0,
    turnover numeric NOT NULL DEFAULT 0,
    profit numeric NOT NULL DEFAULT 0,
    visits bigint NOT NULL DEFAULT 0,
    inquiries bigint NOT NULL DEFAULT 0,
    complaints bigint NOT NULL DEFAULT 0,
    feedback_count bigint NOT NULL DEFAULT 0,
    feedback_sum bigint NOT NULL DEFAULT 0,
    migrations_in bigint NOT NULL DEFAULT 0,
    migrations_out bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, segment, channel)
);

-- Money per store and currency, for the financial summary.
CREATE TABLE IF NOT EXISTS {rm}.sales_daily (
    day date NOT NULL,
    segment text NOT NULL,
    channel text NOT NULL,
    store text NOT NULL,
    currency text NOT NULL,
    purchases bigint NOT NULL DEFAULT 0,
    refunds bigint NOT NULL DEFAULT 0,
    turnover numeric NOT NULL DEFAULT 0,
    profit numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (day, segment, channel, store, currency)
);
-- The same per month (`month`: its first day): a report by month or quarter reads
-- a row per month and key for its whole months, and days only for a cut month.
-- A one-time fill from sales_daily.
DO $$
BEGIN
    IF to_regclass('{rm}.sales_monthly') IS NULL THEN
        CREATE TABLE IF NOT EXISTS {rm}.sales_monthly (
            month date NOT NULL,
            segment text NOT NULL,
            channel text NOT NULL,
            store text NOT NULL,
            currency text NOT NULL,
            purchases bigint NOT NULL DEFAULT 0,
            refunds bigint NOT NULL DEFAULT 0,
            turnover numeric NOT NULL DEFAULT 0,
            profit numeric NOT NULL DEFAULT 0,
            PRIMARY KEY (month, segment, channel, store, currency)
        );
        INSERT INTO {rm}.sales_monthly
        SELECT date_trunc('month', day)::date, segment, channel, store, currency,
               sum(purchases), sum(refunds), sum(turnover), sum(profit)
        FROM {rm}.sales_daily GROUP BY 1, 2, 3, 4, 5;
    END IF;
END $$;

-- Inquiries and complaints one by one: response and resolution times need
-- their distribution (p90), not just sums.
CREATE TABLE IF NOT EXISTS {rm}.cases (
    account_id uuid NOT NULL,
    kind text NOT NULL,
    case_id text NOT NULL,
    opened_at timestamptz NOT NULL,
    segment text NOT NULL,
    channel text NOT NULL,
    closed_at timestamptz,
    closed_day date,
    closed_by text,
    hours double precision,
    satisfied boolean,
    PRIMARY KEY (account_id, kind, case_id, opened_at)
);
-- Cases closed in a range (response times, staff performance), of every kind:
-- an index led by the kind served neither.
DROP INDEX IF EXISTS {rm}.cases_closed;
CREATE INDEX IF NOT EXISTS cases_closed_day ON {rm}.cases (closed_day);

CREATE TABLE IF NOT EXISTS {rm}.segment_changes (
    account_id uuid NOT NULL,
    version integer NOT NULL,
    day date NOT NULL,
    from_segment text NOT NULL,
    to_segment text NOT NULL,
    PRIMARY KEY (account_id, version)
);

-- Events a read model could not apply: its position moved past them (see projections/parking.py).
CREATE TABLE IF NOT EXISTS {rm}.parked_events (
    projection text NOT NULL,
    position bigint NOT NULL,
    partition integer NOT NULL,
    account_id uuid,
    event_type text,
    reason text NOT NULL,
    error_class text NOT NULL,
    error text NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 1,
    PRIMARY KEY (projection, position)
);
"""

# The tables of each read model: what a rebuild empties.
TABLES = {
    "directory": ("accounts", "account_tokens", "account_flows"),
    "kpis": (
        "kpi_accounts",
        "kpi_account_flows",
        "daily_facts",
        "sales_daily",
        "sales_monthly",
        "cases",
        "segment_changes",
    ),
}


def ddl(readmodel_schema: str) -> str:
    """The statements that create the read-model tables in `readmodel_schema`."""
    return DDL.format(rm=readmodel_schema)
