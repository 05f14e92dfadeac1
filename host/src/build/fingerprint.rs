//! The digest that decides whether a project must be built again: every source file the
//! build reads (outside outputs and dependencies), the embedded SDK and WIT world, and the
//! pinned toolchain versions.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Project, is_ignored_dir, sdk_files, toolchain};

pub(super) fn of_project(project: &Project) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(project.lang.name());
    for pin in [
        toolchain::COMPONENTIZE_PY,
        toolchain::COMPONENTIZE_JS,
        toolchain::ESBUILD,
        toolchain::CLANG_MAJOR,
    ] {
        hasher.update(pin);
    }
    for (path, contents) in sdk_files::files(project.lang) {
        hasher.update(path);
        hasher.update(contents);
    }
    let mut files = Vec::new();
    collect(&project.dir, &project.dir, &mut files)?;
    files.sort();
    for relative in files {
        let bytes = std::fs::read(project.dir.join(&relative))?;
        hasher.update(relative.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            // Test cases do not change the component.
            let skipped = is_ignored_dir(&name) || (dir == root && name == "tests");
            if !skipped {
                collect(root, &entry.path(), files)?;
            }
        } else if kind.is_file() {
            let relative = entry
                .path()
                .strip_prefix(root)?
                .to_string_lossy()
                .into_owned();
            files.push(relative);
        }
    }
    Ok(())
}
