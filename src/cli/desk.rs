//! `desk` (serve the inspectors' desk), `desk user`, `desk audit` and
//! `outcomes export`.

use anyhow::{Context, Result, bail};
use reviewguard::desk::store::{Role, Store, User, now_ms};
use reviewguard::desk::{auth, outcome};
use reviewguard::service::config::Config;
use std::path::Path;

fn config(path: &Path) -> Result<Config> {
    Ok(Config::load(Some(path), std::env::vars())?)
}

/// Run `f` on the desk's store named by the config at `path`, then close it.
fn with_store<T, Fut>(path: &Path, f: impl FnOnce(Store) -> Fut) -> Result<T>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    let cfg = config(path)?;
    runtime()?.block_on(async {
        let store = Store::open(&cfg.desk.store).await?;
        let result = f(store.clone()).await;
        store.close().await;
        result
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn serve(path: &Path) -> Result<()> {
    let cfg = config(path)?;
    runtime()?.block_on(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let running = reviewguard::desk::serve::start(&cfg, stop_rx).await?;
        println!("desk serving on http://{}", running.addr);
        super::run::wait_for_signal().await;
        tracing::info!("signal received; the desk stops");
        let _ = stop_tx.send(true);
        running.join().await;
        Ok(())
    })
}

/// A user name: 1 to 64 letters, digits, `.`, `_` or `-`.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!("--name must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

pub(crate) fn user_add(
    path: &Path,
    name: &str,
    role: &str,
    regions: &[String],
    password_file: &Path,
    replace: bool,
) -> Result<()> {
    // The config first: a bad one is refused before the password is read.
    config(path)?;
    check_name(name)?;
    let role = Role::parse(role)
        .with_context(|| format!("--role {role:?}: use inspector, supervisor or admin"))?;
    let mut regions: Vec<String> = regions
        .iter()
        .map(|r| {
            outcome::ident("region", r).map_err(|e| anyhow::anyhow!("--region: {}", e.message))
        })
        .collect::<Result<_>>()?;
    regions.sort();
    regions.dedup();
    if role == Role::Inspector && regions.is_empty() {
        bail!("an inspector needs at least one --region (the flags they may see)");
    }
    let text = std::fs::read_to_string(password_file)
        .with_context(|| format!("cannot read --password-file {}", password_file.display()))?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.chars().count() < auth::MIN_PASSWORD_CHARS {
        bail!(
            "the password in {} is shorter than {} characters",
            password_file.display(),
            auth::MIN_PASSWORD_CHARS
        );
    }
    if password.len() > auth::MAX_PASSWORD_BYTES {
        bail!(
            "the password is longer than {} bytes",
            auth::MAX_PASSWORD_BYTES
        );
    }
    let user = User {
        name: name.to_owned(),
        role,
        regions: regions.clone(),
        password_hash: auth::hash_password(password)?,
        pseudonym: auth::pseudonym(),
    };
    let (user, detail) = (&user, user.regions.join(","));
    with_store(path, |store| async move {
        store.add_user(user, replace, now_ms()).await?;
        store
            .audit(
                "(command line)",
                if replace { "user_replace" } else { "user_add" },
                None,
                &format!("{} {} regions={detail}", user.name, role.as_str()),
                now_ms(),
            )
            .await?;
        Ok::<_, anyhow::Error>(())
    })?;
    println!(
        "user {name} {} ({}{})",
        if replace { "set" } else { "added" },
        role.as_str(),
        if regions.is_empty() {
            String::new()
        } else {
            format!(", regions {}", regions.join(", "))
        }
    );
    Ok(())
}

pub(crate) fn user_list(path: &Path) -> Result<()> {
    let users = with_store(path, |store| async move { store.users().await })?;
    for u in users {
        println!("{}\t{}\t{}", u.name, u.role.as_str(), u.regions.join(","));
    }
    Ok(())
}

pub(crate) fn user_remove(path: &Path, name: &str) -> Result<()> {
    let removed = with_store(path, |store| async move {
        let removed = store.remove_user(name).await?;
        if removed {
            store
                .audit("(command line)", "user_remove", None, name, now_ms())
                .await?;
        }
        Ok(removed)
    })?;
    if !removed {
        bail!("no user named {name:?}");
    }
    println!("user {name} removed; their sessions have ended");
    Ok(())
}

/// Control characters shown escaped, so a logged value cannot forge lines.
fn printable(s: &str) -> String {
    s.chars().flat_map(char::escape_default).collect::<String>()
}

pub(crate) fn audit(path: &Path, after: i64, limit: i64, json: bool) -> Result<()> {
    let rows = with_store(
        path,
        |store| async move { store.audit_log(after, limit).await },
    )?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for r in rows {
        let at = chrono::DateTime::from_timestamp_millis(r.at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let line = if json {
            serde_json::json!({
                "seq": r.seq, "at": at, "user": r.actor, "action": r.action,
                "flag_id": r.flag_id, "detail": r.detail,
            })
            .to_string()
        } else {
            format!(
                "{}\t{at}\t{}\t{}\t{}\t{}",
                r.seq,
                printable(&r.actor),
                r.action,
                r.flag_id.as_deref().unwrap_or("-"),
                printable(&r.detail)
            )
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(())
}

pub(crate) fn export(path: &Path, out: &Path, from_topic: bool) -> Result<()> {
    let outcomes = if from_topic {
        let cfg = config(path)?;
        let (rows, bad) =
            reviewguard::desk::export::from_topic(&cfg, std::time::Duration::from_secs(60))?;
        if bad > 0 {
            eprintln!(
                "{bad} messages on {} are not inspection outcomes; left out",
                cfg.topics.outcomes
            );
        }
        rows
    } else {
        with_store(path, |store| async move { store.outcomes().await })?
    };
    reviewguard::desk::export::to_file(out, &outcomes)?;
    println!("wrote {} outcomes to {}", outcomes.len(), out.display());
    Ok(())
}
