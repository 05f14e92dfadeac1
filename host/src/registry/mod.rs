//! Registering workflows and their plugins, and loading a registered version back exactly
//! as it was pinned.
//!
//! Registering a workflow file loads every plugin it names, stores each component's bytes in
//! the store under its sha256, and records the workflow source with the digest each step is
//! pinned to. A run is submitted with those digests and later loads those exact bytes from
//! the store, even if the files on disk have changed or gone, or the version was repinned.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::engine::Host;
use crate::plugin::Plugin;
use crate::store::{Registered, Store, WorkflowVersion};
use crate::workflow::{self, Diagnostic, Diagnostics, PluginRef, Workflow};

/// The prefix of a prompt template's pin (`prompt:<id>`), beside the steps' plugin pins.
pub const PROMPT_PIN: &str = "prompt:";

/// A workflow version ready to run: its definition and the plugins it is pinned to.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The resolved workflow.
    pub workflow: Arc<Workflow>,
    /// The plugin of each step.
    pub plugins: HashMap<String, Plugin>,
    /// The digest of each step's plugin.
    pub pins: BTreeMap<String, String>,
}

/// Why a workflow could not be registered or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file has problems; all of them are listed.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Checks a workflow file completely, plugins included, without registering anything.
pub async fn check_file(
    host: &Host,
    store: &dyn Store,
    path: &Path,
) -> Result<Loaded, RegistryError> {
    let workflow = workflow::load_file(path).map_err(RegistryError::Invalid)?;
    let file = path.display().to_string();
    let (plugins, mut pins) = load_plugins(host, store, &workflow, &file).await?;
    // Prompt templates are pinned like plugins: by the sha256 of their text.
    for prompt in workflow.prompts.values() {
        pins.insert(format!("{PROMPT_PIN}{}", prompt.id), prompt.hash.clone());
    }
    Ok(Loaded {
        workflow: Arc::new(workflow),
        plugins,
        pins,
    })
}

/// Checks and registers a workflow file (idempotent for unchanged content).
pub async fn register_file(
    host: &Host,
    store: &dyn Store,
    path: &Path,
) -> Result<(Loaded, Registered), RegistryError> {
    let loaded = check_file(host, store, path).await?;
    for plugin in loaded.plugins.values() {
        store_plugin(store, plugin).await?;
    }
    for prompt in loaded.workflow.prompts.values() {
        store
            .put_plugin(
                &prompt.hash,
                &format!("{PROMPT_PIN}{}", prompt.id),
                &loaded.workflow.version.to_string(),
                prompt.text.as_bytes(),
            )
            .await?;
    }
    let wf = &loaded.workflow;
    let version = WorkflowVersion {
        name: wf.name.clone(),
        version: wf.version.to_string(),
        // The pins are part of what a version is: the same text with other plugin bytes is a
        // different workflow.
        digest: pinned_digest(&wf.source, &loaded.pins),
        source: wf.source.clone(),
        base_dir: wf.base_dir.display().to_string(),
        pins: loaded.pins.clone(),
        registered_ms: 0,
    };
    let registered = store.register_workflow(&version).await?;
    Ok((loaded, registered))
}

/// Stores a loaded plugin's bytes under its digest, with the name and version it reports.
pub async fn store_plugin(store: &dyn Store, plugin: &Plugin) -> anyhow::Result<()> {
    store
        .put_plugin(
            plugin.digest(),
            &plugin.meta().name,
            &plugin.meta().version,
            plugin.bytes(),
        )
        .await
}

fn pinned_digest(source: &str, pins: &BTreeMap<String, String>) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(source.as_bytes());
    for (step, digest) in pins {
        hasher.update(format!("\n{step}={digest}").as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Loads a registered version (the highest when `version` is `None`) with its pinned plugins.
pub async fn load_registered(
    host: &Host,
    store: &dyn Store,
    name: &str,
    version: Option<&str>,
) -> Result<Loaded, RegistryError> {
    let Some(stored) = store.get_workflow(name, version).await? else {
        let what = version.map_or_else(|| name.to_string(), |v| format!("{name}@{v}"));
        let known: Vec<String> = store
            .list_workflows()
            .await?
            .into_iter()
            .map(|w| format!("{}@{}", w.name, w.version))
            .collect();
        let hint = if known.is_empty() {
            "none is registered yet: run a workflow file once to register it".to_string()
        } else {
            format!("registered: {}", known.join(", "))
        };
        return Err(RegistryError::Store(anyhow::anyhow!(
            "no workflow {what} is registered ({hint})"
        )));
    };
    let label = format!("{}@{} (registered)", stored.name, stored.version);
    let workflow = definition(store, &stored).await?;
    let mut plugins = HashMap::new();
    for step in &workflow.steps {
        let digest = stored
            .pins
            .get(&step.id)
            .ok_or_else(|| anyhow::anyhow!("{label}: step {} has no pinned plugin", step.id))?;
        let plugin = load_plugin(host, store, digest, &format!("{label} step {}", step.id)).await?;
        plugins.insert(step.id.clone(), plugin);
        if step.shadow.is_some() {
            let pin = workflow::shadow::pin(&step.id);
            let digest = stored.pins.get(&pin).ok_or_else(|| {
                anyhow::anyhow!("{label}: step {}'s shadow has no pinned plugin", step.id)
            })?;
            let plugin = load_plugin(host, store, digest, &format!("{label} {pin}")).await?;
            plugins.insert(pin, plugin);
        }
    }
    Ok(Loaded {
        workflow: Arc::new(workflow),
        plugins,
        pins: stored.pins,
    })
}

/// The resolved definition of a registered version, without loading its plugins (a run
/// loads the plugins it was pinned to, by digest).
pub async fn load_definition(
    store: &dyn Store,
    name: &str,
    version: &str,
) -> Result<Workflow, RegistryError> {
    let stored = store
        .get_workflow(name, Some(version))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no workflow {name}@{version} is registered"))?;
    definition(store, &stored).await
}

/// The definition as registered: its source, with its prompt templates as pinned (not as
/// their files are now).
async fn definition(
    store: &dyn Store,
    stored: &WorkflowVersion,
) -> Result<Workflow, RegistryError> {
    let label = format!("{}@{} (registered)", stored.name, stored.version);
    let mut prompts = BTreeMap::new();
    for (pin, digest) in &stored.pins {
        if let Some(id) = pin.strip_prefix(PROMPT_PIN) {
            let bytes = store.get_plugin(digest).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{label}: prompt `{id}` (sha256:{digest}) is missing from the store"
                )
            })?;
            prompts.insert(id.to_string(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    workflow::from_source_pinned(
        &label,
        stored.source.clone(),
        Path::new(&stored.base_dir),
        Some(&prompts),
    )
    .map_err(RegistryError::Invalid)
}

/// Loads a plugin from the store by digest.
pub async fn load_plugin(
    host: &Host,
    store: &dyn Store,
    digest: &str,
    origin: &str,
) -> anyhow::Result<Plugin> {
    let bytes = store.get_plugin(digest).await?.ok_or_else(|| {
        anyhow::anyhow!("{origin}: plugin sha256:{digest} is missing from the store")
    })?;
    Ok(host
        .load_plugin_bytes(bytes, format!("{origin} (sha256:{digest})"))
        .await?)
}

async fn load_plugins(
    host: &Host,
    store: &dyn Store,
    workflow: &Workflow,
    file: &str,
) -> Result<(HashMap<String, Plugin>, BTreeMap<String, String>), RegistryError> {
    let mut plugins = HashMap::new();
    let mut pins = BTreeMap::new();
    let mut problems = Vec::new();
    // Each step's plugin, and each shadow's candidate beside it (pinned as `shadow:<step>`).
    let mut wanted: Vec<(String, PluginRef, std::ops::Range<usize>, String)> = Vec::new();
    for step in &workflow.steps {
        wanted.push((
            step.id.clone(),
            step.plugin.clone(),
            step.plugin_span.clone(),
            step.id.clone(),
        ));
        if let Some(s) = &step.shadow {
            wanted.push((
                workflow::shadow::pin(&step.id),
                s.candidate.clone(),
                s.candidate_span.clone(),
                format!("{}'s shadow", step.id),
            ));
        }
    }
    for (key, plugin_ref, span, label) in wanted {
        let loaded = match &plugin_ref {
            PluginRef::Path(path) => host.load_plugin_file(path).await.map_err(|e| e.to_string()),
            PluginRef::Registry { name, version } => {
                match store.find_plugin(name, version).await? {
                    None => Err(format!("no plugin {name}@{version} is registered")),
                    Some(digest) => match store.get_plugin(&digest).await? {
                        None => Err(format!(
                            "plugin {name}@{version} (sha256:{digest}) is missing from the store"
                        )),
                        Some(bytes) => host
                            .load_plugin_bytes(bytes, format!("{name}@{version}"))
                            .await
                            .map_err(|e| e.to_string()),
                    },
                }
            }
        };
        match loaded {
            Ok(plugin) => {
                pins.insert(key.clone(), plugin.digest().to_string());
                plugins.insert(key, plugin);
            }
            Err(message) => problems.push(Diagnostic::at(span.clone(), format!("step `{label}`: {message}")).help("build the plugin (it must be a component implementing weir:step) or fix the path; relative paths start at the workflow file")),
        }
    }
    if !problems.is_empty() {
        return Err(RegistryError::Invalid(Diagnostics {
            file: file.to_string(),
            source: workflow.source.clone(),
            items: problems,
        }));
    }
    Ok((plugins, pins))
}
