//! Runs one command for a recovery action: no shell, its own process group, a timeout
//! (SIGTERM to the group, then SIGKILL after a grace period), stdin closed, and the first
//! 4 KiB of its output (stdout and stderr, interleaved as they arrive) kept.
//!
//! Owns process handling only; the argv and environment come from [`super::argv`].

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Output bytes kept per run.
pub const OUTPUT_LIMIT: usize = 4096;

/// Time between SIGTERM and SIGKILL at a timeout.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it (not ours).
    Signal(i32),
    /// It ran past its timeout and was killed.
    TimedOut,
    /// It was stopped because its alert resolved.
    Cancelled,
    /// It could not be started.
    NotStarted(String),
}

/// What one run of a command produced.
#[derive(Debug, Clone)]
pub struct CommandRun {
    /// How it ended.
    pub exit: Exit,
    /// The first [`OUTPUT_LIMIT`] bytes of its output, lossily decoded.
    pub output: String,
    /// Whether there was more output than was kept.
    pub truncated: bool,
    /// Wall time from start to exit.
    pub duration: Duration,
}

impl CommandRun {
    /// Whether it exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// One line for the audit log: how it ended, then its output.
    pub fn describe(&self) -> String {
        let end = match &self.exit {
            Exit::Code(c) => format!("exit status {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::TimedOut => "timed out: killed".to_owned(),
            Exit::Cancelled => {
                "cancelled: its alert resolved; the process group was stopped".to_owned()
            }
            Exit::NotStarted(e) => format!("could not start: {e}"),
        };
        let more = if self.truncated {
            " [output cut at 4 KiB]"
        } else {
            ""
        };
        if self.output.is_empty() {
            end
        } else {
            format!("{end}: {}{more}", self.output.trim_end())
        }
    }
}

/// Drains `from` into `kept`, keeping at most [`OUTPUT_LIMIT`] bytes in all (shared by both
/// streams) and reading, then dropping, the rest so the child never blocks on a full pipe.
async fn drain(
    mut from: impl AsyncRead + Unpin,
    kept: std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>,
) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
                let room = OUTPUT_LIMIT.saturating_sub(k.0.len());
                let take = room.min(n);
                k.0.extend_from_slice(&buf[..take]);
                if take < n {
                    k.1 = true;
                }
            }
        }
    }
}

/// Runs `argv` with `env` added to the environment (less `IPFS_SENTINEL_*`), for at most
/// `timeout`.
pub async fn run(argv: &[String], env: &[(String, String)], timeout: Duration) -> CommandRun {
    run_until(argv, env, timeout, std::future::pending()).await
}

/// [`run`], stopped as at a timeout (SIGTERM to its process group, SIGKILL after
/// [`KILL_GRACE`]) when `cancel` resolves first; it then ends [`Exit::Cancelled`].
pub async fn run_until(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    cancel: impl std::future::Future<Output = ()>,
) -> CommandRun {
    let started = Instant::now();
    let not_started = |e: String| CommandRun {
        exit: Exit::NotStarted(e),
        output: String::new(),
        truncated: false,
        duration: started.elapsed(),
    };
    let Some((program, args)) = argv.split_first() else {
        return not_started("empty command".into());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IPFS_SENTINEL_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return not_started(format!("{program}: {e}")),
    };
    let kept = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), false)));
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(drain(s, kept.clone()))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(drain(s, kept.clone()))),
    ];
    let group = child.id().map(|id| Pid::from_raw(id as i32));
    let waited = tokio::select! {
        status = child.wait() => Ok(status),
        _ = tokio::time::sleep(timeout) => Err(Exit::TimedOut),
        _ = cancel => Err(Exit::Cancelled),
    };
    let exit = match waited {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::Code(-1),
            }
        }
        Ok(Err(e)) => Exit::NotStarted(format!("{program}: {e}")),
        Err(stopped) => {
            if let Some(pg) = group {
                let _ = killpg(pg, Signal::SIGTERM);
            }
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                if let Some(pg) = group {
                    let _ = killpg(pg, Signal::SIGKILL);
                }
                let _ = child.wait().await;
            }
            stopped
        }
    };
    // Children the command left behind keep the pipes open: end them with the group.
    if let Some(pg) = group {
        let _ = killpg(pg, Signal::SIGKILL);
    }
    for reader in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    }
    let k = kept.lock().unwrap_or_else(|p| p.into_inner());
    CommandRun {
        exit,
        output: String::from_utf8_lossy(&k.0).into_owned(),
        truncated: k.1,
        duration: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn output_and_status_are_recorded() {
        let r = run(
            &argv(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]),
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.exit, Exit::Code(3));
        assert!(
            r.output.contains("out") && r.output.contains("err"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_its_timeout() {
        // Ignores SIGTERM, so it takes the SIGKILL after the grace period.
        let r = run(
            &argv(&["/bin/sh", "-c", "trap '' TERM; echo started; sleep 60"]),
            &[],
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(r.exit, Exit::TimedOut);
        assert!(r.duration < Duration::from_secs(30), "{r:?}");
        assert!(r.output.contains("started"));
    }

    /// Whether process `pid` exists (a zombie counts as gone: it runs nothing).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                !state.starts_with('Z')
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn a_cancelled_command_leaves_no_process_of_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The shell ignores SIGTERM and starts a child that outlives it unless the group is
        // killed; both write their pids.
        let script = format!(
            "trap '' TERM; sleep 300 & echo $! >> {p}; echo $$ >> {p}; wait",
            p = pids.display()
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            run_until(
                &argv(&["/bin/sh", "-c", &script]),
                &[],
                Duration::from_secs(600),
                async {
                    let _ = rx.await;
                },
            )
            .await
        });
        let started: Vec<u32> = loop {
            let text = std::fs::read_to_string(&pids).unwrap_or_default();
            let found: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if found.len() == 2 {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            started.iter().all(|p| alive(*p)),
            "both run before the cancel"
        );
        tx.send(()).unwrap();
        let r = running.await.unwrap();
        assert_eq!(r.exit, Exit::Cancelled);
        for pid in started {
            assert!(
                !alive(pid),
                "process {pid} of the group outlived the cancel"
            );
        }
    }

    #[tokio::test]
    async fn output_is_cut_at_4_kib() {
        let r = run(
            &argv(&["/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"]),
            &[],
            Duration::from_secs(10),
        )
        .await;
        assert!(r.succeeded());
        assert_eq!(r.output.len(), OUTPUT_LIMIT);
        assert!(r.truncated);
    }

    #[tokio::test]
    async fn a_missing_program_is_reported() {
        let r = run(
            &argv(&["/nonexistent/program"]),
            &[],
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(r.exit, Exit::NotStarted(_)), "{r:?}");
    }

    #[tokio::test]
    async fn the_environment_is_passed() {
        let r = run(
            &argv(&["/bin/sh", "-c", "printf %s \"$SENTINEL_ALERTNAME\""]),
            &[("SENTINEL_ALERTNAME".into(), "DiskFull".into())],
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(r.output, "DiskFull");
    }
}
