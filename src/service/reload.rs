//! Hot reload of model files and lexicons while `run` serves: a changed file
//! is loaded and checked off the hot path; a good one replaces the old
//! atomically (the next review is scored by the new one), a bad one is
//! refused, counted and logged, and the old one keeps serving.

use crate::core::extract::Extractor;
use crate::core::model::Model;
use crate::core::scorer::Scorer;
use crate::service::metrics::Metrics;
use crate::types::Domain;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// What to watch. `None` entries are the compiled-in defaults (or, for the
/// shadows, no shadow model), never reloaded.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    pub food_model: Option<PathBuf>,
    pub tourism_model: Option<PathBuf>,
    pub shadow_food_model: Option<PathBuf>,
    pub shadow_tourism_model: Option<PathBuf>,
    pub lexicons: Option<PathBuf>,
}

/// One watched model file: the live or the shadow model of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Live(Domain),
    Shadow(Domain),
}

const SLOTS: [Slot; 4] = [
    Slot::Live(Domain::Food),
    Slot::Live(Domain::Tourism),
    Slot::Shadow(Domain::Food),
    Slot::Shadow(Domain::Tourism),
];
/// Index of the lexicons in `Reloader::seen`, after the model slots.
const LEXICONS: usize = SLOTS.len();

#[derive(Debug)]
pub struct Reloader {
    watched: Watched,
    /// Content hash last acted on, per watched item (loaded or refused):
    /// the model slots, then the lexicons.
    seen: [Option<String>; SLOTS.len() + 1],
}

const LEXICON_FILES: [&str; 3] = ["common.toml", "food.toml", "tourism.toml"];

impl Reloader {
    /// Start watching; the current contents count as seen.
    pub fn new(watched: Watched) -> Reloader {
        let mut r = Reloader {
            watched,
            seen: Default::default(),
        };
        for i in 0..r.seen.len() {
            r.seen[i] = r.digest(i);
        }
        r
    }

    fn path(&self, slot: Slot) -> Option<&PathBuf> {
        match slot {
            Slot::Live(Domain::Food) => self.watched.food_model.as_ref(),
            Slot::Live(Domain::Tourism) => self.watched.tourism_model.as_ref(),
            Slot::Shadow(Domain::Food) => self.watched.shadow_food_model.as_ref(),
            Slot::Shadow(Domain::Tourism) => self.watched.shadow_tourism_model.as_ref(),
        }
    }

    fn digest(&self, i: usize) -> Option<String> {
        let mut h = Sha256::new();
        match SLOTS.get(i) {
            Some(slot) => h.update(std::fs::read(self.path(*slot)?).ok()?),
            None => {
                let dir = self.watched.lexicons.as_ref()?;
                for f in LEXICON_FILES {
                    h.update(std::fs::read(dir.join(f)).ok()?);
                }
                // Learned signal models beside the lexicons are optional.
                for (f, _) in crate::core::extract::SIGNAL_MODEL_FILES {
                    h.update(f);
                    if let Ok(bytes) = std::fs::read(dir.join(f)) {
                        h.update(bytes);
                    }
                }
            }
        }
        Some(hex::encode(h.finalize()))
    }

    /// Look for changes and apply them to `scorer`. Returns whether anything changed.
    pub fn check(&mut self, scorer: &mut Scorer, metrics: &Metrics) -> bool {
        let mut changed = false;
        for (i, slot) in SLOTS.into_iter().enumerate() {
            let Some(path) = self.path(slot).cloned() else {
                continue;
            };
            let digest = self.digest(i);
            if digest.is_none() || digest == self.seen[i] {
                continue;
            }
            self.seen[i] = digest;
            let (domain, role) = match slot {
                Slot::Live(d) => (d, "live"),
                Slot::Shadow(d) => (d, "shadow"),
            };
            match Model::load(&path, domain) {
                Ok(m) => {
                    tracing::info!(%domain, role, path = %path.display(), version = %m.file.version, kind = m.kind().as_str(), sha256 = %m.sha256, "model reloaded");
                    let m = Arc::new(m);
                    match slot {
                        Slot::Live(Domain::Food) => scorer.models.food = m,
                        Slot::Live(Domain::Tourism) => scorer.models.tourism = m,
                        Slot::Shadow(Domain::Food) => scorer.models.shadow_food = Some(m),
                        Slot::Shadow(Domain::Tourism) => scorer.models.shadow_tourism = Some(m),
                    }
                    metrics.set_models(&scorer.models);
                    changed = true;
                }
                Err(e) => {
                    metrics
                        .model_reload_failures
                        .with_label_values(&[domain.as_str()])
                        .inc();
                    tracing::warn!(%domain, role, error = %e, "changed model file refused; the previous model keeps serving");
                }
            }
        }
        if let Some(dir) = self.watched.lexicons.clone() {
            let digest = self.digest(LEXICONS);
            if digest.is_some() && digest != self.seen[LEXICONS] {
                self.seen[LEXICONS] = digest;
                match Extractor::from_dir(&dir) {
                    Ok(ex) => {
                        tracing::info!(dir = %dir.display(), "lexicons reloaded");
                        scorer.extractor = Arc::new(ex);
                        changed = true;
                    }
                    Err(e) => {
                        metrics.lexicon_reload_failures.inc();
                        tracing::warn!(error = %e, "changed lexicons refused; the previous ones stay in use");
                    }
                }
            }
        }
        changed
    }
}

/// What a requested reload did, as `POST /reload` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// A changed model or lexicon file was loaded.
    pub changed: bool,
    /// Changed files refused by this check (the old ones keep serving).
    pub refused: u64,
    /// `(domain, version)` serving after the check.
    pub models: Vec<(String, String)>,
}

type ReloadReply = tokio::sync::oneshot::Sender<ReloadReport>;

/// The way from the admin endpoint to the run loop, which owns the scorer:
/// the endpoint asks, the loop checks the files and answers.
#[derive(Debug)]
pub struct Trigger {
    tx: tokio::sync::mpsc::Sender<ReloadReply>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<ReloadReply>>>,
}

impl Default for Trigger {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        Trigger {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }
}

impl Trigger {
    /// The loop's end; `None` once taken.
    pub fn take_receiver(&self) -> Option<tokio::sync::mpsc::Receiver<ReloadReply>> {
        self.rx.lock().ok()?.take()
    }

    /// Ask the loop to check now; `None` when no loop answers in time.
    pub async fn request(&self, timeout: std::time::Duration) -> Option<ReloadReport> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        tokio::time::timeout(timeout, async {
            self.tx.send(reply).await.ok()?;
            answer.await.ok()
        })
        .await
        .ok()
        .flatten()
    }
}

impl Reloader {
    /// [`Reloader::check`] for a request: what changed and what was refused.
    pub fn check_now(&mut self, scorer: &mut Scorer, metrics: &Metrics) -> ReloadReport {
        let failures = |m: &Metrics| {
            Domain::ALL
                .iter()
                .map(|d| {
                    m.model_reload_failures
                        .with_label_values(&[d.as_str()])
                        .get()
                })
                .sum::<u64>()
                + m.lexicon_reload_failures.get()
        };
        let before = failures(metrics);
        let changed = self.check(scorer, metrics);
        ReloadReport {
            changed,
            refused: failures(metrics) - before,
            models: Domain::ALL
                .iter()
                .map(|d| {
                    (
                        d.as_str().to_owned(),
                        scorer.models.get(*d).file.version.clone(),
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::privacy::Pseudonymiser;
    use crate::core::scorer::Models;

    #[test]
    fn good_files_replace_bad_files_are_refused_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let food = dir.path().join("food.json");
        std::fs::write(&food, crate::core::model::BUILTIN_FOOD).unwrap();
        let mut scorer = Scorer {
            extractor: Arc::new(Extractor::builtin().unwrap()),
            models: Models::builtin().unwrap(),
            pseudonyms: Pseudonymiser::new(b"k"),
            decide: Default::default(),
            outcomes: Default::default(),
        };
        let metrics = Metrics::new();
        let mut r = Reloader::new(Watched {
            food_model: Some(food.clone()),
            ..Default::default()
        });
        assert!(
            !r.check(&mut scorer, &metrics),
            "unchanged file: nothing to do"
        );

        let mut v: serde_json::Value =
            serde_json::from_str(crate::core::model::BUILTIN_FOOD).unwrap();
        v["version"] = "2099.1".into();
        crate::core::model::seal(&mut v);
        std::fs::write(&food, v.to_string()).unwrap();
        assert!(r.check(&mut scorer, &metrics));
        assert_eq!(scorer.models.food.file.version, "2099.1");

        std::fs::write(&food, "{ truncated").unwrap();
        assert!(!r.check(&mut scorer, &metrics));
        assert_eq!(
            scorer.models.food.file.version, "2099.1",
            "the old model keeps serving"
        );
        assert_eq!(
            metrics
                .model_reload_failures
                .with_label_values(&["food"])
                .get(),
            1
        );
        assert!(
            !r.check(&mut scorer, &metrics),
            "the same bad file is refused once"
        );
        assert_eq!(
            metrics
                .model_reload_failures
                .with_label_values(&["food"])
                .get(),
            1
        );
    }

    #[test]
    fn a_signal_model_beside_the_lexicons_is_reloaded_with_them() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("common.toml", crate::core::extract::BUILTIN_COMMON),
            ("food.toml", crate::core::extract::BUILTIN_FOOD),
            ("tourism.toml", crate::core::extract::BUILTIN_TOURISM),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut scorer = Scorer {
            extractor: Arc::new(Extractor::from_dir(dir.path()).unwrap()),
            models: Models::builtin().unwrap(),
            pseudonyms: Pseudonymiser::new(b"k"),
            decide: Default::default(),
            outcomes: Default::default(),
        };
        let metrics = Metrics::new();
        let mut r = Reloader::new(Watched {
            lexicons: Some(dir.path().to_owned()),
            ..Default::default()
        });
        assert!(!scorer.extractor.has_model(Domain::Tourism));
        let model = dir.path().join("signals-tourism.json");
        std::fs::write(&model, "{ truncated").unwrap();
        assert!(!r.check(&mut scorer, &metrics), "a bad model is refused");
        assert_eq!(metrics.lexicon_reload_failures.get(), 1);
        let good = crate::core::extract::learned::SignalModelFile::new(
            Domain::Tourism,
            8,
            "t",
            "t",
            Vec::new(),
        )
        .to_sealed_json()
        .unwrap();
        std::fs::write(&model, &good).unwrap();
        assert!(r.check(&mut scorer, &metrics));
        assert!(scorer.extractor.has_model(Domain::Tourism));
        // A file whose content no longer matches its checksum is refused,
        // and the model before it keeps serving.
        let tampered = good.replace("\"version\":\"t\"", "\"version\":\"u\"");
        assert_ne!(tampered, good);
        std::fs::write(&model, tampered).unwrap();
        assert!(
            !r.check(&mut scorer, &metrics),
            "a tampered model is refused"
        );
        assert_eq!(metrics.lexicon_reload_failures.get(), 2);
        assert!(scorer.extractor.has_model(Domain::Tourism));
        std::fs::remove_file(&model).unwrap();
        assert!(
            r.check(&mut scorer, &metrics),
            "removing it is a change too"
        );
        assert!(!scorer.extractor.has_model(Domain::Tourism));
    }

    #[test]
    fn shadow_models_reload_like_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let shadow = dir.path().join("shadow-food.json");
        std::fs::write(&shadow, crate::core::model::BUILTIN_FOOD).unwrap();
        let mut models = Models::builtin().unwrap();
        models.shadow_food = Some(Arc::new(
            crate::core::model::Model::load(&shadow, Domain::Food).unwrap(),
        ));
        let mut scorer = Scorer {
            extractor: Arc::new(Extractor::builtin().unwrap()),
            models,
            pseudonyms: Pseudonymiser::new(b"k"),
            decide: Default::default(),
            outcomes: Default::default(),
        };
        let metrics = Metrics::new();
        let mut r = Reloader::new(Watched {
            shadow_food_model: Some(shadow.clone()),
            ..Default::default()
        });
        assert!(!r.check(&mut scorer, &metrics));
        let live = scorer.models.food.file.version.clone();

        let mut v: serde_json::Value =
            serde_json::from_str(crate::core::model::BUILTIN_FOOD).unwrap();
        v["version"] = "2099.2".into();
        crate::core::model::seal(&mut v);
        std::fs::write(&shadow, v.to_string()).unwrap();
        assert!(r.check(&mut scorer, &metrics));
        let version = |s: &Scorer| s.models.shadow_food.as_ref().unwrap().file.version.clone();
        assert_eq!(version(&scorer), "2099.2");
        assert_eq!(
            scorer.models.food.file.version, live,
            "the live model is untouched"
        );
        assert!(metrics.render().contains("version=\"2099.2\""));

        // A tourism model where the food shadow belongs: refused, the shadow keeps serving.
        std::fs::write(&shadow, crate::core::model::BUILTIN_TOURISM).unwrap();
        assert!(!r.check(&mut scorer, &metrics));
        assert_eq!(version(&scorer), "2099.2");
        assert_eq!(
            metrics
                .model_reload_failures
                .with_label_values(&["food"])
                .get(),
            1
        );
    }
}
