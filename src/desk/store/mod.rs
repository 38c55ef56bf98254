//! The desk's store: flags, users, sessions, outcomes (with their
//! publication state), notifications and the audit log, in SQLite (one
//! file, by default) or PostgreSQL (several desk instances, one city).
//!
//! One SQL path serves both (`sqlx`'s `Any` driver); the schema is versioned
//! in [`migrations`]. Every write that answers a request is committed before
//! the answer, and SQLite runs with `synchronous=FULL`, so what the desk has
//! acknowledged survives a crash.

pub mod migrations;

use crate::core::flag::Flag;
use anyhow::{Context as _, Result, bail};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor as _, Row as _};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    /// Reads.
    pool: AnyPool,
    /// Writes. On SQLite one connection, so writers queue here instead of
    /// contending for the file's lock (whose busy wait sleeps for up to
    /// 100 ms at a time); on PostgreSQL the same pool as reads.
    writer: AnyPool,
    backend: Backend,
}

/// Which flags a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Regions(Vec<String>),
}

impl Scope {
    pub fn allows(&self, region: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Regions(r) => r.iter().any(|x| x == region),
        }
    }
}

/// A flag as the desk keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRow {
    pub flag_id: String,
    pub domain: String,
    pub business_id: String,
    pub business_name: String,
    pub region: String,
    pub severity: String,
    pub risk_score: f64,
    pub trigger: String,
    pub event_time: String,
    pub received_ms: i64,
    /// The flag's first reason: feature, value and its sentence.
    pub reason: (String, f64, String),
    /// The flag message as stored (the contract's fields only); empty in
    /// listings made for pages ([`Store::flags_by_business`]).
    pub body: String,
    pub status: String,
    pub assignee: Option<String>,
    pub updated_ms: i64,
}

const FLAG_COLUMNS: &str = "flag_id, domain, business_id, business_name, region, severity, \
     risk_score, trigger_name, event_time, received_ms, reason_feature, reason_value, reason_text, \
     body, status, assignee, updated_ms";

/// [`FLAG_COLUMNS`] without the message, for listings that show a line per flag.
const LINE_COLUMNS: &str = "flag_id, domain, business_id, business_name, region, severity, \
     risk_score, trigger_name, event_time, received_ms, reason_feature, reason_value, reason_text, \
     '' AS body, status, assignee, updated_ms";

fn flag_row(r: &AnyRow) -> Result<FlagRow> {
    Ok(FlagRow {
        flag_id: r.try_get("flag_id")?,
        domain: r.try_get("domain")?,
        business_id: r.try_get("business_id")?,
        business_name: r.try_get("business_name")?,
        region: r.try_get("region")?,
        severity: r.try_get("severity")?,
        risk_score: r.try_get("risk_score")?,
        trigger: r.try_get("trigger_name")?,
        event_time: r.try_get("event_time")?,
        received_ms: r.try_get("received_ms")?,
        reason: (
            r.try_get("reason_feature")?,
            r.try_get("reason_value")?,
            r.try_get("reason_text")?,
        ),
        body: r.try_get("body")?,
        status: r.try_get("status")?,
        assignee: r.try_get("assignee")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

/// Which flags a listing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Open or assigned: work still to do.
    Open,
    All,
    Only(&'static str),
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<StatusFilter> {
        Some(match s {
            "open" => StatusFilter::Open,
            "all" => StatusFilter::All,
            "assigned" => StatusFilter::Only("assigned"),
            "inspected" => StatusFilter::Only("inspected"),
            "dismissed" => StatusFilter::Only("dismissed"),
            _ => return None,
        })
    }
}

/// How a listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Newest,
    HighestRisk,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub regions: Vec<String>,
    pub password_hash: String,
    /// What outcomes name the inspector by (never the name).
    pub pseudonym: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Inspector,
    Supervisor,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "inspector" => Role::Inspector,
            "supervisor" => Role::Supervisor,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inspector => "inspector",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

impl User {
    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Inspector => Scope::Regions(self.regions.clone()),
            Role::Supervisor | Role::Admin => Scope::All,
        }
    }
}

/// A session found by its token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// An inspection outcome as recorded at the desk.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeRow {
    pub outcome_id: String,
    pub flag_id: Option<String>,
    pub business_id: String,
    pub domain: String,
    pub region: String,
    pub inspected_at: String,
    pub violation: bool,
    /// Category names.
    pub categories: Vec<String>,
    pub note: String,
    pub inspector: String,
    pub recorded_by: String,
    pub recorded_at: String,
    pub recorded_ms: i64,
    /// The `inspection.outcomes` message, byte for byte what is sent.
    pub message: String,
    pub published_ms: Option<i64>,
}

const OUTCOME_COLUMNS: &str = "outcome_id, flag_id, business_id, domain, region, inspected_at, \
     violation, categories, note, inspector, recorded_by, recorded_at, recorded_ms, message, published_ms";

fn outcome_row(r: &AnyRow) -> Result<OutcomeRow> {
    let categories: String = r.try_get("categories")?;
    Ok(OutcomeRow {
        outcome_id: r.try_get("outcome_id")?,
        flag_id: r.try_get("flag_id")?,
        business_id: r.try_get("business_id")?,
        domain: r.try_get("domain")?,
        region: r.try_get("region")?,
        inspected_at: r.try_get("inspected_at")?,
        violation: r.try_get::<i64, _>("violation")? != 0,
        categories: serde_json::from_str(&categories).unwrap_or_default(),
        note: r.try_get("note")?,
        inspector: r.try_get("inspector")?,
        recorded_by: r.try_get("recorded_by")?,
        recorded_at: r.try_get("recorded_at")?,
        recorded_ms: r.try_get("recorded_ms")?,
        message: r.try_get("message")?,
        published_ms: r.try_get("published_ms")?,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub flag_id: Option<String>,
    pub detail: String,
}

/// What recording an outcome on a flag came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Stored; with the other open flags of the business it closed.
    Stored(Vec<String>),
    /// The flag already has an outcome (its id).
    AlreadyInspected(String),
    /// The flag was dismissed.
    Dismissed,
    NoSuchFlag,
}

/// Counts of open flags per region and severity, with the oldest's age.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenStat {
    pub region: String,
    pub severity: String,
    pub open: i64,
    pub oldest_received_ms: i64,
    pub overdue: i64,
}

/// Open work per region and per assignee.
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    pub region: String,
    pub assignee: Option<String>,
    pub open: i64,
    pub assigned: i64,
    pub oldest_received_ms: i64,
}

/// Inspections recorded and violations found, flagged against routine.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Yield {
    pub flagged: i64,
    pub flagged_violations: i64,
    pub routine: i64,
    pub routine_violations: i64,
}

fn severity_rank(s: &str) -> i64 {
    match s {
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

/// `$n, $n+1, ...` for `count` values, starting at `$first`.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mark the flag that stands for a business among its open ones (most
/// severe, highest score, newest) and count them; inside the transaction
/// that changed the business's flags.
async fn retop(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    domain: &str,
    business: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE flags SET top = 0, open_same = 0 WHERE domain = $1 AND business_id = $2 \
         AND top = 1",
    )
    .bind(domain)
    .bind(business)
    .execute(&mut **tx)
    .await?;
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM flags WHERE domain = $1 AND business_id = $2 \
         AND status IN ('open', 'assigned')",
    )
    .bind(domain)
    .bind(business)
    .fetch_one(&mut **tx)
    .await?;
    if open > 0 {
        sqlx::query(
            "UPDATE flags SET top = 1, open_same = $1 WHERE flag_id = (SELECT flag_id FROM flags \
             WHERE domain = $2 AND business_id = $3 AND status IN ('open', 'assigned') \
             ORDER BY severity_rank DESC, risk_score DESC, received_ms DESC, flag_id LIMIT 1)",
        )
        .bind(open)
        .bind(domain)
        .bind(business)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The WHERE clause (with `$1`...) and its values for a listing; `None`
/// when nothing can match (an inspector with no region).
fn conditions(scope: &Scope, filter: StatusFilter) -> Option<(String, Vec<String>)> {
    let mut cond = "1 = 1".to_owned();
    let mut binds: Vec<String> = Vec::new();
    let status: Vec<&str> = match filter {
        StatusFilter::Open => vec!["open", "assigned"],
        StatusFilter::All => vec![],
        StatusFilter::Only(s) => vec![s],
    };
    if !status.is_empty() {
        cond += &format!(" AND status IN ({})", placeholders(1, status.len()));
        binds.extend(status.iter().map(|s| s.to_string()));
    }
    match scope {
        Scope::All => {}
        Scope::Regions(r) if r.is_empty() => return None,
        Scope::Regions(r) => {
            cond += &format!(
                " AND region IN ({})",
                placeholders(binds.len() + 1, r.len())
            );
            binds.extend(r.iter().cloned());
        }
    }
    Some((cond, binds))
}

fn order_by(order: Order) -> &'static str {
    match order {
        Order::Newest => "received_ms DESC, flag_id",
        Order::HighestRisk => "severity_rank DESC, risk_score DESC, received_ms, flag_id",
    }
}

impl Store {
    /// Open (creating when missing) the store at `location` — a file path
    /// for SQLite or a `postgres://` URL — and bring its schema up to date.
    pub async fn open(location: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let postgres = location.starts_with("postgres://") || location.starts_with("postgresql://");
        let (backend, url, max) = if postgres {
            (Backend::Postgres, location.to_owned(), 16)
        } else {
            if let Some(dir) = std::path::Path::new(location).parent() {
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    bail!(
                        "desk.store {location:?}: the folder {} does not exist",
                        dir.display()
                    );
                }
            }
            (Backend::Sqlite, format!("sqlite://{location}?mode=rwc"), 8)
        };
        let mut opts = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(10));
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA busy_timeout = 10000",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            });
        }
        let what = if postgres {
            "the PostgreSQL server of desk.store (check the URL, the server and the password)"
                .to_owned()
        } else {
            format!("the SQLite file {location} (desk.store)")
        };
        let pool = opts
            .clone()
            .connect(&url)
            .await
            .with_context(|| format!("cannot open {what}"))?;
        let writer = match backend {
            Backend::Postgres => pool.clone(),
            Backend::Sqlite => opts
                .max_connections(1)
                .connect(&url)
                .await
                .with_context(|| format!("cannot open {what}"))?,
        };
        let store = Store {
            pool,
            writer,
            backend,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        self.writer
            .execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
                 name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            )
            .await
            .context("cannot create the schema_migrations table")?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        let applied = applied.unwrap_or(0);
        if applied > migrations::latest() {
            bail!(
                "the desk store is at schema version {applied}, newer than this build's {}; \
                 run a newer reviewguard",
                migrations::latest()
            );
        }
        for m in migrations::MIGRATIONS
            .iter()
            .filter(|m| m.version > applied)
        {
            let mut tx = self.writer.begin().await?;
            // The row first: a second desk migrating at the same moment
            // waits here, then fails on the key instead of creating twice.
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .with_context(|| format!("cannot apply schema migration {}", m.version))?;
            for stmt in migrations::statements(m, self.backend) {
                tx.execute(stmt.as_str())
                    .await
                    .with_context(|| format!("schema migration {} ({})", m.version, m.name))?;
            }
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "desk store migrated");
        }
        Ok(())
    }

    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Keep `flag` (`body` is its message as stored). A flag already kept
    /// is left as it is: `false`.
    pub async fn insert_flag(&self, flag: &Flag, body: &str, now: i64) -> Result<bool> {
        let severity = flag.severity.as_str();
        let reason = flag.reasons.first();
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "INSERT INTO flags (flag_id, domain, business_id, business_name, region, severity, \
             severity_rank, risk_score, trigger_name, event_time, received_ms, reason_feature, \
             reason_value, reason_text, body, status, assignee, updated_ms) VALUES ($1, $2, $3, \
             $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'open', NULL, $16) \
             ON CONFLICT (flag_id) DO NOTHING",
        )
        .bind(&flag.flag_id)
        .bind(flag.domain.as_str())
        .bind(&flag.business_id)
        .bind(flag.business_name.clone().unwrap_or_default())
        .bind(flag.region.clone().unwrap_or_default())
        .bind(severity)
        .bind(severity_rank(severity))
        .bind(flag.risk_score)
        .bind(&flag.trigger)
        .bind(&flag.event_time)
        .bind(now)
        .bind(reason.map_or("", |r| r.feature.as_str()))
        .bind(reason.map_or(0.0, |r| r.value))
        .bind(reason.map_or("", |r| r.text.as_str()))
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("cannot store a flag")?;
        let new = done.rows_affected() == 1;
        if new {
            retop(&mut tx, flag.domain.as_str(), &flag.business_id).await?;
        }
        tx.commit().await.context("cannot store a flag")?;
        Ok(new)
    }

    /// The flags `scope` allows, by `filter`, in `order`; at most `limit`
    /// from `offset`.
    pub async fn flags(
        &self,
        scope: &Scope,
        filter: StatusFilter,
        order: Order,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<FlagRow>> {
        let Some((cond, binds)) = conditions(scope, filter) else {
            return Ok(Vec::new());
        };
        let n = binds.len() + 1;
        let sql = format!(
            "SELECT {FLAG_COLUMNS} FROM flags WHERE {cond} ORDER BY {} LIMIT ${n} OFFSET ${}",
            order_by(order),
            n + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        rows.iter().map(flag_row).collect()
    }

    /// The open flags `scope` allows, one row per business: the flag that
    /// stands for it (most severe, highest score, newest) with how many
    /// open flags the business has; most severe first.
    pub async fn open_by_business(
        &self,
        scope: &Scope,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<(FlagRow, i64)>> {
        let Some((cond, binds)) = conditions(scope, StatusFilter::Open) else {
            return Ok(Vec::new());
        };
        let n = binds.len() + 1;
        let sql = format!(
            "SELECT {LINE_COLUMNS}, open_same FROM flags WHERE top = 1 AND {cond} \
             ORDER BY {} LIMIT ${n} OFFSET ${}",
            order_by(Order::HighestRisk),
            n + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((flag_row(r)?, r.try_get("open_same")?)))
            .collect()
    }

    pub async fn flag(&self, flag_id: &str) -> Result<Option<FlagRow>> {
        let row = sqlx::query(&format!(
            "SELECT {FLAG_COLUMNS} FROM flags WHERE flag_id = $1"
        ))
        .bind(flag_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(flag_row).transpose()
    }

    /// Assign an open or assigned flag to `user`; `false` when the flag is
    /// closed (inspected or dismissed) or missing.
    pub async fn assign(&self, flag_id: &str, user: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE flags SET status = 'assigned', assignee = $1, updated_ms = $2 \
             WHERE flag_id = $3 AND status IN ('open', 'assigned')",
        )
        .bind(user)
        .bind(now)
        .bind(flag_id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Dismiss an open or assigned flag; `false` when it is closed or missing.
    pub async fn dismiss(&self, flag_id: &str, user: &str, now: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE flags SET status = 'dismissed', assignee = COALESCE(assignee, $1), \
             updated_ms = $2 WHERE flag_id = $3 AND status IN ('open', 'assigned')",
        )
        .bind(user)
        .bind(now)
        .bind(flag_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let row = sqlx::query("SELECT domain, business_id FROM flags WHERE flag_id = $1")
            .bind(flag_id)
            .fetch_one(&mut *tx)
            .await?;
        let (domain, business): (String, String) =
            (row.try_get("domain")?, row.try_get("business_id")?);
        retop(&mut tx, &domain, &business).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Record an outcome: on its flag (which becomes `inspected`) when it
    /// names one, else as a routine inspection. The outcome and the flag's
    /// new status are committed together.
    pub async fn record_outcome(&self, o: &OutcomeRow) -> Result<Recorded> {
        let mut tx = self.writer.begin().await?;
        let mut closed = Vec::new();
        if let Some(flag_id) = &o.flag_id {
            let done = sqlx::query(
                "UPDATE flags SET status = 'inspected', assignee = COALESCE(assignee, $1), \
                 updated_ms = $2 WHERE flag_id = $3 AND status IN ('open', 'assigned')",
            )
            .bind(&o.recorded_by)
            .bind(o.recorded_ms)
            .bind(flag_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM flags WHERE flag_id = $1")
                        .bind(flag_id)
                        .fetch_optional(&self.pool)
                        .await?;
                return Ok(match status.as_deref() {
                    None => Recorded::NoSuchFlag,
                    Some("dismissed") => Recorded::Dismissed,
                    Some(_) => {
                        let id: Option<String> = sqlx::query_scalar(
                            "SELECT outcome_id FROM outcomes WHERE flag_id = $1",
                        )
                        .bind(flag_id)
                        .fetch_optional(&self.pool)
                        .await?;
                        Recorded::AlreadyInspected(id.unwrap_or_default())
                    }
                });
            }
        }
        if o.flag_id.is_some() {
            // The inspection covered the business: its other open flags close with it.
            let rows = sqlx::query(
                "SELECT flag_id FROM flags WHERE domain = $1 AND business_id = $2 \
                 AND status IN ('open', 'assigned')",
            )
            .bind(&o.domain)
            .bind(&o.business_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &rows {
                closed.push(r.try_get::<String, _>("flag_id")?);
            }
            sqlx::query(
                "UPDATE flags SET status = 'inspected', updated_ms = $1 WHERE domain = $2 \
                 AND business_id = $3 AND status IN ('open', 'assigned')",
            )
            .bind(o.recorded_ms)
            .bind(&o.domain)
            .bind(&o.business_id)
            .execute(&mut *tx)
            .await?;
            retop(&mut tx, &o.domain, &o.business_id).await?;
        }
        sqlx::query(&format!(
            "INSERT INTO outcomes ({OUTCOME_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, NULL)"
        ))
        .bind(&o.outcome_id)
        .bind(o.flag_id.as_deref())
        .bind(&o.business_id)
        .bind(&o.domain)
        .bind(&o.region)
        .bind(&o.inspected_at)
        .bind(i64::from(o.violation))
        .bind(serde_json::to_string(&o.categories)?)
        .bind(&o.note)
        .bind(&o.inspector)
        .bind(&o.recorded_by)
        .bind(&o.recorded_at)
        .bind(o.recorded_ms)
        .bind(&o.message)
        .execute(&mut *tx)
        .await
        .context("cannot store the outcome")?;
        tx.commit().await?;
        Ok(Recorded::Stored(closed))
    }

    pub async fn outcome_of_flag(&self, flag_id: &str) -> Result<Option<OutcomeRow>> {
        let row = sqlx::query(&format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE flag_id = $1"
        ))
        .bind(flag_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(outcome_row).transpose()
    }

    /// The outcome that closed `f`: its own, or the inspection of its
    /// business recorded after it arrived.
    pub async fn outcome_closing(&self, f: &FlagRow) -> Result<Option<OutcomeRow>> {
        if let Some(o) = self.outcome_of_flag(&f.flag_id).await? {
            return Ok(Some(o));
        }
        let row = sqlx::query(&format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE domain = $1 AND business_id = $2 \
             AND flag_id IS NOT NULL AND recorded_ms >= $3 ORDER BY recorded_ms LIMIT 1"
        ))
        .bind(&f.domain)
        .bind(&f.business_id)
        .bind(f.received_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(outcome_row).transpose()
    }

    /// Outcomes not yet acknowledged by Kafka and not leased by another
    /// desk instance at `now`, oldest first.
    pub async fn unpublished(&self, limit: i64, now: i64) -> Result<Vec<OutcomeRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE published_ms IS NULL \
             AND (lease_until_ms IS NULL OR lease_until_ms < $1) \
             ORDER BY recorded_ms, outcome_id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outcome_row).collect()
    }

    /// Take the sending of an outcome for `lease_ms`: `true` for the one
    /// desk instance that should send it now.
    pub async fn lease_outcome(&self, outcome_id: &str, now: i64, lease_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outcomes SET lease_until_ms = $1 WHERE outcome_id = $2 \
             AND published_ms IS NULL AND (lease_until_ms IS NULL OR lease_until_ms < $3)",
        )
        .bind(now + lease_ms)
        .bind(outcome_id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn unpublished_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outcomes WHERE published_ms IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Give the sending of an outcome back (the send failed).
    pub async fn release_outcome(&self, outcome_id: &str) -> Result<()> {
        sqlx::query("UPDATE outcomes SET lease_until_ms = NULL WHERE outcome_id = $1")
            .bind(outcome_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn mark_published(&self, outcome_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outcomes SET published_ms = $1 WHERE outcome_id = $2 AND published_ms IS NULL",
        )
        .bind(now)
        .bind(outcome_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every outcome, in the order inspected (for the inspections CSV).
    pub async fn outcomes(&self) -> Result<Vec<OutcomeRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTCOME_COLUMNS} FROM outcomes ORDER BY inspected_at, outcome_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outcome_row).collect()
    }

    pub async fn add_user(&self, u: &User, replace: bool, now: i64) -> Result<()> {
        let regions = serde_json::to_string(&u.regions)?;
        let sql = if replace {
            "INSERT INTO users (name, role, regions, password_hash, pseudonym, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET role = $2, \
             regions = $3, password_hash = $4"
        } else {
            "INSERT INTO users (name, role, regions, password_hash, pseudonym, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        };
        let r = sqlx::query(sql)
            .bind(&u.name)
            .bind(u.role.as_str())
            .bind(regions)
            .bind(&u.password_hash)
            .bind(&u.pseudonym)
            .bind(now)
            .execute(&self.writer)
            .await;
        match r {
            Ok(_) => {
                if replace {
                    // A changed password or role ends the user's sessions.
                    self.end_sessions_of(&u.name).await?;
                }
                Ok(())
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => bail!(
                "a user named {:?} exists; give --replace to change their role, regions and password",
                u.name
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a user and end their sessions; `false` when there is none.
    /// Their name stays where it was written (assignments, audit log).
    pub async fn remove_user(&self, name: &str) -> Result<bool> {
        self.end_sessions_of(name).await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn end_sessions_of(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT name, role, regions, password_hash, pseudonym FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_row(&r)).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT name, role, regions, password_hash, pseudonym FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_row).collect()
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        expires_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, csrf_token, expires_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(csrf)
        .bind(expires_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The live session of a token hash, with its user.
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT u.name, u.role, u.regions, u.password_hash, u.pseudonym, s.csrf_token, \
             s.expires_ms FROM sessions s JOIN users u ON u.name = s.user_name \
             WHERE s.token_hash = $1 AND s.expires_ms > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Session {
            user: user_row(&r)?,
            csrf_token: r.try_get("csrf_token")?,
            expires_ms: r.try_get("expires_ms")?,
        }))
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn purge_sessions(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(now)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    /// Append to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        flag_id: Option<&str>,
        detail: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at_ms, actor, action, flag_id, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(flag_id)
        .bind(detail)
        .execute(&self.writer)
        .await
        .context("cannot write the audit log")?;
        Ok(())
    }

    /// The audit log after `after_seq`, oldest first, at most `limit`.
    pub async fn audit_log(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, flag_id, detail FROM audit WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The actions on one flag (assign, outcome, dismiss, closed with
    /// another flag's outcome), oldest first.
    pub async fn flag_history(&self, flag_id: &str) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, actor, action, flag_id, detail FROM audit WHERE flag_id = $1 \
             AND action IN ('assign', 'outcome', 'dismiss', 'closed_by_outcome') ORDER BY seq LIMIT 200",
        )
        .bind(flag_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Open flags per region and severity; `overdue_before` is the
    /// received time before which an open flag is overdue.
    pub async fn open_stats(&self, overdue_before: i64) -> Result<Vec<OpenStat>> {
        let rows = sqlx::query(
            "SELECT region, severity, COUNT(*) AS open, MIN(received_ms) AS oldest, \
             COUNT(CASE WHEN received_ms < $1 THEN 1 END) AS overdue FROM flags \
             WHERE status IN ('open', 'assigned') GROUP BY region, severity ORDER BY region, severity",
        )
        .bind(overdue_before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OpenStat {
                    region: r.try_get("region")?,
                    severity: r.try_get("severity")?,
                    open: r.try_get("open")?,
                    oldest_received_ms: r.try_get("oldest")?,
                    overdue: r.try_get("overdue")?,
                })
            })
            .collect()
    }

    /// Open work per region and assignee (None: not assigned).
    pub async fn backlog(&self) -> Result<Vec<Backlog>> {
        let rows = sqlx::query(
            "SELECT region, assignee, COUNT(CASE WHEN status = 'open' THEN 1 END) AS open, \
             COUNT(CASE WHEN status = 'assigned' THEN 1 END) AS assigned, \
             MIN(received_ms) AS oldest FROM flags WHERE status IN ('open', 'assigned') \
             GROUP BY region, assignee ORDER BY region, assignee",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Backlog {
                    region: r.try_get("region")?,
                    assignee: r.try_get("assignee")?,
                    open: r.try_get("open")?,
                    assigned: r.try_get("assigned")?,
                    oldest_received_ms: r.try_get("oldest")?,
                })
            })
            .collect()
    }

    /// Yield of the inspections recorded since `since_ms`, flagged against
    /// routine, within `scope`.
    pub async fn yields(&self, scope: &Scope, since_ms: i64) -> Result<Yield> {
        let rows = sqlx::query(
            "SELECT region, CASE WHEN flag_id IS NULL THEN 0 ELSE 1 END AS flagged, \
             COUNT(*) AS n, COUNT(CASE WHEN violation = 1 THEN 1 END) AS v FROM outcomes \
             WHERE recorded_ms >= $1 GROUP BY region, CASE WHEN flag_id IS NULL THEN 0 ELSE 1 END",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut y = Yield::default();
        for r in &rows {
            let region: String = r.try_get("region")?;
            if !scope.allows(&region) {
                continue;
            }
            let flagged: i64 = r.try_get("flagged")?;
            let (n, v): (i64, i64) = (r.try_get("n")?, r.try_get("v")?);
            if flagged == 1 {
                y.flagged += n;
                y.flagged_violations += v;
            } else {
                y.routine += n;
                y.routine_violations += v;
            }
        }
        Ok(y)
    }

    /// Claim the notification of `flag_id` to webhook `hook`: `true` for
    /// the one caller that should send it (a flag is notified once).
    pub async fn claim_notification(&self, flag_id: &str, hook: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO notifications (flag_id, hook, state, updated_ms) VALUES ($1, $2, 'sending', $3) \
             ON CONFLICT (flag_id, hook) DO NOTHING",
        )
        .bind(flag_id)
        .bind(hook)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_notification(
        &self,
        flag_id: &str,
        hook: i64,
        state: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE notifications SET state = $1, updated_ms = $2 WHERE flag_id = $3 AND hook = $4",
        )
        .bind(state)
        .bind(now)
        .bind(flag_id)
        .bind(hook)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Give a claim back (the send failed): the flag may be sent again.
    pub async fn release_notification(&self, flag_id: &str, hook: i64) -> Result<()> {
        sqlx::query("DELETE FROM notifications WHERE flag_id = $1 AND hook = $2")
            .bind(flag_id)
            .bind(hook)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Open flags received since `since_ms` not yet notified to `hook`.
    pub async fn unnotified(&self, hook: i64, since_ms: i64, limit: i64) -> Result<Vec<FlagRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {FLAG_COLUMNS} FROM flags f WHERE status IN ('open', 'assigned') AND received_ms >= $1 \
             AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.flag_id = f.flag_id AND n.hook = $2) \
             ORDER BY severity_rank DESC, risk_score DESC LIMIT $3"
        ))
        .bind(since_ms)
        .bind(hook)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(flag_row).collect()
    }

    /// Run a statement as the desk runs its own (for tests of what the
    /// store refuses).
    #[doc(hidden)]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        Ok(self.writer.execute(sql).await?.rows_affected())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

fn user_row(r: &AnyRow) -> Result<User> {
    let role: String = r.try_get("role")?;
    let regions: String = r.try_get("regions")?;
    Ok(User {
        name: r.try_get("name")?,
        role: Role::parse(&role).with_context(|| format!("unknown role {role:?} in the store"))?,
        regions: serde_json::from_str(&regions).context("a user's regions in the store")?,
        password_hash: r.try_get("password_hash")?,
        pseudonym: r.try_get("pseudonym")?,
    })
}

fn audit_row(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at_ms")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        flag_id: r.try_get("flag_id")?,
        detail: r.try_get("detail")?,
    })
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
pub(crate) mod tests;
