//! The README's `sh` blocks. Every `weir` command line in them names only subcommands and
//! flags that `weir … --help` knows, so a synopsis cannot drift from the binary. The blocks a
//! reader would paste are run as written by `sh`, with `weir` on the `PATH`, in a copy of the
//! example (its workflow pointed at the test build of the plugins), and their effect checked.
//! Only two things are put in place for the run: `weir serve` listens on a free port (the
//! block's URL follows it), and the local model server a block names is a stand-in speaking
//! its protocol.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use weir_provider::{Provider, Reply};

use crate::workflows::plugin_dir;
use crate::workflows::triage::shipped_triage;

/// One ```` ```sh ```` block: where it starts and its lines.
struct Block {
    line: usize,
    text: String,
}

fn sh_blocks(readme: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        if line == "```sh" {
            let text: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| *l != "```")
                .collect();
            found.push(Block {
                line: number + 1,
                text: text.join("\n"),
            });
        }
    }
    found
}

/// What the test does with a block, by its first line.
enum Treatment {
    /// Run by `sh`; the test checks what it did.
    Run,
    /// Only its `weir` lines' flags are checked: it shows forms, or names what exists
    /// only elsewhere (a deployment's hosts, ids a run hands out), or runs the whole build.
    Synopsis(&'static str),
}

fn treatment(first_line: &str) -> Treatment {
    const RUN: [&str; 4] = [
        "export WEIR_API_TOKENS=dev-token",
        "export WEIR_DATA_DIR=$(mktemp -d)",
        "cat > weir.toml <<'TOML'",
        "weir new redact-pii --lang python",
    ];
    const ELSEWHERE: [(&str, &str); 3] = [
        ("scripts/demo", "the fresh-machine commands, which CI runs"),
        ("export WEIR_STORE=postgres://", "a deployment's own hosts"),
        ("weir review list  ", "ids that a parked run hands out"),
    ];
    if RUN.iter().any(|run| first_line.starts_with(run)) {
        return Treatment::Run;
    }
    if let Some((_, why)) = ELSEWHERE.iter().find(|(p, _)| first_line.starts_with(p)) {
        return Treatment::Synopsis(why);
    }
    // A form, not a command: placeholders or optional parts in brackets.
    assert!(
        first_line.starts_with("weir ") && (first_line.contains('<') || first_line.contains('[')),
        "a new sh block in the README, starting {first_line:?}: run it in {} or say why not",
        file!()
    );
    Treatment::Synopsis("a synopsis")
}

/// The block's logical lines: continuations (a trailing `\`, or an indented line under a
/// synopsis) joined, comments dropped.
fn command_lines(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let mut lines: Vec<String> = Vec::new();
    for line in joined.lines() {
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        match lines.last_mut() {
            Some(last) if line.starts_with(' ') => last.push_str(line),
            _ => lines.push(line.to_string()),
        }
    }
    lines
}

fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .unwrap()
}

/// The subcommands `weir <path> --help` lists under "Commands:".
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = String::from_utf8(weir(&args).stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Checks one `weir …` command line: its subcommand exists and knows every flag it passes.
fn check_flags(line: &str, block: &Block, help: &mut BTreeMap<Vec<String>, String>) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(start) = words.iter().position(|w| *w == "weir") else {
        return;
    };
    let mut path: Vec<String> = Vec::new();
    for word in &words[start + 1..] {
        let path_ref: Vec<&str> = path.iter().map(String::as_str).collect();
        if subcommands(&path_ref).iter().any(|s| s == word) {
            path.push(word.to_string());
        } else {
            break;
        }
    }
    assert!(
        !path.is_empty(),
        "README line {}: `{line}` names no weir subcommand",
        block.line
    );
    let text = help.entry(path.clone()).or_insert_with(|| {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        String::from_utf8(weir(&args).stdout).unwrap()
    });
    for word in &words[start + 1..] {
        let flag = word.trim_start_matches('[');
        if !flag.starts_with("--") || flag.len() < 3 {
            continue;
        }
        let flag: String = flag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        assert!(
            text.contains(&format!("{flag} ")) || text.contains(&format!("{flag}\n")),
            "README line {}: `weir {}` has no {flag}:\n{text}",
            block.line,
            path.join(" ")
        );
    }
}

/// A working directory laid out as the repository is for the examples: the ticket-triage
/// example, its workflow pointed at the test build of the plugins.
fn example_checkout() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ticket-triage");
    let example = work.path().join("examples/ticket-triage");
    copy_tree(&shipped, &example);
    let plugins = plugin_dir().display().to_string();
    std::fs::write(example.join("workflow.toml"), shipped_triage(&plugins)).unwrap();
    work
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A directory holding only `weir`, for the front of the `PATH`.
fn weir_on_path(work: &Path) -> PathBuf {
    let bin = work.join(".bin");
    std::fs::create_dir_all(&bin).unwrap();
    if !bin.join("weir").exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_weir"), bin.join("weir")).unwrap();
    }
    bin
}

/// Runs `script` with `sh -e` in `work`, in its own process group, which is killed
/// afterwards: a block that starts `weir serve &` leaves nothing running.
fn run_sh(work: &Path, script: &str, env: &[(&str, String)]) -> Output {
    let path = format!(
        "{}:{}",
        weir_on_path(work).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .args(["-e", "-c", script])
        .current_dir(work)
        .env("PATH", path)
        .env(
            "WEIR_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache"),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // A background `weir serve` holds the pipes open: read them on threads, wait for `sh`,
    // then end the group, which closes them.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = child.wait().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .output();
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `weir serve` and a `curl` submission: the run comes back, classified.
fn check_serve_and_curl(block: &Block) {
    let work = example_checkout();
    let port = free_port();
    let script = block
        .text
        .replace("127.0.0.1:7878", &format!("127.0.0.1:{port}"));
    let out = run_sh(
        work.path(),
        &script,
        &[("WEIR_LISTEN", format!("127.0.0.1:{port}"))],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let answer: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("curl printed no JSON ({e}): {stdout}"));
    let said = text(&out.stderr);
    assert_eq!(answer["created"], true, "{answer}\n{said}");
    assert_eq!(answer["run"]["status"], "succeeded", "{answer}");
    assert_eq!(answer["run"]["output"]["queue"], "billing", "{answer}");
}

/// A `weir.toml` naming a local model server, and `weir run`: the model is asked once, the
/// summary shows the call, and the same ticket again is a cache hit.
async fn check_local_model(block: &Block) {
    let provider = Provider::start().await;
    provider.otherwise(Reply::complete(
        r#"{"label": "billing", "confidence": 0.97}"#,
    ));
    let work = example_checkout();
    let local = "http://127.0.0.1:11434/v1";
    assert!(block.text.contains(local), "{}", block.text);
    let script = block.text.replace(local, &provider.url());
    let run_line = block
        .text
        .lines()
        .find(|l| l.starts_with("weir run "))
        .unwrap()
        .to_string();
    let dir = work.path().to_path_buf();
    let (first, again) = tokio::task::spawn_blocking(move || {
        (run_sh(&dir, &script, &[]), run_sh(&dir, &run_line, &[]))
    })
    .await
    .unwrap();
    for out in [&first, &again] {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let output: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        assert_eq!(output["queue"], "billing", "{output}");
    }
    assert_eq!(provider.calls(), 1, "the second run was not a cache hit");
    assert_eq!(provider.requests()[0]["model"], "llama3.2:3b");
    // The classifier's row counts one call with its tokens; the cost is set against the
    // run's budget.
    let summary = text(&first.stderr);
    let row = summary
        .lines()
        .find(|l| l.contains("classify_llm") && l.contains("succeeded") && l.contains('│'))
        .unwrap_or_else(|| panic!("no row for the model step:\n{summary}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let prompt = weir_provider::tokens(
        provider.requests()[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
    );
    assert!(cells.contains(&"1"), "{row}");
    assert!(
        cells
            .iter()
            .any(|c| c.ends_with("/4") && c.starts_with(&prompt.to_string())),
        "{row}: {prompt} tokens in"
    );
    assert!(summary.contains("of a $0.010000 run budget"), "{summary}");
    let again = text(&again.stderr);
    assert!(
        again.contains("1 (1 cached)"),
        "the repeat was not a cache hit:\n{again}"
    );
}

/// The worked example of a change: recorded runs, a v2 made from the shipped file, its
/// evaluation with a gate and an HTML report, and a rollout that ends promoted.
fn check_worked_change(block: &Block) {
    let work = example_checkout();
    let out = run_sh(work.path(), &block.text, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The v2 differs from the shipped file in its version and its classifiers' temperature.
    let v1 =
        std::fs::read_to_string(work.path().join("examples/ticket-triage/workflow.toml")).unwrap();
    let v2 = std::fs::read_to_string(work.path().join("examples/ticket-triage/v2.toml")).unwrap();
    let added: Vec<&str> = v2
        .lines()
        .filter(|l| !v1.lines().any(|o| o == *l))
        .collect();
    let temperature = "config = { temperature = 0.8 }";
    assert_eq!(
        added,
        ["version = \"1.1.0\"", temperature, temperature],
        "{v2}"
    );
    let evaluation = stdout
        .lines()
        .find(|l| l.starts_with("evaluation of "))
        .unwrap_or_else(|| panic!("no evaluation summary:\n{stdout}"));
    assert!(
        evaluation.contains("on 6 recorded runs of ticket-triage (6 evaluated"),
        "{evaluation}"
    );
    // The one parked ticket of six is sure enough for the candidate: routed, not parked.
    assert!(
        stdout.contains("review rate        16.7% → 0.0%"),
        "{stdout}"
    );
    let shift = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("confidence shift"))
        .unwrap_or_else(|| panic!("no confidence shift:\n{stdout}"));
    let mean: f64 = shift.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(mean > 0.0, "sharper confidences: {shift}");
    assert!(stdout.contains("output agreement   83.3% (5/6"), "{stdout}");
    // No ticket changed queue: every step's route agrees.
    assert!(
        stdout.contains("route agreement    100.0% (20/20"),
        "{stdout}"
    );
    assert!(stderr.contains("gate passed"), "{stderr}");
    let report = std::fs::read_to_string(work.path().join("eval.html")).unwrap();
    assert!(
        report.contains("<html") && !report.contains("<script"),
        "{report}"
    );
    // The rollout waited for v2, ramped at 50% and was promoted after two passing checks.
    let status = last_line(&stdout, "rollout ");
    assert!(
        status.contains("ticket-triage 1.0.0 → 1.1.0: promoted at 100%"),
        "{status}\n{stdout}"
    );
    for event in [" pending ", " ramping ", " promoted "] {
        assert!(stdout.contains(event), "no{event}event:\n{stdout}");
    }
    assert!(
        stdout.contains("every decision comes out the same from the journal"),
        "{stdout}"
    );
    // The last run, without a version, started on 1.1.0 and was not parked (`sh -e` would
    // have stopped at its exit code 3).
    let last = last_line(&stderr, "run ");
    assert!(last.contains("ticket-triage@1.1.0"), "{last}");
}

/// The last line of `text` that starts with `prefix`.
fn last_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .rev()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{text}"))
}

/// `weir new`, `weir test` and `weir build` on a fresh step; the watching commands run until
/// stopped, so only their flags are checked.
fn check_new_test_build(block: &Block) {
    let work = tempfile::tempdir().unwrap();
    let script: Vec<&str> = block
        .text
        .lines()
        .filter(|l| !l.contains("--watch") && !l.starts_with("weir dev"))
        .collect();
    assert_eq!(script.len(), 3, "{}", block.text);
    let out = run_sh(work.path(), &script.join("\n"), &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let built = work.path().join("redact-pii/build/redact-pii.wasm");
    let bytes = std::fs::read(&built).unwrap_or_else(|e| panic!("{}: {e}", built.display()));
    assert_eq!(&bytes[..4], b"\0asm");
    // A fresh project's own tests pass.
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("passed"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_shell_blocks_name_real_flags_and_do_what_they_say() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let blocks = sh_blocks(&readme);
    let mut help = BTreeMap::new();
    let mut ran = Vec::new();
    for block in &blocks {
        let first = block.text.lines().next().unwrap_or_default();
        for line in command_lines(&block.text) {
            check_flags(&line, block, &mut help);
        }
        match treatment(first) {
            Treatment::Run => {
                ran.push(first.to_string());
                match first {
                    f if f.starts_with("export WEIR_API_TOKENS") => check_serve_and_curl(block),
                    f if f.starts_with("cat > weir.toml") => check_local_model(block).await,
                    f if f.starts_with("export WEIR_DATA_DIR") => check_worked_change(block),
                    _ => check_new_test_build(block),
                }
            }
            Treatment::Synopsis(why) => eprintln!("README line {}: not run: {why}", block.line),
        }
    }
    assert_eq!(ran.len(), 4, "every runnable block was found: {ran:?}");
}
