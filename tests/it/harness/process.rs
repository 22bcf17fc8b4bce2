//! The real `mesos-dns` binary as a child process, and free ports.

use std::fmt;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_mesos-dns");

/// A port free (at this moment) for both UDP and TCP on 127.0.0.1.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A loopback address nothing listens on (connections are refused).
pub fn dead_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// `mesos-dns` with `args`, without the caller's `RUST_LOG` and
/// `RUST_BACKTRACE`, stdin empty.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("RUST_LOG").env_remove("RUST_BACKTRACE").stdin(Stdio::null());
    c
}

/// A child process that is killed (and reaped) when dropped, so a failed
/// assertion never leaks a server. It is also killed when the thread that
/// started it ends (parent-death signal), so nothing outlives a test
/// process that is killed.
pub struct Proc {
    /// The child, and its exit status once it has been reaped.
    child: Mutex<(Child, Option<ExitStatus>)>,
    id: u32,
}

impl Proc {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc::try_spawn(cmd).unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// Spawns `cmd`, unless it cannot be run.
    pub fn try_spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(Proc { id: child.id(), child: Mutex::new((child, None)) })
    }

    fn lock(&self) -> MutexGuard<'_, (Child, Option<ExitStatus>)> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its piped stdout and stderr, taken.
    pub fn take_output(&self) -> (ChildStdout, ChildStderr) {
        let mut c = self.lock();
        (c.0.stdout.take().unwrap(), c.0.stderr.take().unwrap())
    }

    /// Its exit status, if it has exited (it is reaped then).
    pub fn try_wait(&self) -> Option<ExitStatus> {
        let mut c = self.lock();
        if c.1.is_none() {
            c.1 = c.0.try_wait().unwrap();
        }
        c.1
    }

    /// Wait for the exit, at most `limit`.
    pub fn wait_for_exit(&self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the running process.
    pub fn signal(&self, sig: i32) {
        let c = self.lock();
        assert!(c.1.is_none(), "signal {sig} to a process that has exited");
        let pid = i32::try_from(self.id).unwrap();
        // SAFETY: kill(2) on our own child's pid, not reaped (the lock is
        // held, so it cannot be reaped meanwhile).
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let c = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        if c.1.is_none() {
            let _ = c.0.kill();
            let _ = c.0.wait();
        }
    }
}

/// What a finished run printed.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The non-empty lines of stderr.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    /// Exactly one non-empty line on stderr, no panic; that line.
    pub fn one_error_line(&self) -> &str {
        self.no_panic();
        let lines = self.error_lines();
        assert_eq!(lines.len(), 1, "want one error line: {self:?}");
        lines[0]
    }

    pub fn no_panic(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains("panicked"), "{self:?}");
            assert!(!text.contains("RUST_BACKTRACE"), "{self:?}");
        }
    }
}

/// Run the binary to completion (killed after 20 s: a test that expects an
/// exit must not hang on a server that started instead).
pub fn run(args: &[&str]) -> Run {
    let proc = Proc::spawn(command(args).stdout(Stdio::piped()).stderr(Stdio::piped()));
    let (mut out, mut err) = proc.take_output();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = proc.wait_for_exit(Duration::from_secs(20));
    drop(proc); // kills it if still running, so the readers finish
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let Some(status) = status else {
        panic!("mesos-dns {args:?} did not exit within 20 s; stderr:\n{stderr}");
    };
    Run { status, stdout, stderr }
}

/// The binary serving: started on a config file of its own, its stderr
/// kept in a file; killed on drop.
pub struct Server {
    pub proc: Proc,
    /// Holds `config.json` and `stderr.log`.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `mesos-dns -config=<config> <args>` with `env` set.
    pub fn start(config: &serde_json::Value, args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "config.json", &config.to_string());
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = command(&[&format!("-config={path}")]);
        cmd.args(args).envs(env.iter().copied()).stdout(Stdio::null()).stderr(stderr);
        Server { proc: Proc::spawn(&mut cmd), dir }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    /// What it wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// Write `text` as `dir/name`; its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}
