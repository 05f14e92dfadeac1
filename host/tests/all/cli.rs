//! The `weir` binary: exit codes, outputs and error messages as a user sees them.

use std::process::{Command, Output};

use serde_json::{Value, json};
use weir_artifacts as artifacts;

fn weir(args: &[&str]) -> Output {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache");
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("weir runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn step_run_prints_the_output_and_what_it_used() {
    let out = weir(&[
        "step",
        "run",
        artifacts::ECHO,
        "--input",
        r#"{"a":1}"#,
        "-c",
        "route=fast",
        "-c",
        "confidence=0.5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\n  \"a\": 1\n}\n");
    let err = stderr(&out);
    assert!(err.starts_with("ok · "), "{err}");
    assert!(
        err.contains("memory peak") && err.contains("route fast · confidence 0.50"),
        "{err}"
    );
}

#[test]
fn step_run_json_prints_the_whole_report() {
    let out = weir(&[
        "step",
        "run",
        artifacts::ECHO,
        "--input",
        "[true]",
        "--fuel",
        "5_000_000",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["outcome"]["ok"]["payload"], json!([true]));
    assert_eq!(report["usage"]["fuel_limit"], json!(5_000_000));
    let consumed = report["usage"]["fuel_consumed"].as_u64().unwrap();
    assert!(consumed > 0 && consumed < 5_000_000, "{consumed}");
}

#[test]
fn a_failed_step_exits_1_with_its_typed_failure() {
    let out = weir(&[
        "step",
        "run",
        artifacts::HOSTILE_FUEL_BOMB,
        "--input",
        "{}",
        "--fuel",
        "1000000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "failed (fuel_exhausted): fuel exhausted: the step used all 1000000 units of fuel"
        ),
        "{err}"
    );
    assert!(err.contains("fuel 1,000,000 of 1,000,000"), "{err}");
    assert_eq!(stdout(&out), "");
}

#[test]
fn grants_from_the_command_line_reach_the_step() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), "from the host").unwrap();
    let grant = format!("{}:/in", dir.path().display());
    let out = weir(&[
        "step",
        "run",
        artifacts::FS_PROBE,
        "--allow-dir",
        &grant,
        "--input",
        r#"[{"op":"read","path":"/in/note.txt"}]"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let payload: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(payload, json!([{"ok": "from the host"}]));
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["step", "run", "nope.wasm", "--input", "{}"],
            "error: cannot read plugin \"nope.wasm\": No such file or directory (os error 2)\n",
        ),
        (
            &["step", "run", artifacts::ECHO, "--input", "{\"a\":"],
            "error: input from --input is not valid JSON: EOF while parsing a value at line 1 column 5\n",
        ),
        (
            &[
                "step",
                "run",
                artifacts::ECHO,
                "--input",
                "{}",
                "-c",
                "novalue",
            ],
            "error: config entry \"novalue\" is not of the form key=value\n",
        ),
        (
            &[
                "step",
                "run",
                artifacts::ECHO,
                "--input",
                "{}",
                "--allow-dir",
                "relative",
            ],
            "error: directory grant \"relative\" is not of the form HOST_DIR:GUEST_DIR[:ro|rw]\n",
        ),
        (
            &[
                "step",
                "run",
                artifacts::ECHO,
                "--input",
                "{}",
                "--allow-host",
                "https://x.io",
            ],
            "error: host grant \"https://x.io\" is not of the form HOST or HOST:PORT (no scheme, no path), e.g. api.example.com or 127.0.0.1:8080\n",
        ),
        (
            &[
                "step",
                "run",
                artifacts::ECHO,
                "--input",
                "{}",
                "--allow-host",
                "x.io",
                "--host-secret",
                "x.io=Authorization:WEIR_TEST_UNSET_VAR",
            ],
            "error: secret \"x.io=Authorization:WEIR_TEST_UNSET_VAR\": environment variable WEIR_TEST_UNSET_VAR is not set\n",
        ),
    ];
    for (args, expected) in cases {
        let out = weir(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), expected, "{args:?}");
    }
    let out = weir(&[
        "step",
        "run",
        artifacts::ECHO,
        "--input",
        "{}",
        "--memory",
        "lots",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"lots\" is not a size such as 64MiB or 1GB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_non_component_file_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "not wasm at all").unwrap();
    let out = weir(&["step", "run", path.to_str().unwrap(), "--input", "{}"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} is not a WebAssembly file (it starts with 0x6e6f74207761736d); a plugin is a component built for the wasm32-wasip2 target\n",
            path.display()
        )
    );
}

#[test]
fn plugin_inspect_shows_metadata_imports_and_exports() {
    let out = weir(&["plugin", "inspect", artifacts::FETCH_URL]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "fetch-url 1.0.0\n  GETs a URL from a granted host\ndigest        sha256:"
        ),
        "{text}"
    );
    assert!(text.contains("capabilities  http\n"), "{text}");
    assert!(text.contains("  weir:step/types@0.1.0\n"), "{text}");
    assert!(text.contains("  wasi:http/outgoing-handler@0.2."), "{text}");
    assert!(
        text.contains("exports\n") && text.contains("  run\n") && text.contains("  describe\n"),
        "{text}"
    );

    let out = weir(&["plugin", "inspect", artifacts::ECHO, "--json"]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["meta"]["name"], json!("echo"));
    assert!(doc["digest"].as_str().unwrap().starts_with("sha256:"));
}

/// What `weir step run` and `weir plugin inspect` print of `plugin` (the terminal-forge
/// attack) holds no escape sequence and no line the guest forged; `--json` keeps it exact.
pub(crate) fn assert_terminal_output_escaped(plugin: &str) {
    let out = weir(&["step", "run", plugin, "--input", "{}"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let inspect = weir(&["plugin", "inspect", plugin]);
    assert_eq!(inspect.status.code(), Some(0), "{}", stderr(&inspect));
    for text in [stdout(&out), stderr(&out), stdout(&inspect)] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(!text.contains('\r'), "{text:?}");
        for line in text.lines() {
            assert!(
                !line.trim_start().starts_with("✓ forged")
                    && !line.trim_start().starts_with("✓ another"),
                "a forged line: {line:?}"
            );
        }
    }
    let err = stderr(&out);
    assert!(err.contains("  warn  \\u{1b}]0;pwned\\u{7}"), "{err}");
    assert!(
        err.contains("  stdout \\u{1b}[2K\\r  ✓ forged-step 1.0ms"),
        "{err}"
    );
    assert!(
        err.contains("failed (fatal): fatal: \\u{1b}]0;pwned"),
        "{err}"
    );
    assert!(stdout(&inspect).starts_with("hostile-terminal-forge 1.0.0\n  \\u{1b}]0;pwned"));

    let out = weir(&["step", "run", plugin, "--input", "{}", "--json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let message = report["outcome"]["failed"]["message"].as_str().unwrap();
    assert!(message.starts_with("\u{1b}]0;pwned\u{7}"), "{message:?}");
    assert!(message.ends_with("\n  ✓ another 2.0ms"), "{message:?}");
}

/// A reader that closes the pipe early (`weir … | head -1`) ends the command quietly, with
/// its usual exit code, not a panic.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    for args in [
        vec!["plugin", "inspect", artifacts::ECHO],
        vec![
            "step",
            "run",
            artifacts::ECHO,
            "--input",
            r#"{"a": [1, 2, 3]}"#,
        ],
    ] {
        assert_quiet_on_a_closed_pipe(&args);
    }
}

/// Runs `weir args` with its stdout closed at once (as `| head -1` does before reading) and
/// checks that it ends with exit 0 and no panic.
fn assert_quiet_on_a_closed_pipe(args: &[&str]) {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

/// Logs written to a file or a pipe carry no colour codes.
#[test]
fn logs_to_a_non_terminal_are_plain_text() {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .env("WEIR_LOG", "wasmtime=debug")
        .arg("--cache-dir")
        .arg(cache)
        .args(["step", "run", artifacts::ECHO, "--input", "{}"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains(" DEBUG "), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

/// A read command refuses a data directory that holds no journal, and creates none.
#[test]
fn read_commands_refuse_a_data_dir_without_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mistyped");
    for args in [vec!["runs", "list"], vec!["review", "list"]] {
        let out = crate::crash::weir(&data).args(&args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("there is no journal in the data directory") && err.contains("mistyped"),
            "{err}"
        );
        assert!(!data.join("weir.db").exists(), "no journal was created");
    }
    // Statuses are named in plain words.
    let store = dir.path().join("real");
    std::fs::create_dir_all(&store).unwrap();
    weir::store::SqliteStore::open(&store.join("weir.db"), weir::store::Durability::Normal)
        .unwrap();
    let out = crate::crash::weir(&store)
        .args(["runs", "list", "--status", "done"])
        .output()
        .unwrap();
    assert_eq!(
        stderr(&out),
        "error: \"done\" is not a run status; use one of: pending, running, awaiting_review, succeeded, failed, cancelled\n"
    );
}

/// `weir` raises its soft limit on open descriptors to the hard limit at startup: a host
/// started under `ulimit -Sn 256` runs with the hard limit.
#[test]
fn the_descriptor_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -Sn 256 && exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1""#)
        .arg(env!("CARGO_BIN_EXE_weir"))
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let limits = format!("/proc/{}/limits", child.id());
    let open_files = || -> Option<(String, String)> {
        let text = std::fs::read_to_string(&limits).ok()?;
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        let mut fields = line["Max open files".len()..].split_whitespace();
        Some((fields.next()?.to_string(), fields.next()?.to_string()))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = None;
    while std::time::Instant::now() < deadline {
        seen = open_files();
        if seen.as_ref().is_some_and(|(soft, _)| soft != "256") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (soft, hard) = seen.expect("the host's limits are readable");
    assert_eq!(soft, hard, "soft limit {soft}, hard limit {hard}");
}

/// `weir serve` says at start when its workers' steps, each holding as many host resources
/// as it may, could use up the descriptors the process may open; within the limit it says
/// nothing.
#[test]
fn weir_serve_warns_when_its_steps_could_use_up_the_descriptors() {
    use std::io::BufRead as _;
    let startup = |limit: u32, workers: &str| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!(
                r#"ulimit -n {limit} && exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1" --workers {workers} --max-connections 64"#
            ))
            .arg(env!("CARGO_BIN_EXE_weir"))
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            let listening = line.starts_with("weir serve: listening on");
            lines.push(line);
            if listening {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        lines
    };
    let said = startup(8192, "8");
    let warning = said
        .iter()
        .find(|l| l.contains("descriptors"))
        .unwrap_or_else(|| panic!("no warning: {said:#?}"));
    let needed = weir::limits::descriptors_needed(8, 4, 64);
    assert!(needed > 8192);
    for part in [
        "8 workers".to_string(),
        format!("{needed} descriptors"),
        "may open 8192".to_string(),
        "--workers".to_string(),
    ] {
        assert!(warning.contains(&part), "{part:?} not in {warning}");
    }
    let said = startup(8192, "1");
    assert!(!said.iter().any(|l| l.contains("descriptors")), "{said:#?}");
}

/// `weir runs list | head -1` and `weir runs show ID | head -1` end quietly too.
#[test]
fn a_closed_stdout_ends_the_runs_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workflow = dir.path().join("echo.toml");
    write_echo_workflow(&workflow);
    let with_data = |args: &[&str]| {
        let mut all = vec!["--data-dir", data.to_str().unwrap()];
        all.extend_from_slice(args);
        weir(&all)
    };
    for n in 0..3 {
        let out = with_data(&[
            "run",
            workflow.to_str().unwrap(),
            "--input",
            &format!(r#"{{"n": {n}}}"#),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let listed: Value = serde_json::from_str(&stdout(&with_data(&["runs", "list", "--json"])))
        .expect("runs list --json");
    let id = listed[0]["id"].as_str().expect("a run id").to_string();
    let data = data.to_str().unwrap();
    for args in [
        ["--data-dir", data, "runs", "list"].as_slice(),
        ["--data-dir", data, "runs", "show", &id].as_slice(),
    ] {
        for _ in 0..5 {
            assert_quiet_on_a_closed_pipe(args);
        }
    }
}

/// `weir run` says, for each provider with a rate limit, that the limit holds within the one
/// process; a provider without one gets no warning.
#[test]
fn weir_run_warns_that_rate_limits_are_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "[providers.limited]\nbase-url = \"http://127.0.0.1:9\"\nrequests-per-minute = 2\n\
         [providers.open]\nbase-url = \"http://127.0.0.1:9\"\n\
         [models.smart]\nprovider = \"limited\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let workflow = dir.path().join("echo.toml");
    write_echo_workflow(&workflow);
    let data = dir.path().join("data");
    let out = weir(&[
        "--host-config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "run",
        workflow.to_str().unwrap(),
        "--input",
        "{}",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err.matches("warning: provider `limited`'s rate limits (like its circuit breaker) hold within one process")
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains("provider `open`"), "{err}");
}

/// Writes a one-step echo workflow to `path`.
fn write_echo_workflow(path: &std::path::Path) {
    std::fs::write(
        path,
        format!(
            "name = \"echo\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"only\"\nplugin = {:?}\n",
            artifacts::ECHO
        ),
    )
    .unwrap();
}
