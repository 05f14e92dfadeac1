//! The `weir serve` binary: SIGTERM drains in-flight steps and exits 0, and the runs it left
//! finish after a restart without re-running a finished step.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::store::{Durability, RunStatus, SqliteStore, StepStatus, Store};

use crate::crash::weir;
use crate::serve::workflow_text;

const TOKEN: &str = "drain-token";

/// `GET /v1/runs/{id}`.
async fn run_detail(client: &reqwest::Client, url: &str, id: &str) -> Value {
    client
        .get(format!("{url}/v1/runs/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (up to 20 s) until run `id`'s first step is in flight.
async fn first_step_running(client: &reqwest::Client, url: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while run_detail(client, url, id).await["steps"][0]["status"] != json!("running") {
        assert!(Instant::now() < deadline, "run {id} never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts `weir serve` on a free port; returns the child and its base URL.
fn serve(data: &Path, workflows: &Path) -> (Child, String) {
    serve_with(weir(data), workflows, TOKEN)
}

/// Starts `weir serve` from `cmd` (the binary with its global options) on a free port,
/// with `token`; returns the child and its base URL.
pub fn serve_with(cmd: Command, workflows: &Path, token: &str) -> (Child, String) {
    serve_with_args(cmd, workflows, token, &[])
}

/// Like [`serve_with`], with more `weir serve` options.
pub fn serve_with_args(
    mut cmd: Command,
    workflows: &Path,
    token: &str,
    options: &[&str],
) -> (Child, String) {
    let drain = if options.contains(&"--drain-timeout") {
        &[][..]
    } else {
        &["--drain-timeout", "20s"][..]
    };
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0", "--lease", "1s"])
        .args(drain)
        .arg("--workflows")
        .arg(workflows)
        .args(options)
        .env("WEIR_API_TOKENS", token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("weir serve printed its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("weir serve: listening on ") {
            break url.trim().to_string();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

pub async fn ready(client: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("weir serve never became ready");
}

pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "weir serve did not exit in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_drains_in_flight_steps_and_a_restart_finishes_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (data, workflows) = (dir.path().join("data"), dir.path().join("workflows"));
    std::fs::create_dir_all(&workflows).unwrap();
    let echo = weir_artifacts::ECHO;
    let text = workflow_text(
        "slow",
        &[
            ("first", echo, "config = { sleep_ms = 1500 }"),
            ("second", echo, "config = { sleep_ms = 100 }"),
        ],
        "",
    );
    std::fs::write(workflows.join("slow.toml"), text).unwrap();

    let client = reqwest::Client::new();
    let (mut child, url) = serve(&data, &workflows);
    ready(&client, &url).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let r = client
            .post(format!("{url}/v1/runs"))
            .bearer_auth(TOKEN)
            .json(&json!({"workflow": "slow", "input": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        ids.push(body["run"]["id"].as_str().unwrap().to_string());
    }
    // Every run's first step is in flight.
    for id in &ids {
        first_step_running(&client, &url, id).await;
    }
    // A stream open when the drain starts ends with an event saying why.
    let stream = {
        let request = client
            .get(format!("{url}/v1/runs/{}/events", ids[0]))
            .bearer_auth(TOKEN);
        tokio::spawn(async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK);
            r.text().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    sigterm(&child);
    // The listener stays open through the drain: readiness says 503, health still 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client.get(format!("{url}/readyz")).send().await;
        let r = r.expect("the listener serves during the drain");
        if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], json!("unavailable"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never said 503");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "alive while draining");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "a drained shutdown exits 0");
    let events = stream.await.unwrap();
    let kinds: Vec<&str> = events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(kinds.last(), Some(&"shutdown"), "{events}");
    assert!(
        kinds.contains(&"step_succeeded"),
        "the drain's events were streamed: {events}"
    );

    // The first steps finished during the drain; nothing else started.
    let store = SqliteStore::open(&data.join("weir.db"), Durability::Normal).unwrap();
    for id in &ids {
        let run = store.get_run(id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Running, "left resumable");
        let steps = store.steps(id).await.unwrap();
        assert_eq!(
            steps[0].status,
            StepStatus::Succeeded,
            "the in-flight step finished"
        );
        assert_eq!(
            steps[1].status,
            StepStatus::Pending,
            "no new step started while draining"
        );
    }
    drop(store);

    // A restart resumes them; no finished step runs again.
    let (mut child, url) = serve(&data, &workflows);
    ready(&client, &url).await;
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let detail = run_detail(&client, &url, id).await;
            if detail["run"]["status"] == json!("succeeded") {
                let attempts: Vec<&str> = detail["attempts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["step_id"].as_str().unwrap())
                    .collect();
                assert_eq!(attempts, ["first", "second"], "each step ran exactly once");
                break;
            }
            assert!(Instant::now() < deadline, "run {id} was not resumed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)).code(),
        Some(0)
    );
}

/// Past `--drain-timeout`, `weir serve` exits whatever its steps are blocked on: a guest
/// waiting on an HTTP answer that never comes, and one sleeping through its whole timeout.
/// Their runs stay in the journal and finish after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_drain_timeout_exits_and_the_blocked_runs_resume() {
    use tokio::io::AsyncWriteExt as _;

    // The first connection is accepted and never answered; later ones get an answer.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = upstream.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = upstream.accept().await {
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                held.push(socket);
                continue;
            }
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let (data, workflows) = (dir.path().join("data"), dir.path().join("workflows"));
    std::fs::create_dir_all(&workflows).unwrap();
    let limits = "limits = { timeout = \"60s\" }";
    let grant = format!("grants = {{ hosts = [\"127.0.0.1:{port}\"] }}\n{limits}");
    let files = [
        ("fetch", weir_artifacts::FETCH_URL, grant),
        (
            "nap",
            weir_artifacts::ECHO,
            format!("config = {{ sleep_ms = 4000 }}\n{limits}"),
        ),
    ];
    for (name, plugin, lines) in &files {
        let text = workflow_text(name, &[("only", plugin, lines)], "");
        std::fs::write(workflows.join(format!("{name}.toml")), text).unwrap();
    }

    let client = reqwest::Client::new();
    let options = ["--drain-timeout", "1s"];
    let (mut child, url) = serve_with_args(weir(&data), &workflows, TOKEN, &options);
    ready(&client, &url).await;
    let url_input = json!({"url": format!("http://127.0.0.1:{port}/slow")});
    let mut ids = Vec::new();
    for (workflow, input) in [("fetch", url_input), ("nap", json!({"n": 1}))] {
        let r = client
            .post(format!("{url}/v1/runs"))
            .bearer_auth(TOKEN)
            .json(&json!({"workflow": workflow, "input": input}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        ids.push(body["run"]["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while connections.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the fetch step never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in &ids {
        first_step_running(&client, &url, id).await;
    }

    let asked = Instant::now();
    sigterm(&child);
    // The drain timeout, then at most the runtime's grace for blocked host threads.
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "it drained first"
    );
    assert_eq!(status.code(), Some(0), "a timed-out drain still exits 0");
    let store = SqliteStore::open(&data.join("weir.db"), Durability::Normal).unwrap();
    for id in &ids {
        let run = store.get_run(id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Running, "{id} left resumable");
    }
    drop(store);

    let (mut child, url) = serve_with_args(weir(&data), &workflows, TOKEN, &options);
    ready(&client, &url).await;
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let detail = run_detail(&client, &url, id).await;
            if detail["run"]["status"] == json!("succeeded") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} was not resumed: {detail}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)).code(),
        Some(0)
    );
}

/// `weir serve` applies each workflow's `[retention]` by itself when it starts (and then every
/// 15 minutes): a run past its retention, made by `weir run` before, has its payloads purged
/// and keeps its metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_serve_purges_payloads_past_their_retention_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workflows = dir.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let file = workflows.join("brief.toml");
    std::fs::write(
        &file,
        workflow_text(
            "brief",
            &[("only", weir_artifacts::ECHO, "")],
            "[retention]\npayloads = \"1s\"",
        ),
    )
    .unwrap();
    let out = weir(&data)
        .args(["run", "--json", file.to_str().unwrap(), "--input"])
        .arg(r#"{"secret": "quokka"}"#)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = SqliteStore::open(&data.join("weir.db"), Durability::Normal).unwrap();
    let runs = store
        .list_runs(&weir::store::RunFilter::default())
        .await
        .unwrap();
    let id = runs[0].id.clone();
    assert_eq!(runs[0].input, json!({"secret": "quokka"}));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (mut child, url) = serve_with(weir(&data), &workflows, "retention-token");
    ready(&reqwest::Client::new(), &url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let purged = loop {
        let run = store.get_run(&id).await.unwrap().unwrap();
        if run.input == Value::Null {
            break run;
        }
        assert!(Instant::now() < deadline, "never purged: {run:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(purged.status, RunStatus::Succeeded);
    assert_eq!(purged.output, None);
    assert_eq!(purged.workflow, "brief");
    child.kill().unwrap();
    child.wait().unwrap();
}
