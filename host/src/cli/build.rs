//! `weir build`, `weir new` and `weir test`: step projects in Rust, Python, JavaScript or C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::EXIT_STEP_FAILED;
use crate::Host;
use crate::build::{self, Lang, Project, cases, scaffold};

#[derive(Debug, clap::Args)]
pub(crate) struct BuildArgs {
    /// The step project [default: the current directory].
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The project's language, when its files do not tell (rust, python, js, c).
    #[arg(long)]
    lang: Option<Lang>,
    /// Build even when nothing changed since the last build.
    #[arg(long)]
    force: bool,
    /// Keep watching the project and build again on every save.
    #[arg(long)]
    watch: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The directory to create; its name is the step's name (e.g. `redact-pii`).
    dir: PathBuf,
    /// The language: rust, python, js or c.
    #[arg(long, default_value = "rust")]
    lang: Lang,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// The step project [default: the current directory].
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The project's language, when its files do not tell.
    #[arg(long)]
    lang: Option<Lang>,
}

/// Builds off the async runtime: toolchains take seconds and block.
pub(crate) async fn build_project(project: &Project, force: bool) -> anyhow::Result<build::Built> {
    let project = project.clone();
    tokio::task::spawn_blocking(move || build::build(&project, force)).await?
}

fn report(built: &build::Built, project: &Project) {
    let verb = if built.rebuilt {
        "built"
    } else {
        "up to date:"
    };
    eprintln!(
        "{verb} {} ({}, {:.1?})",
        built.outputs[0].display(),
        project.lang,
        built.elapsed
    );
}

pub(crate) async fn execute_build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let project = Project::open(&args.dir, args.lang)?;
    let built = build_project(&project, args.force).await;
    match &built {
        Ok(built) => report(built, &project),
        Err(e) if args.watch => eprintln!("error: {e:#}"),
        Err(_) => return built.map(|_| ExitCode::SUCCESS),
    }
    if !args.watch {
        return Ok(ExitCode::SUCCESS);
    }
    let mut watch = super::dev::watch(super::dev::Watched {
        dirs: vec![project.dir.clone()],
        files: Vec::new(),
    })?;
    eprintln!("watching {} (Ctrl-C to stop)", project.dir.display());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            changed = watch.changes.recv() => {
                let Some(path) = changed else {
                    return Ok(ExitCode::SUCCESS);
                };
                crate::watch::settle(path, &mut watch.changes, Duration::from_millis(100)).await;
                match build_project(&project, false).await {
                    Ok(built) => report(&built, &project),
                    Err(e) => eprintln!("error: {e:#}"),
                }
            }
        }
    }
}

pub(crate) fn execute_new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let files = scaffold::create(&args.dir, args.lang)?;
    eprintln!(
        "created a {} step in {} ({} files)",
        args.lang,
        args.dir.display(),
        files.len()
    );
    eprintln!("next: weir test {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn execute_test(host: &Host, args: TestArgs) -> anyhow::Result<ExitCode> {
    let project = Project::open(&args.dir, args.lang)?;
    let built = build_project(&project, false).await?;
    report(&built, &project);
    let files = cases::case_files(&project.dir)?;
    if files.is_empty() {
        anyhow::bail!(
            "{} has no test cases: add tests/*.json (see `weir new` for examples)",
            project.dir.display()
        );
    }
    let plugin = host.load_plugin_file(&built.outputs[0]).await?;
    let mut failed = 0;
    for file in &files {
        let result = cases::run_case(host, &plugin, file).await?;
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        match &result.mismatch {
            None => outln!("ok     {name}"),
            Some(why) => {
                failed += 1;
                outln!("FAILED {name}: {why}");
            }
        }
    }
    outln!(
        "{} passed, {failed} failed ({} cases)",
        files.len() - failed,
        files.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_STEP_FAILED)
    })
}
