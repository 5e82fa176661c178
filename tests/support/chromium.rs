//! Headless Chromium (Debian's `chromium`) for tests of the pages ipfs-sentinel serves: the DOM
//! after scripts ran, screenshots, and every console message the page logged.
//!
//! Each browser gets a fresh profile and the flags that keep it from calling anywhere
//! (no background networking, component updates or sync), so it talks only to the URL given.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The longest one Chromium run may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A headless Chromium with its own profile.
pub struct Chromium {
    profile: TempDir,
}

/// What one Chromium run saw.
pub struct Visit {
    /// Standard output: the DOM for `--dump-dom`.
    pub stdout: String,
    /// Every message the page wrote to its console (errors, uncaught exceptions, logs).
    pub console: Vec<String>,
}

impl Default for Chromium {
    fn default() -> Self {
        Self::new()
    }
}

impl Chromium {
    /// A browser with a fresh `--user-data-dir`.
    pub fn new() -> Chromium {
        Chromium {
            profile: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, extra: &[String], url: &str) -> Visit {
        let log = self.profile.path().join("chromium.log");
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .args(extra)
            .arg(url)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = command
            .spawn()
            .expect("chromium (Debian's chromium package; the README's test command installs it)");
        // Read stdout on a thread so a large DOM cannot block the browser.
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut out, &mut text).ok();
            text
        });
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within {RUN_LIMIT:?} on {url}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stdout = reader.join().unwrap();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            status.success(),
            "chromium failed on {url}: {status}\n{stderr}"
        );
        Visit {
            stdout,
            console: stderr
                .lines()
                .filter(|l| l.contains(":CONSOLE"))
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Loads `url`, lets its scripts run, and returns the DOM as HTML.
    pub fn dump_dom(&self, url: &str) -> Visit {
        self.run(&["--dump-dom".to_owned()], url)
    }

    /// Loads `url` in a `width` x `height` window and saves a PNG of it to `png`; `dark`
    /// makes the system's colour scheme dark.
    pub fn screenshot(
        &self,
        url: &str,
        png: &Path,
        (width, height): (u32, u32),
        dark: bool,
    ) -> Visit {
        let mut args = vec![
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".to_owned(),
        ];
        if dark {
            args.push("--force-dark-mode".to_owned());
        }
        let visit = self.run(&args, url);
        let bytes = std::fs::read(png).expect("chromium wrote the screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            png.display()
        );
        visit
    }
}
