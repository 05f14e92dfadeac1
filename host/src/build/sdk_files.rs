//! The WIT world and the SDKs, embedded in the binary so that `weir new` and `weir build`
//! give every project the SDK that matches this host, wherever the project lives.

use std::path::Path;

use super::Lang;

/// The `weir:step` world.
pub const WIT: &str = include_str!("../../../wit/step.wit");

const RUST_MANIFEST: &str = r#"# Written by weir build: the Rust SDK that matches this Weir host.
[package]
name = "weir-sdk"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
wit-bindgen = "0.63"
serde = { version = "1", features = ["derive"] }
# Exact numbers: an integer beyond 64 bits passes through a step as it came.
serde_json = { version = "1", features = ["arbitrary_precision"] }
"#;

const RUST: &[(&str, &str)] = &[
    ("sdk/rust/Cargo.toml", RUST_MANIFEST),
    (
        "sdk/rust/src/lib.rs",
        include_str!("../../../sdk/rust/src/lib.rs"),
    ),
    (
        "sdk/rust/src/step.rs",
        include_str!("../../../sdk/rust/src/step.rs"),
    ),
    (
        "sdk/rust/src/config.rs",
        include_str!("../../../sdk/rust/src/config.rs"),
    ),
    (
        "sdk/rust/src/log.rs",
        include_str!("../../../sdk/rust/src/log.rs"),
    ),
    (
        "sdk/rust/src/model.rs",
        include_str!("../../../sdk/rust/src/model.rs"),
    ),
    (
        "sdk/rust/src/state.rs",
        include_str!("../../../sdk/rust/src/state.rs"),
    ),
];

const PYTHON: &[(&str, &str)] = &[
    (
        "sdk/python/weir_step/__init__.py",
        include_str!("../../../sdk/python/weir_step/__init__.py"),
    ),
    (
        "sdk/python/weir_step/_step.py",
        include_str!("../../../sdk/python/weir_step/_step.py"),
    ),
    (
        "sdk/python/weir_step/config.py",
        include_str!("../../../sdk/python/weir_step/config.py"),
    ),
    (
        "sdk/python/weir_step/log.py",
        include_str!("../../../sdk/python/weir_step/log.py"),
    ),
    (
        "sdk/python/weir_step/model.py",
        include_str!("../../../sdk/python/weir_step/model.py"),
    ),
    (
        "sdk/python/weir_step/state.py",
        include_str!("../../../sdk/python/weir_step/state.py"),
    ),
];

const JS: &[(&str, &str)] = &[
    (
        "sdk/js/weir-step.js",
        include_str!("../../../sdk/js/weir-step.js"),
    ),
    (
        "sdk/js/weir-step.d.ts",
        include_str!("../../../sdk/js/weir-step.d.ts"),
    ),
];

const C: &[(&str, &str)] = &[
    (
        "sdk/c/weir_step.h",
        include_str!("../../../sdk/c/weir_step.h"),
    ),
    (
        "sdk/c/weir_step.c",
        include_str!("../../../sdk/c/weir_step.c"),
    ),
];

/// The files a project in `lang` gets under `.weir/`, as (relative path, contents).
pub fn files(lang: Lang) -> impl Iterator<Item = (&'static str, &'static str)> {
    let sdk = match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
        Lang::C => C,
    };
    std::iter::once(("wit/step.wit", WIT)).chain(sdk.iter().copied())
}

/// Writes the files for `lang` under `work_dir`, leaving unchanged ones untouched (so that
/// cargo does not rebuild the SDK for nothing).
pub fn materialize(work_dir: &Path, lang: Lang) -> anyhow::Result<()> {
    for (relative, contents) in files(lang) {
        let path = work_dir.join(relative);
        if std::fs::read(&path).is_ok_and(|old| old == contents.as_bytes()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
    }
    let ignore = work_dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(ignore, "# Written by weir build; safe to delete.\n*\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new SDK source file must be embedded too, or projects would get a broken SDK.
    #[test]
    fn every_sdk_source_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (lang, dir, ext) in [
            (Lang::Rust, "sdk/rust/src", "rs"),
            (Lang::Python, "sdk/python/weir_step", "py"),
            (Lang::Js, "sdk/js", "js"),
            (Lang::C, "sdk/c", "h"),
            (Lang::C, "sdk/c", "c"),
        ] {
            let embedded: Vec<&str> = files(lang).map(|(path, _)| path).collect();
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == ext) {
                    let relative = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
                    assert!(
                        embedded.contains(&relative.as_str()),
                        "{relative} is not embedded"
                    );
                }
            }
        }
    }

    #[test]
    fn materialize_writes_the_world_and_the_sdk_once() {
        let dir = tempfile::tempdir().unwrap();
        materialize(dir.path(), Lang::Python).unwrap();
        let wit = dir.path().join("wit/step.wit");
        assert_eq!(std::fs::read_to_string(&wit).unwrap(), WIT);
        assert!(dir.path().join("sdk/python/weir_step/_step.py").is_file());
        assert!(!dir.path().join("sdk/rust").exists());
        let before = std::fs::metadata(&wit).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        materialize(dir.path(), Lang::Python).unwrap();
        assert_eq!(std::fs::metadata(&wit).unwrap().modified().unwrap(), before);
    }
}
