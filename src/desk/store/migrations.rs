//! The store's schema, versioned. Each migration is applied once, in order,
//! in one transaction, and recorded in `schema_migrations`; a store written
//! by a newer build is refused rather than guessed at.
//!
//! Statements are shared between SQLite and PostgreSQL, with three tokens
//! for what differs: `{int}` (64-bit integer), `{real}` (double) and
//! `{serial}` (an auto-numbered primary key).

use super::Backend;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub shared: &'static [&'static str],
    pub sqlite: &'static [&'static str],
    pub postgres: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "flags, users, sessions, outcomes, notifications, audit log",
    shared: &[
        "CREATE TABLE flags (
            flag_id TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            business_id TEXT NOT NULL,
            business_name TEXT NOT NULL,
            region TEXT NOT NULL,
            severity TEXT NOT NULL,
            severity_rank {int} NOT NULL,
            risk_score {real} NOT NULL,
            trigger_name TEXT NOT NULL,
            event_time TEXT NOT NULL,
            received_ms {int} NOT NULL,
            reason_feature TEXT NOT NULL,
            reason_value {real} NOT NULL,
            reason_text TEXT NOT NULL,
            status TEXT NOT NULL,
            assignee TEXT,
            updated_ms {int} NOT NULL,
            -- 1 on the flag that stands for its business among the open
            -- ones (most severe, highest score, newest), with how many
            -- open flags the business has; kept by the store on each change.
            top {int} NOT NULL DEFAULT 0,
            open_same {int} NOT NULL DEFAULT 0,
            -- Last: SQLite reads a row's columns in order, and the message
            -- (kilobytes) would push the ones after it to overflow pages.
            body TEXT NOT NULL
        )",
        "CREATE INDEX flags_by_status_region ON flags (status, region)",
        "CREATE INDEX flags_by_received ON flags (received_ms)",
        "CREATE INDEX flags_by_top_region ON flags (top, region)",
        "CREATE INDEX flags_by_business ON flags (domain, business_id)",
        "CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            regions TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            pseudonym TEXT NOT NULL UNIQUE,
            created_ms {int} NOT NULL
        )",
        "CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_name TEXT NOT NULL,
            csrf_token TEXT NOT NULL,
            expires_ms {int} NOT NULL
        )",
        "CREATE TABLE outcomes (
            outcome_id TEXT PRIMARY KEY,
            flag_id TEXT UNIQUE,
            business_id TEXT NOT NULL,
            domain TEXT NOT NULL,
            region TEXT NOT NULL,
            inspected_at TEXT NOT NULL,
            violation {int} NOT NULL,
            categories TEXT NOT NULL,
            note TEXT NOT NULL,
            inspector TEXT NOT NULL,
            recorded_by TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            recorded_ms {int} NOT NULL,
            message TEXT NOT NULL,
            published_ms {int},
            lease_until_ms {int}
        )",
        "CREATE INDEX outcomes_unpublished ON outcomes (published_ms)",
        "CREATE TABLE notifications (
            flag_id TEXT NOT NULL,
            hook {int} NOT NULL,
            state TEXT NOT NULL,
            updated_ms {int} NOT NULL,
            PRIMARY KEY (flag_id, hook)
        )",
        "CREATE TABLE audit (
            seq {serial},
            at_ms {int} NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            flag_id TEXT,
            detail TEXT NOT NULL
        )",
        "CREATE INDEX audit_by_flag ON audit (flag_id)",
    ],
    // No user of the desk, nor anything it runs, may change the audit log.
    sqlite: &[
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    postgres: &[
        "CREATE FUNCTION reviewguard_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
         $body$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $body$",
        "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
         FOR EACH ROW EXECUTE FUNCTION reviewguard_audit_append_only()",
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
         FOR EACH STATEMENT EXECUTE FUNCTION reviewguard_audit_append_only()",
    ],
}];

/// The statements of `m` for `backend`, tokens replaced.
pub fn statements(m: &Migration, backend: Backend) -> Vec<String> {
    let (int, real, serial, own) = match backend {
        Backend::Sqlite => (
            "INTEGER",
            "REAL",
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            m.sqlite,
        ),
        Backend::Postgres => (
            "BIGINT",
            "DOUBLE PRECISION",
            "BIGSERIAL PRIMARY KEY",
            m.postgres,
        ),
    };
    m.shared
        .iter()
        .chain(own.iter())
        .map(|s| {
            s.replace("{int}", int)
                .replace("{real}", real)
                .replace("{serial}", serial)
        })
        .collect()
}

pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
