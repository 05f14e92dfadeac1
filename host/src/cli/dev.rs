//! `weir dev`: the inner loop. Builds every step project a workflow uses, runs the workflow
//! on a sample input, then watches the projects and the workflow and, on every save,
//! rebuilds what changed and runs again: a changed component is a new plugin hash, so the
//! run registers a new workflow version and loads the new code (no restart).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use notify::RecursiveMode;

use super::build::build_project;
use super::data::DataArgs;
use crate::Host;
use crate::build::{Project, is_ignored_dir, project_for_component};
use crate::watch::settle;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The workflow file.
    workflow: PathBuf,
    /// The sample input: a JSON file, `-` for stdin, or JSON text.
    #[arg(long, short)]
    input: String,
    /// Build and run once, then stop (no watching).
    #[arg(long)]
    once: bool,
}

/// What to watch: directories (recursively, outside build outputs, dependencies and dot
/// directories) and single files (the workflow and its prompt templates; the directory
/// around them may hold the journal, which changes on every run).
#[derive(Debug, Default)]
pub(crate) struct Watched {
    pub(crate) dirs: Vec<PathBuf>,
    pub(crate) files: Vec<PathBuf>,
}

impl Watched {
    fn relevant(&self, path: &Path) -> bool {
        if self.files.iter().any(|f| f == path) {
            return true;
        }
        // Only what lies below a watched directory counts: the directories above it may
        // have any name (a temporary directory starts with a dot).
        self.dirs
            .iter()
            .find_map(|root| path.strip_prefix(root).ok())
            .is_some_and(|relative| {
                !relative.components().any(|c| {
                    c.as_os_str()
                        .to_str()
                        .is_some_and(|name| is_ignored_dir(name) || name.ends_with(".partial"))
                })
            })
    }
}

/// Changed paths among `watched`.
pub(crate) fn watch(watched: Watched) -> anyhow::Result<crate::watch::Watch> {
    let canonical = |p: &PathBuf| p.canonicalize().unwrap_or_else(|_| p.clone());
    let watched = Watched {
        dirs: watched.dirs.iter().map(canonical).collect(),
        files: watched.files.iter().map(canonical).collect(),
    };
    let mut targets: Vec<(PathBuf, RecursiveMode)> = watched
        .dirs
        .iter()
        .map(|d| (d.clone(), RecursiveMode::Recursive))
        .collect();
    for file in &watched.files {
        if let Some(parent) = file.parent()
            && !watched.dirs.iter().any(|d| parent.starts_with(d))
            && !targets.iter().any(|(p, _)| p == parent)
        {
            targets.push((parent.to_path_buf(), RecursiveMode::NonRecursive));
        }
    }
    crate::watch::watch(&targets, move |path| watched.relevant(path))
}

/// The step projects behind the workflow's plugin files. Read from the TOML directly, not
/// through the workflow checker: that refuses a plugin file that does not exist yet, and
/// building it is the point.
fn projects(workflow: &Path) -> anyhow::Result<Vec<Project>> {
    let text = std::fs::read_to_string(workflow)
        .with_context(|| format!("cannot read {}", workflow.display()))?;
    let doc: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{} is not valid TOML", workflow.display()))?;
    let base = workflow.parent().unwrap_or(Path::new("."));
    let steps = doc
        .get("steps")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    let mut projects: Vec<Project> = Vec::new();
    for step in &steps {
        let Some(plugin) = step.get("plugin").and_then(|p| p.as_str()) else {
            continue;
        };
        let id = step.get("id").and_then(|i| i.as_str()).unwrap_or("?");
        if !plugin.ends_with(".wasm") {
            continue; // a registered plugin, `name@version`
        }
        let path = base.join(plugin);
        match project_for_component(&path) {
            Some(project) if !projects.iter().any(|p| p.dir == project.dir) => {
                projects.push(project);
            }
            Some(_) => {}
            None => eprintln!(
                "note: step {id} uses {}, which no project here builds; it is not watched",
                path.display()
            ),
        }
    }
    Ok(projects)
}

/// The workflow file and the prompt templates it names.
fn watched_files(workflow: &Path) -> Vec<PathBuf> {
    let mut files = vec![workflow.to_path_buf()];
    let base = workflow.parent().unwrap_or(Path::new("."));
    if let Ok(text) = std::fs::read_to_string(workflow)
        && let Ok(doc) = toml::from_str::<toml::Table>(&text)
        && let Some(prompts) = doc.get("prompts").and_then(|p| p.as_table())
    {
        files.extend(
            prompts
                .values()
                .filter_map(|v| v.as_str())
                .map(|f| base.join(f)),
        );
    }
    files
}

async fn build_all(projects: &[Project]) -> bool {
    let mut ok = true;
    for project in projects {
        match build_project(project, false).await {
            Ok(built) if built.rebuilt => eprintln!(
                "built {} ({}, {:.1?})",
                project.dir.display(),
                project.lang,
                built.elapsed
            ),
            Ok(_) => {}
            Err(e) => {
                ok = false;
                eprintln!("error: building {}: {e:#}", project.dir.display());
            }
        }
    }
    ok
}

async fn run_once(host: &Host, data: &DataArgs, args: &Args) -> anyhow::Result<ExitCode> {
    let workflow = args.workflow.to_string_lossy().into_owned();
    super::run::execute(
        host,
        data,
        super::run::Args::new(workflow, args.input.clone()),
    )
    .await
}

pub(crate) async fn execute(host: &Host, data: &DataArgs, args: Args) -> anyhow::Result<ExitCode> {
    let mut found = projects(&args.workflow)?;
    build_all(&found).await;
    let mut code = run_once(host, data, &args).await?;
    if args.once {
        return Ok(code);
    }
    let watched = Watched {
        dirs: found.iter().map(|p| p.dir.clone()).collect(),
        files: watched_files(&args.workflow),
    };
    let names: Vec<String> = watched
        .dirs
        .iter()
        .chain(&watched.files)
        .map(|p| p.display().to_string())
        .collect();
    let mut watch = watch(watched)?;
    eprintln!("\nwatching {} (Ctrl-C to stop)", names.join(", "));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(code),
            changed = watch.changes.recv() => {
                let Some(path) = changed else { return Ok(code) };
                let burst = settle(path, &mut watch.changes, Duration::from_millis(100)).await;
                let names: Vec<String> = burst.iter().map(|p| p.display().to_string()).collect();
                eprintln!("\n== changed: {}", names.join(", "));
                match projects(&args.workflow) {
                    Ok(now) => found = now,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        continue;
                    }
                }
                if build_all(&found).await {
                    code = run_once(host, data, &args).await.unwrap_or_else(|e| {
                        eprintln!("error: {e:#}");
                        ExitCode::from(super::EXIT_ERROR)
                    });
                }
            }
        }
    }
}
