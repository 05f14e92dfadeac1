//! The workflows and plugins a server offers, hot-loaded from its directories.
//!
//! A reload reads every `*.wasm` in the plugins directory and every `*.toml` in the workflows
//! directory. A new or changed plugin is hashed, compiled (off the request path: reloads run
//! in their own task), and stored under its digest; a workflow file is registered, which pins
//! it to the bytes its plugins have now (repinning its version when only plugin bytes
//! changed). The new state is swapped in at once, so a submission sees either the old or the
//! new version, never a mix; runs already submitted keep the digests they were pinned to.
//! A file that fails to load is rejected with a log line and an entry in [`Rejected`], and
//! whatever it replaced stays active.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::Host;
use crate::metrics::{RELOAD_FAILURES, RELOADS};
use crate::plugin::Plugin;
use crate::registry::{self, Loaded, RegistryError};
use crate::store::{Registered, Store, now_ms};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Not a component implementing `weir:step`.
    #[error(transparent)]
    Invalid(crate::plugin::PluginError),
    /// Another component is already registered under its `name@version`.
    #[error("{0}")]
    Taken(String),
    /// The store failed: nothing was stored.
    #[error(transparent)]
    Store(anyhow::Error),
}

/// Why a submission found no workflow to start.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No such workflow, or it cannot be loaded.
    #[error(transparent)]
    Registry(RegistryError),
    /// The version is registered but no longer offered: its file left the workflows
    /// directory.
    #[error("{0}")]
    Retired(String),
}

/// A file whose latest version failed to load.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejected {
    /// The file.
    pub file: String,
    /// Why, in full.
    pub error: String,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
}

#[derive(Default)]
struct State {
    /// The active version of each workflow file.
    workflows: BTreeMap<PathBuf, Arc<Loaded>>,
    /// The active plugin of each plugin file.
    dir_plugins: BTreeMap<PathBuf, Plugin>,
    /// Plugins uploaded through the API, by digest.
    uploaded: BTreeMap<String, Plugin>,
    rejected: BTreeMap<PathBuf, Rejected>,
    /// Versions (`name@version`) whose file left the workflows directory, with when.
    retired: BTreeMap<String, i64>,
    loaded_once: bool,
}

/// What a server offers.
pub struct Catalog {
    host: Host,
    store: Arc<dyn Store>,
    workflows_dir: Option<PathBuf>,
    plugins_dir: Option<PathBuf>,
    state: RwLock<State>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Catalog {
    /// A catalog over the given directories (either may be absent).
    pub fn new(
        host: Host,
        store: Arc<dyn Store>,
        workflows_dir: Option<PathBuf>,
        plugins_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            host,
            store,
            workflows_dir,
            plugins_dir,
            state: RwLock::default(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The directories to watch.
    pub fn dirs(&self) -> Vec<PathBuf> {
        [&self.workflows_dir, &self.plugins_dir]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Whether the first load has finished (every plugin compiled).
    pub fn ready(&self) -> bool {
        self.read().loaded_once
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().expect("catalog poisoned")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().expect("catalog poisoned")
    }

    /// Reloads both directories; see the module docs.
    pub async fn reload(&self) {
        let _one = self.reloading.lock().await;
        if let Some(dir) = &self.plugins_dir {
            self.reload_plugins(dir).await;
        }
        if let Some(dir) = &self.workflows_dir {
            self.reload_workflows(dir).await;
        }
        self.write().loaded_once = true;
    }

    async fn reload_plugins(&self, dir: &Path) {
        let files = files_with_extension(dir, "wasm");
        let present: Vec<PathBuf> = files.clone();
        for file in files {
            let bytes = match std::fs::read(&file) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.reject(&file, "plugin", format!("cannot be read: {e}"));
                    continue;
                }
            };
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            if self
                .read()
                .dir_plugins
                .get(&file)
                .is_some_and(|p| p.digest() == digest)
            {
                continue;
            }
            match self.store_plugin(bytes, file.display().to_string()).await {
                Ok(plugin) => {
                    tracing::info!(file = %file.display(), plugin = %format!("{}@{}", plugin.meta().name, plugin.meta().version), digest = %plugin.digest(), "plugin loaded");
                    metrics::counter!(RELOADS, "kind" => "plugin").increment(1);
                    let mut state = self.write();
                    state.rejected.remove(&file);
                    state.dir_plugins.insert(file, plugin);
                }
                Err(e) => self.reject(&file, "plugin", format!("{e:#}")),
            }
        }
        self.write()
            .dir_plugins
            .retain(|file, _| present.contains(file));
    }

    async fn reload_workflows(&self, dir: &Path) {
        let files = files_with_extension(dir, "toml");
        for file in &files {
            match registry::register_file(&self.host, self.store.as_ref(), file).await {
                Ok((loaded, registered)) => {
                    let id = loaded.workflow.id();
                    let mut state = self.write();
                    let unchanged = state
                        .workflows
                        .get(file)
                        .is_some_and(|old| old.workflow.id() == id && old.pins == loaded.pins);
                    if !unchanged {
                        let what = match registered {
                            Registered::New => "registered",
                            Registered::Existing => "active",
                            Registered::Repinned => "repinned to new plugin bytes",
                        };
                        tracing::info!(file = %file.display(), workflow = %id, "workflow {what}");
                        metrics::counter!(RELOADS, "kind" => "workflow").increment(1);
                        state.workflows.insert(file.clone(), Arc::new(loaded));
                    }
                    state.retired.remove(&id);
                    state.rejected.remove(file);
                }
                Err(RegistryError::Invalid(diagnostics)) => {
                    self.reject(file, "workflow", diagnostics.to_string());
                }
                Err(RegistryError::Store(e)) => self.reject(file, "workflow", format!("{e:#}")),
            }
        }
        let mut state = self.write();
        let gone: Vec<String> = state
            .workflows
            .iter()
            .filter(|(file, _)| !files.contains(file))
            .map(|(_, loaded)| loaded.workflow.id())
            .collect();
        state.workflows.retain(|file, _| files.contains(file));
        for id in gone {
            let still_offered = state.workflows.values().any(|l| l.workflow.id() == id);
            if !still_offered {
                tracing::info!(workflow = %id, "workflow retired: its file left the workflows directory; runs already started finish");
                state.retired.insert(id, now_ms());
            }
        }
        state.rejected.retain(|file, _| file.exists());
    }

    fn reject(&self, file: &Path, kind: &'static str, error: String) {
        tracing::error!(file = %file.display(), "{kind} rejected, the previous version stays active: {error}");
        metrics::counter!(RELOAD_FAILURES, "kind" => kind).increment(1);
        self.write().rejected.insert(
            file.to_path_buf(),
            Rejected {
                file: file.display().to_string(),
                error,
                at_ms: now_ms(),
            },
        );
    }

    /// Loads, checks and stores a plugin.
    async fn store_plugin(&self, bytes: Vec<u8>, origin: String) -> anyhow::Result<Plugin> {
        let plugin = self.host.load_plugin_bytes(bytes, origin).await?;
        if let Some(taken) = self.name_taken(&plugin).await? {
            anyhow::bail!("{taken}");
        }
        registry::store_plugin(self.store.as_ref(), &plugin).await?;
        Ok(plugin)
    }

    /// Why `plugin` may not be registered: another component already holds its
    /// `name@version`, which workflows use to name exactly one component.
    async fn name_taken(&self, plugin: &Plugin) -> anyhow::Result<Option<String>> {
        let meta = plugin.meta();
        let existing = self.store.find_plugin(&meta.name, &meta.version).await?;
        Ok(existing.filter(|digest| digest != plugin.digest()).map(|digest| {
            format!(
                "plugin {}@{} is already registered as another component (sha256:{digest}); this one is sha256:{}: a changed component needs a new version in its describe()",
                meta.name,
                meta.version,
                plugin.digest()
            )
        }))
    }

    /// Stores an uploaded plugin, then reloads the workflows so the ones that name it by
    /// `name@version` take it.
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<Plugin, UploadError> {
        let plugin = self
            .host
            .load_plugin_bytes(bytes, "the uploaded component".to_string())
            .await
            .map_err(UploadError::Invalid)?;
        if let Some(taken) = self.name_taken(&plugin).await.map_err(UploadError::Store)? {
            return Err(UploadError::Taken(taken));
        }
        registry::store_plugin(self.store.as_ref(), &plugin)
            .await
            .map_err(UploadError::Store)?;
        self.write()
            .uploaded
            .insert(plugin.digest().to_string(), plugin.clone());
        self.reload().await;
        Ok(plugin)
    }

    /// The active version of `name` (the highest active one when `version` is `None`). With
    /// a workflows directory, the directory is the offer: a registered version no file in it
    /// defines is retired, and refused. Without one, any registered version is offered.
    pub async fn lookup(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<Loaded>, LookupError> {
        let active = {
            let state = self.read();
            state
                .workflows
                .values()
                .filter(|l| l.workflow.name == name)
                .filter(|l| version.is_none_or(|v| l.workflow.version.to_string() == v))
                .max_by(|a, b| a.workflow.version.cmp(&b.workflow.version))
                .cloned()
        };
        if let Some(found) = active {
            return Ok(found);
        }
        let registered = registry::load_registered(&self.host, self.store.as_ref(), name, version)
            .await
            .map_err(LookupError::Registry)?;
        if self.workflows_dir.is_none() {
            return Ok(Arc::new(registered));
        }
        let id = registered.workflow.id();
        let when = self.read().retired.get(&id).map(|at_ms| {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(*at_ms).unwrap_or(0));
            format!(" at {}", humantime::format_rfc3339_seconds(at))
        });
        Err(LookupError::Retired(format!(
            "workflow {id} is retired: no file in the workflows directory defines it (its file was removed{}); runs already started finish, and new runs start again once a file defines it",
            when.unwrap_or_default()
        )))
    }

    /// The active workflow versions.
    pub fn workflows(&self) -> Vec<Arc<Loaded>> {
        let mut all: Vec<_> = self.read().workflows.values().cloned().collect();
        all.sort_by(|a, b| {
            (&a.workflow.name, &a.workflow.version).cmp(&(&b.workflow.name, &b.workflow.version))
        });
        all
    }

    /// Files whose latest version was rejected.
    pub fn rejected(&self) -> Vec<Rejected> {
        self.read().rejected.values().cloned().collect()
    }

    /// Every plugin on offer: from the directory, uploaded, and used by active workflows.
    pub fn plugins(&self) -> Vec<Plugin> {
        let state = self.read();
        let mut by_digest: BTreeMap<String, Plugin> = BTreeMap::new();
        let all = state
            .dir_plugins
            .values()
            .chain(state.uploaded.values())
            .chain(state.workflows.values().flat_map(|l| l.plugins.values()));
        for plugin in all {
            by_digest
                .entry(plugin.digest().to_string())
                .or_insert_with(|| plugin.clone());
        }
        by_digest.into_values().collect()
    }
}

/// Files in `dir` ending in `.ext`, sorted; a missing directory has none.
fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}
