//! Running the real `hearth` binary from a test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `hearth` binary with none of the caller's `HEARTH_*` settings.
pub fn hearth() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    // Keep the tests independent of the caller's environment.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HEARTH_") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    command
}

/// A running `hearth serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGTERM, then wait for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.child.wait().unwrap().success()
    }

    /// SIGKILL, and reap the process.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Start `hearth serve` and wait for it to log its listening address.
pub fn serve(mut command: Command) -> Server {
    let child = command
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth");
    // Owned by the guard from here on, so the process is killed and reaped however we leave.
    let mut server = Server {
        child,
        base: String::new(),
    };
    let stderr = BufReader::new(server.child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("address=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap();
            server.base = format!("http://{addr}");
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "no listening address in:\n{seen}"
        );
    }
    panic!("hearth exited before listening:\n{seen}");
}
