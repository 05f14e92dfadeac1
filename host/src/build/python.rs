//! Python steps: componentize-py bundles CPython, the standard library, the `weir_step`
//! SDK, the project's modules and its pure-Python requirements into one component.
//! The step module is `app.py`; the SDK's `WitWorld` class is the world's export.

use std::path::Path;
use std::process::Command;

use super::Project;
use super::toolchain::{self, arg};

/// The module componentize-py starts from: it imports the step (registering it) and hands
/// the world's exports to the SDK.
///
/// componentize-py snapshots the interpreter after this module ran, and only what was
/// imported by then is in the component: a module first imported at run time is not found.
/// So the standard library modules that code (the standard library's own included) often
/// imports lazily, inside a function, are imported here.
const ENTRY: &str = r#"# Written by weir build.
import importlib

for _name in (
    "heapq", "bisect", "copy", "re", "json", "datetime", "decimal", "fractions", "statistics",
    "random", "math", "string", "textwrap", "unicodedata", "base64", "binascii", "hashlib",
    "hmac", "uuid", "urllib.parse", "html", "html.parser", "difflib", "csv", "io", "struct",
    "zlib", "itertools", "functools", "operator", "collections.abc", "dataclasses", "enum",
    "typing", "traceback", "warnings", "locale", "calendar", "time", "pprint", "reprlib",
    "encodings.idna", "encodings.utf_8", "encodings.latin_1", "encodings.ascii",
):
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

import app  # noqa: E402,F401  (registers the step)
from weir_step._step import WitWorld  # noqa: E402,F401
"#;

pub(super) fn build(project: &Project, output: &Path) -> anyhow::Result<()> {
    let componentize = toolchain::componentize_py()?;
    let work = project.work_dir();
    let entry_dir = work.join("entry");
    std::fs::create_dir_all(&entry_dir)?;
    std::fs::write(entry_dir.join("_weir_entry.py"), ENTRY)?;

    let mut cmd = Command::new(&componentize);
    cmd.current_dir(&project.dir)
        .args(["-d", arg(&work.join("wit"))?, "-w", "step", "componentize"])
        .arg("_weir_entry")
        .args(["-p", arg(&entry_dir)?, "-p", arg(&project.dir)?])
        .args(["-p", arg(&work.join("sdk/python"))?]);

    let requirements = project.dir.join("requirements.txt");
    if requirements.is_file() {
        let site = work.join("site");
        let pip = componentize.with_file_name("pip");
        let _ = std::fs::remove_dir_all(&site);
        toolchain::run(
            Command::new(if pip.is_file() {
                pip.as_os_str()
            } else {
                "pip3".as_ref()
            })
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&site)
            .arg("-r")
            .arg(&requirements),
            "installing requirements.txt (pure-Python packages only)",
        )?;
        cmd.args(["-p", arg(&site)?]);
    }
    cmd.args(["-o", arg(output)?]);
    toolchain::run(&mut cmd, "componentize-py")
}
