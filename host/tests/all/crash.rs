//! Crash safety: kill -9 the `weir` process in the middle of a run, at several points, then
//! `weir resume`, and check from the journal that no finished step ran again, no result was
//! recorded twice and the run completed once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use weir::store::{RunStatus, StepStatus};

use crate::backend::TestStore;
use crate::workflows::plugin_dir;

const STEPS: [&str; 3] = ["a", "b", "c"];

fn workflow(dir: &Path, slow: &str) -> std::path::PathBuf {
    let mut text = String::from("name = \"crashy\"\nversion = \"1.0.0\"\n");
    let mut previous: Option<&str> = None;
    for id in STEPS {
        text.push_str(&format!(
            "[[steps]]\nid = \"{id}\"\nplugin = \"{}/echo.wasm\"\n",
            plugin_dir().display()
        ));
        if let Some(p) = previous {
            text.push_str(&format!("after = [\"{p}\"]\n"));
        }
        if id == slow {
            text.push_str("config = { sleep_ms = 1500 }\n");
        }
        previous = Some(id);
    }
    let path = dir.join("crashy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `weir` binary with its own data directory and a shared compile cache.
pub fn weir(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.arg("--data-dir")
        .arg(data)
        .arg("--cache-dir")
        .arg(Path::new(env!("CARGO_TARGET_TMPDIR")).join("weir-cli-cache"));
    cmd
}

async fn kill_during(slow: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = workflow(dir.path(), slow);
    let backend = TestStore::new();
    let weir = |data: &Path| {
        let mut cmd = weir(data);
        cmd.args(backend.cli_args());
        cmd
    };
    let mut child = weir(&data)
        .args(["run", path.to_str().unwrap(), "--input", r#"{"ticket": 1}"#])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait until the slow step's attempt is journaled, then kill the process mid-step.
    let deadline = Instant::now() + Duration::from_secs(60);
    let store = loop {
        assert!(Instant::now() < deadline, "the slow step never started");
        if backend.url.is_some() || data.join("weir.db").exists() {
            break backend.open(&data).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let run_id = loop {
        assert!(Instant::now() < deadline, "the slow step never started");
        let runs = store.list_runs(&Default::default()).await.unwrap();
        if let Some(run) = runs.first() {
            let steps = store.steps(&run.id).await.unwrap();
            if steps
                .iter()
                .any(|s| s.step_id == slow && s.status == StepStatus::Running)
            {
                break run.id.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let before = store.steps(&run_id).await.unwrap();
    let finished_before: Vec<String> = before
        .iter()
        .filter(|s| s.status == StepStatus::Succeeded)
        .map(|s| s.step_id.clone())
        .collect();
    assert_eq!(
        store.get_run(&run_id).await.unwrap().unwrap().status,
        RunStatus::Running
    );

    let out = weir(&data).arg("resume").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("{run_id}  crashy@1.0.0  succeeded"))
    );

    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.output, Some(json!({"ticket": 1})));
    let steps = store.steps(&run_id).await.unwrap();
    let attempts = store.attempts(&run_id).await.unwrap();
    for step in &steps {
        assert_eq!(step.status, StepStatus::Succeeded);
        let tries: Vec<_> = attempts
            .iter()
            .filter(|a| a.step_id == step.step_id)
            .collect();
        if finished_before.contains(&step.step_id) {
            assert_eq!(tries.len(), 1, "finished step {} ran again", step.step_id);
        }
        if step.step_id == slow {
            assert_eq!(tries.len(), 2, "the interrupted step runs once more");
            assert_eq!(
                tries[0].status,
                StepStatus::Interrupted,
                "the attempt the crash cut short is closed once the step starts again"
            );
            assert_eq!(
                tries[0].finished_ms,
                Some(tries[1].started_ms),
                "it ended when the next attempt started"
            );
            assert!(tries[0].failure.is_none(), "it has no result");
        }
        assert_eq!(
            tries
                .iter()
                .filter(|a| a.status == StepStatus::Succeeded)
                .count(),
            1,
            "one result for {}",
            step.step_id
        );
    }
    let events = store.events(&run_id).await.unwrap();
    for id in STEPS {
        let results = events
            .iter()
            .filter(|e| e.kind == "step_succeeded" && e.step_id.as_deref() == Some(id))
            .count();
        assert_eq!(results, 1, "step {id} has {results} recorded results");
    }
    assert_eq!(
        events.iter().filter(|e| e.kind == "run_succeeded").count(),
        1
    );

    // The profile counted each step's result once: the one the crash cut short has none,
    // and the result of its second attempt says so.
    let rows = crate::monitor::rows(store.as_ref(), "crashy").await;
    for id in STEPS {
        assert_eq!(crate::monitor::results(&rows, id), 1, "step {id}");
    }
    let attempts = crate::monitor::counts(&rows, slow, weir::monitor::profile::ATTEMPTS);
    let second = weir::monitor::profile::numeric_bin(Some(2.0));
    assert_eq!(attempts, [(second, 1)].into_iter().collect());

    // Resuming again finds nothing to do.
    let out = weir(&data).arg("resume").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "no unfinished runs"
    );
}

#[tokio::test]
async fn kill_9_during_the_first_step() {
    kill_during("a").await;
}

#[tokio::test]
async fn kill_9_during_a_middle_step() {
    kill_during("b").await;
}

#[tokio::test]
async fn kill_9_during_the_last_step() {
    kill_during("c").await;
}
