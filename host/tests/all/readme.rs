//! Every README example that shows a `weir` command and its output (a ```` ```text ```` block
//! starting with `$ weir`) is run here, and its output compared: stdout exactly, stderr line
//! by line with numbers (times, sizes, fuel) standing for any number, since they vary by
//! machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workflows::plugin_dir;

/// One example: the command line and the output the README shows for it.
struct Example {
    command: String,
    shown: Vec<String>,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line != "```text" {
            continue;
        }
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .map(str::to_string)
            .collect();
        if let Some(command) = block.first().and_then(|l| l.strip_prefix("$ weir ")) {
            found.push(Example {
                command: command.to_string(),
                shown: block[1..].to_vec(),
            });
        }
    }
    found
}

/// Every word that starts with a digit (`2.31ms`, `1,137,563`) stands for any number: what
/// stays is the shape and the words.
fn without_numbers(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            if word.starts_with(|c: char| c.is_ascii_digit()) {
                "#"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn readme_examples_give_the_output_they_show() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 2, "the README's examples were found");
    let work = tempfile::tempdir().unwrap();
    // `weir validate broken.toml` shows the report on the golden case of an unknown step.
    std::fs::copy(
        repo().join("host/tests/workflows/unknown-step/workflow.toml"),
        work.path().join("broken.toml"),
    )
    .unwrap();
    for example in examples {
        let args: Vec<String> = example
            .command
            .split_whitespace()
            .map(|arg| {
                let built = arg.replace(
                    "plugins/target/wasm32-wasip2/release",
                    &plugin_dir().display().to_string(),
                );
                if built.starts_with("examples/") {
                    repo().join(&built).display().to_string()
                } else {
                    built
                }
            })
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("--cache-dir")
            .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache"))
            .args(&args)
            .current_dir(work.path())
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        let mut printed: Vec<&str> = stdout.lines().collect();
        printed.extend(stderr.lines());
        let missing: Vec<&String> = example
            .shown
            .iter()
            .filter(|shown| {
                !printed
                    .iter()
                    .any(|p| without_numbers(p) == without_numbers(shown))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "`weir {}` did not print {missing:#?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            example.command
        );
        // What a command prints on stdout is shown whole, in order.
        let shown = example.shown.join("\n");
        assert!(
            stdout.trim().is_empty() || shown.contains(stdout.trim_end()),
            "`weir {}` printed\n{stdout}\nnot as shown:\n{shown}",
            example.command
        );
    }
}
