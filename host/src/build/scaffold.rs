//! `weir new`: a step project that builds and passes its own test cases out of the box.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::{Lang, sdk_files};

const COMMON: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../../sdk/templates/common/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/templates/common/gitignore"),
    ),
    (
        "tests/hello.json",
        include_str!("../../../sdk/templates/common/tests/hello.json"),
    ),
    (
        "tests/suffix.json",
        include_str!("../../../sdk/templates/common/tests/suffix.json"),
    ),
    (
        "tests/empty.json",
        include_str!("../../../sdk/templates/common/tests/empty.json"),
    ),
];

fn sources(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Rust => &[
            (
                "Cargo.toml",
                include_str!("../../../sdk/templates/rust/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../../sdk/templates/rust/src/lib.rs"),
            ),
        ],
        Lang::Python => &[(
            "app.py",
            include_str!("../../../sdk/templates/python/app.py"),
        )],
        Lang::Js => &[
            ("step.js", include_str!("../../../sdk/templates/js/step.js")),
            (
                "jsconfig.json",
                include_str!("../../../sdk/templates/js/jsconfig.json"),
            ),
        ],
        Lang::C => &[("step.c", include_str!("../../../sdk/templates/c/step.c"))],
    }
}

fn title(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
        Lang::C => "C",
    }
}

/// A step name: lower-case letters, digits and dashes, starting with a letter, as the
/// languages' package names and Weir's step names all accept.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "{name:?} is not a valid step name: use lower-case letters, digits and dashes, \
             starting with a letter (e.g. `redact-pii`)"
        );
    }
    Ok(())
}

/// Creates the project `dir` (which must not exist, or be empty) for a step in `lang`;
/// its name is the directory's name. Returns the files written.
pub fn create(dir: &Path, lang: Lang) -> anyhow::Result<Vec<PathBuf>> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("{} has no usable name", dir.display()))?;
    check_name(name)?;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} already exists and is not empty", dir.display());
    }
    let mut written = Vec::new();
    for (relative, template) in COMMON.iter().chain(sources(lang)) {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = template
            .replace("{{name}}", name)
            .replace("{{lang_title}}", title(lang));
        std::fs::write(&path, text)?;
        written.push(path);
    }
    // Editors and cargo find the SDK before the first build.
    sdk_files::materialize(&dir.join(".weir"), lang)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_anything_is_written() {
        for bad in ["", "Upper", "1st", "with space", "under_score", "trailing-"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains("is not a valid step name"), "{bad}: {err}");
        }
        check_name("redact-pii2").unwrap();

        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("Bad_Name");
        assert!(create(&dir, Lang::Python).is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn a_project_gets_sources_cases_and_the_sdk() {
        let root = tempfile::tempdir().unwrap();
        for lang in Lang::ALL {
            let dir = root.path().join(format!("hello-{lang}"));
            let files = create(&dir, lang).unwrap();
            assert!(files.iter().any(|f| f.ends_with("tests/hello.json")));
            let detected = super::super::Project::open(&dir, None).unwrap();
            assert_eq!(detected.lang, lang, "{}", dir.display());
            for file in &files {
                let text = std::fs::read_to_string(file).unwrap();
                assert!(
                    !text.contains("{{"),
                    "{} keeps a placeholder",
                    file.display()
                );
            }
            assert!(dir.join(".weir/wit/step.wit").is_file());
            let again = create(&dir, lang).unwrap_err().to_string();
            assert!(again.contains("already exists"), "{again}");
        }
    }
}
