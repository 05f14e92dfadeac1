//! `weir build`: turns a step project in Rust, Python, JavaScript or C into a component.
//!
//! A project is a directory; its language is told by what it holds (`Cargo.toml`, `app.py`,
//! `step.js`/`step.ts` or `package.json`, `*.c`). Every language gets the same WIT world and
//! an SDK that matches this host: they are embedded in the `weir` binary and written to the
//! project's `.weir/` directory before each build, so a project needs no copy of the Weir
//! sources. The component lands in `build/<project>.wasm` (a Rust workspace keeps cargo's
//! paths as well). A build is skipped when nothing it reads has changed since the last one.

mod c;
pub mod cases;
mod fingerprint;
mod js;
mod python;
mod rust;
pub mod scaffold;
pub mod sdk_files;
pub mod toolchain;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A language a step can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// Rust, with the `weir-sdk` crate, built by cargo for `wasm32-wasip2`.
    Rust,
    /// Python, with the `weir_step` package, built by componentize-py.
    Python,
    /// JavaScript (or TypeScript), with the `weir-step` module, bundled by esbuild and built by
    /// componentize-js.
    Js,
    /// C, with `weir_step.h`, compiled by clang for `wasm32-wasi` and wrapped as a component.
    C,
}

impl Lang {
    /// Every language, in the order the docs list them.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" | "ts" | "typescript" => Ok(Lang::Js),
            "c" => Ok(Lang::C),
            other => Err(format!(
                "unknown language {other:?}: expected rust, python, js or c"
            )),
        }
    }
}

/// A step project on disk.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory.
    pub dir: PathBuf,
    /// Its language.
    pub lang: Lang,
    /// The component's name: the directory's name.
    pub name: String,
}

impl Project {
    /// Reads the project at `dir`, telling its language from its files unless `lang` is given.
    pub fn open(dir: &Path, lang: Option<Lang>) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let lang = match lang {
            Some(lang) => lang,
            None => detect(&dir)?,
        };
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("step")
            .to_string();
        Ok(Self { dir, lang, name })
    }

    /// Where the component is written.
    pub fn output(&self) -> PathBuf {
        self.dir.join("build").join(format!("{}.wasm", self.name))
    }

    /// Where the SDK, the WIT world and intermediate files go.
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join(".weir")
    }
}

/// Tells a project's language from the files it holds.
fn detect(dir: &Path) -> anyhow::Result<Lang> {
    let has = |name: &str| dir.join(name).is_file();
    let mut found = Vec::new();
    if has("Cargo.toml") {
        found.push((Lang::Rust, "Cargo.toml"));
    }
    if has("app.py") {
        found.push((Lang::Python, "app.py"));
    }
    if let Some(entry) = js::entry(dir) {
        found.push((Lang::Js, entry));
    }
    if !c::sources(dir).is_empty() {
        found.push((Lang::C, "*.c"));
    }
    match found.as_slice() {
        [(lang, _)] => Ok(*lang),
        [] => bail!(
            "{} holds no step project: expected Cargo.toml (Rust), app.py (Python), \
             step.js or step.ts (JavaScript) or *.c files (C); `weir new` makes one",
            dir.display()
        ),
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|(lang, file)| format!("{file} ({lang})"))
                .collect();
            bail!(
                "{} looks like more than one kind of project: {}; pass --lang",
                dir.display(),
                names.join(", ")
            )
        }
    }
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct Built {
    /// The components, `build/<name>.wasm` first.
    pub outputs: Vec<PathBuf>,
    /// False when the last build's output was still current.
    pub rebuilt: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// Builds `project` (unless `force` is false and nothing it reads changed).
pub fn build(project: &Project, force: bool) -> anyhow::Result<Built> {
    let started = Instant::now();
    sdk_files::materialize(&project.work_dir(), project.lang)?;
    std::fs::create_dir_all(project.dir.join("build"))?;
    if project.lang == Lang::Rust {
        // cargo tracks its own inputs.
        let outputs = rust::build(project)?;
        return Ok(Built {
            outputs,
            rebuilt: true,
            elapsed: started.elapsed(),
        });
    }
    let output = project.output();
    let stamp = project.work_dir().join("build.sha256");
    let digest = fingerprint::of_project(project)?;
    if !force
        && output.is_file()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest)
    {
        return Ok(Built {
            outputs: vec![output],
            rebuilt: false,
            elapsed: started.elapsed(),
        });
    }
    // A failed build must not leave the last good component looking current.
    let _ = std::fs::remove_file(&stamp);
    let staging = output.with_extension("wasm.partial");
    match project.lang {
        Lang::Python => python::build(project, &staging)?,
        Lang::Js => js::build(project, &staging)?,
        Lang::C => c::build(project, &staging)?,
        Lang::Rust => unreachable!("handled above"),
    }
    std::fs::rename(&staging, &output)
        .with_context(|| format!("cannot move the component to {}", output.display()))?;
    std::fs::write(&stamp, &digest)?;
    Ok(Built {
        outputs: vec![output],
        rebuilt: true,
        elapsed: started.elapsed(),
    })
}

/// Directories a build never reads: outputs, dependencies and tool state.
pub(crate) fn is_ignored_dir(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "build" | "target" | "node_modules" | "__pycache__")
}

/// The project that builds the component at `path`, if one can be found: the parent of a
/// `build/` directory holding it, else the cargo project whose `target/` holds it.
pub fn project_for_component(path: &Path) -> Option<Project> {
    let parent = path.parent()?;
    if parent.file_name().is_some_and(|n| n == "build")
        && let Some(project) = parent
            .parent()
            .and_then(|dir| Project::open(dir, None).ok())
    {
        return Some(project);
    }
    // cargo's layout: <project>/target/<triple>/release/<crate>.wasm.
    parent
        .ancestors()
        .filter(|dir| dir.file_name().is_some_and(|n| n == "target"))
        .filter_map(Path::parent)
        .find(|dir| dir.join("Cargo.toml").is_file())
        .and_then(|dir| Project::open(dir, Some(Lang::Rust)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_told_from_the_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mixed");
        std::fs::create_dir_all(&dir).unwrap();
        let err = Project::open(&dir, None).unwrap_err().to_string();
        assert!(err.contains("holds no step project"), "{err}");
        std::fs::write(dir.join("app.py"), "").unwrap();
        assert_eq!(Project::open(&dir, None).unwrap().lang, Lang::Python);
        std::fs::write(dir.join("step.c"), "").unwrap();
        let err = Project::open(&dir, None).unwrap_err().to_string();
        assert!(
            err.contains("app.py (python), *.c (c); pass --lang"),
            "{err}"
        );
        assert_eq!(Project::open(&dir, Some(Lang::C)).unwrap().lang, Lang::C);
        assert_eq!("TypeScript".parse::<Lang>(), Ok(Lang::Js));
    }

    #[test]
    fn components_lead_back_to_their_projects() {
        let root = tempfile::tempdir().unwrap();
        let c = root.path().join("dedupe");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("step.c"), "").unwrap();
        let found = project_for_component(&c.join("build/dedupe.wasm")).unwrap();
        assert_eq!((found.lang, found.name.as_str()), (Lang::C, "dedupe"));

        let cargo = root.path().join("steps");
        std::fs::create_dir_all(&cargo).unwrap();
        std::fs::write(cargo.join("Cargo.toml"), "[workspace]\n").unwrap();
        let wasm = cargo.join("target/wasm32-wasip2/release/echo.wasm");
        assert_eq!(project_for_component(&wasm).unwrap().lang, Lang::Rust);
        // A component merely lying inside a cargo project was not built by it.
        assert!(project_for_component(&cargo.join("vendor/prebuilt.wasm")).is_none());
    }
}
