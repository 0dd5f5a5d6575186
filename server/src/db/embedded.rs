//! pipescope's own PostgreSQL, for a machine with nothing configured.
//!
//! Layout of the data directory:
//! ```text
//! <data-dir>/postgres/      the cluster (PGDATA), created by initdb on first start
//! <data-dir>/run/           the Unix socket; no TCP port is opened
//! <data-dir>/postgres.log   the server's own log, read back when it fails to start
//! ```
//! PostgreSQL refuses to run as root, so when pipescope runs as root the cluster belongs to the
//! `postgres` system user and the server runs as that user.

use std::{
    fs,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::{Pid, User},
};
use sqlx::postgres::PgConnectOptions;
use tokio::process::{Child, Command};

use crate::error::StartupError;

/// Name of the database pipescope creates inside its own cluster.
pub const DATABASE: &str = "pipescope";
const SUPERUSER: &str = "postgres";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running PostgreSQL owned by this process. Stop it with [`EmbeddedPostgres::stop`]; dropping
/// it only asks it to shut down.
pub struct EmbeddedPostgres {
    child: Option<Child>,
    pgdata: PathBuf,
    socket_dir: PathBuf,
}

impl EmbeddedPostgres {
    /// Initialises the cluster when the data directory has none, then starts the server and
    /// waits until it accepts connections.
    pub async fn start(data_dir: &Path, bin_dir: Option<&Path>) -> Result<Self, StartupError> {
        let bin = find_bin_dir(bin_dir)?;
        let owner = ClusterOwner::current()?;
        let pgdata = data_dir.join("postgres");
        let socket_dir = data_dir.join("run");
        let log_path = data_dir.join("postgres.log");

        prepare_dir(data_dir, 0o755, &owner)?;
        prepare_dir(&socket_dir, 0o700, &owner)?;
        if !pgdata.join("PG_VERSION").exists() {
            prepare_dir(&pgdata, 0o700, &owner)?;
            init_cluster(&bin, &pgdata, &owner).await?;
        }

        stop_orphan(&pgdata).await;

        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| StartupError::data_dir(&log_path, "cannot open the PostgreSQL log", e))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log
            .try_clone()
            .map_err(|e| StartupError::data_dir(&log_path, "cannot open the PostgreSQL log", e))?;

        let mut command = owner.command(&bin.join("postgres"));
        command
            .arg("-D")
            .arg(&pgdata)
            .arg("-k")
            .arg(&socket_dir)
            // Unix socket only: nothing outside this machine (or this user) can connect.
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "unix_socket_permissions=0700",
            ])
            .arg("-c")
            .arg(format!(
                "shared_buffers={}MB",
                shared_buffers_mb(fs::read_to_string("/proc/meminfo").ok().as_deref())
            ))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C in the terminal reaches pipescope only, which then
            // shuts the database down after the last request has been answered.
            .process_group(0);
        stop_with_parent(&mut command);
        let child = command.spawn().map_err(|e| StartupError::Postgres {
            message: format!("cannot start {}: {e}", bin.join("postgres").display()),
        })?;

        let mut postgres = Self {
            child: Some(child),
            pgdata,
            socket_dir,
        };
        if let Err(error) = postgres.wait_ready(&log_path, log_start).await {
            postgres.stop().await;
            return Err(error);
        }
        Ok(postgres)
    }

    /// Connection options for a database of this cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(SUPERUSER)
            .database(database)
    }

    /// The cluster's folder.
    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Fast shutdown (SIGINT): open transactions are rolled back, everything committed is on
    /// disk. Waits for the server to exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(_) => tracing::info!("PostgreSQL stopped"),
            Err(_) => {
                tracing::warn!("PostgreSQL did not stop within {STOP_TIMEOUT:?}; killing it");
                let _ = child.kill().await;
            }
        }
    }

    async fn wait_ready(&mut self, log_path: &Path, log_start: u64) -> Result<(), StartupError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let options = self.connect_options(SUPERUSER);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(StartupError::Postgres {
                        message: format!(
                            "PostgreSQL exited during start-up ({status}): {}",
                            explain_log(&read_log_from(log_path, log_start), &self.pgdata)
                        ),
                    });
                }
            }
            match sqlx::ConnectOptions::connect(&options).await {
                Ok(conn) => {
                    let _ = sqlx::Connection::close(conn).await;
                    return Ok(());
                }
                Err(error) if Instant::now() > deadline => {
                    return Err(StartupError::Postgres {
                        message: format!(
                        "PostgreSQL did not accept connections within {READY_TIMEOUT:?}: {error}"
                    ),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        // Last resort when `stop` was not awaited (a panic, an early return): ask for a fast
        // shutdown without waiting for it.
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
    }
}

/// The user the cluster belongs to and the server runs as.
struct ClusterOwner {
    /// Set when pipescope runs as root and must hand the cluster to an unprivileged user.
    switch_to: Option<User>,
}

impl ClusterOwner {
    fn current() -> Result<Self, StartupError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(Self { switch_to: None });
        }
        match User::from_name(SUPERUSER) {
            Ok(Some(user)) => Ok(Self {
                switch_to: Some(user),
            }),
            _ => Err(StartupError::Postgres {
                message:
                    "PostgreSQL refuses to run as root and there is no `postgres` user to run \
                          it as; run pipescope as an ordinary user, create the `postgres` user \
                          (installing Debian's postgresql package does), or set DATABASE_URL"
                        .into(),
            }),
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some(user) = &self.switch_to {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        command
    }

    fn chown(&self, path: &Path) -> nix::Result<()> {
        match &self.switch_to {
            Some(user) => nix::unistd::chown(path, Some(user.uid), Some(user.gid)),
            None => Ok(()),
        }
    }
}

fn prepare_dir(path: &Path, mode: u32, owner: &ClusterOwner) -> Result<(), StartupError> {
    let unusable = |what: &str, e: std::io::Error| StartupError::data_dir(path, what, e);
    if path.exists() && !path.is_dir() {
        return Err(StartupError::data_dir(
            path,
            "is not a directory",
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }
    fs::create_dir_all(path).map_err(|e| unusable("cannot be created", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| unusable("cannot be given the right permissions", e))?;
    owner
        .chown(path)
        .map_err(|e| unusable("cannot be handed to the postgres user", e.into()))?;
    Ok(())
}

async fn init_cluster(bin: &Path, pgdata: &Path, owner: &ClusterOwner) -> Result<(), StartupError> {
    tracing::info!(
        "initialising a new PostgreSQL cluster in {}",
        pgdata.display()
    );
    let output = owner
        .command(&bin.join("initdb"))
        .arg("-D")
        .arg(pgdata)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| StartupError::Postgres {
            message: format!("cannot run {}: {e}", bin.join("initdb").display()),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut message = format!(
        "initdb failed for {}: {}",
        pgdata.display(),
        stderr.trim().lines().last().unwrap_or("no output")
    );
    if owner.switch_to.is_some() && stderr.contains("Permission denied") {
        message.push_str(
            "; PostgreSQL runs as the `postgres` user, so every folder above the data directory \
             must be searchable by it: choose another --data-dir (e.g. under /var/lib or /tmp)",
        );
    }
    Err(StartupError::Postgres { message })
}

/// Folder with `initdb` and `postgres`: the flag, else the newest /usr/lib/postgresql/<v>/bin,
/// else PATH.
fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, StartupError> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = explicit {
        return if has_programs(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(StartupError::Postgres {
                message: format!(
                    "{} does not contain PostgreSQL's initdb and postgres programs",
                    dir.display()
                ),
            })
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_programs(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| has_programs(dir))
        .ok_or_else(|| StartupError::Postgres {
            message:
                "PostgreSQL's server programs (initdb, postgres) were not found; install them \
                      (Debian: apt-get install postgresql), point --postgres-bin at them, or set \
                      DATABASE_URL to use an existing server"
                    .into(),
        })
}

/// A PostgreSQL left running on this data directory by a pipescope that was killed outright
/// (the kernel asks it to stop, but it may still be shutting down): wait for it, and stop it if
/// it lingers. One whose parent is a live pipescope belongs to another instance and is left alone
/// (starting then fails with a message saying so).
async fn stop_orphan(pgdata: &Path) {
    let Some(pid) = fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
    else {
        return;
    };
    let alive = |pid: i32| Path::new(&format!("/proc/{pid}")).exists();
    let parent = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse::<i32>()
                .ok()
        });
    let Some(parent) = parent else {
        return; // not running: PostgreSQL removes a stale pid file itself
    };
    let parent_name = fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    if parent_name.trim() == "pipescope" {
        return;
    }
    tracing::warn!("stopping PostgreSQL {pid} left running by a pipescope that did not shut down");
    let started = Instant::now();
    let mut signalled = false;
    while alive(pid) && started.elapsed() < STOP_TIMEOUT {
        // The parent-death signal has usually started its shutdown already; give it a moment.
        if !signalled && started.elapsed() > Duration::from_secs(2) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            signalled = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ask the kernel to stop PostgreSQL if pipescope dies without stopping it (SIGKILL, a crash),
/// so a stale server never holds the data directory.
#[allow(unsafe_code)]
fn stop_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes one
    // async-signal-safe system call (prctl), allocating nothing.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
        });
    }
}

/// PostgreSQL's shared buffers for pipescope's own cluster, given /proc/meminfo: a quarter of the
/// memory, from PostgreSQL's default 128 MB up to 512 MB. With 128 MB, ingest at 1,000,000 stored
/// steps cost PostgreSQL 1.5–1.8× the CPU a step it cost on an empty store (index pages written
/// back and read again: the step indexes lead with a random execution id); with 512 MB the same
/// as empty (BENCHMARKS.md, "Ingest of whole LLM steps").
fn shared_buffers_mb(meminfo: Option<&str>) -> u64 {
    let total_kb = meminfo.and_then(|text| {
        text.lines().find_map(|line| {
            let kb = line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
            kb.trim().parse::<u64>().ok()
        })
    });
    total_kb.map_or(128, |kb| (kb / 1024 / 4).clamp(128, 512))
}

fn read_log_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let _ = file.read_to_string(&mut text);
    }
    text
}

/// The useful part of PostgreSQL's start-up log.
fn explain_log(log: &str, pgdata: &Path) -> String {
    if log.contains("lock file") && log.contains("already exists") {
        return format!(
            "another PostgreSQL is already running on {} (is another pipescope using the same \
             data directory? stop it or choose another --data-dir)",
            pgdata.display()
        );
    }
    let causes: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("FATAL") || line.contains("ERROR") || line.contains("HINT"))
        .collect();
    if causes.is_empty() {
        return "see postgres.log in the data directory".to_string();
    }
    causes.join(" ").chars().take(600).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_buffers_are_a_quarter_of_the_memory_within_bounds() {
        let meminfo = |kb: u64| format!("MemTotal:       {kb} kB\nMemFree:         1000 kB\n");
        assert_eq!(shared_buffers_mb(Some(&meminfo(24 * 1024 * 1024))), 512);
        assert_eq!(shared_buffers_mb(Some(&meminfo(1024 * 1024))), 256);
        assert_eq!(shared_buffers_mb(Some(&meminfo(256 * 1024))), 128);
        assert_eq!(shared_buffers_mb(Some("no such line")), 128);
        assert_eq!(shared_buffers_mb(None), 128);
    }

    #[test]
    fn a_held_lock_file_is_explained() {
        let log = "FATAL:  lock file \"postmaster.pid\" already exists\nHINT:  Is another postmaster (PID 7) running in data directory \"/x\"?";
        let message = explain_log(log, Path::new("/x/postgres"));
        assert!(message.contains("another pipescope"), "{message}");
    }

    #[test]
    fn other_failures_keep_postgres_own_words() {
        let log = "LOG: starting\nFATAL:  could not create shared memory segment\n";
        assert!(explain_log(log, Path::new("/x")).contains("shared memory"));
        assert_eq!(
            explain_log("", Path::new("/x")),
            "see postgres.log in the data directory"
        );
    }

    #[test]
    fn an_explicit_bin_dir_without_programs_is_rejected() {
        let error = find_bin_dir(Some(Path::new("/nonexistent"))).expect_err("must reject");
        assert!(error.to_string().contains("/nonexistent"));
    }
}
