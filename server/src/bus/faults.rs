//! The database's faults that go away, told apart from refusals that do not. Numbering and
//! writing events wait out a fault (the events stay in memory, in order) instead of treating it
//! as the events' fault: a full disk, a server restarting or failing over (read-only for a
//! while), too many connections. Every wait is visible while it lasts ([`Waits`], read by
//! `/healthz`, the page's health and `/metrics`) and told in the log when it starts and ends.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

/// A fault the database recovers from, by what an operator would do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// No connection: the server is down, restarting, or the network is cut (SQLSTATE 08…, I/O
    /// errors, a pool that cannot connect in time).
    Unreachable,
    /// The server is shutting down or starting up (57P01–57P03).
    Restarting,
    /// No space left for data or WAL (53100).
    DiskFull,
    /// The server ran out of memory (53200).
    OutOfMemory,
    /// `max_connections` reached (53300).
    TooManyConnections,
    /// Another configured limit (53000, 53400).
    ResourceLimit,
    /// The server accepts reads only: a standby, or a primary just after a failover (25006).
    ReadOnly,
    /// A storage I/O error (58030).
    StorageIo,
    /// Two writers conflicted and one was rolled back (40001, 40P01): the next try succeeds.
    Conflict,
}

impl Fault {
    /// The fault behind `error`; `None` when the database refuses the statement itself (bad
    /// data, a broken constraint), which waiting does not change.
    pub fn of(error: &sqlx::Error) -> Option<Fault> {
        match error {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
                Some(Fault::Unreachable)
            }
            sqlx::Error::Database(e) => e.code().and_then(|code| Fault::of_code(&code)),
            _ => None,
        }
    }

    /// The fault an SQLSTATE names, if it is one that goes away.
    pub fn of_code(code: &str) -> Option<Fault> {
        Some(match code {
            "53100" => Fault::DiskFull,
            "53200" => Fault::OutOfMemory,
            "53300" => Fault::TooManyConnections,
            "25006" => Fault::ReadOnly,
            "58030" => Fault::StorageIo,
            "40001" | "40P01" => Fault::Conflict,
            "57P01" | "57P02" | "57P03" => Fault::Restarting,
            _ if code.starts_with("08") => Fault::Unreachable,
            _ if code.starts_with("53") => Fault::ResourceLimit,
            _ => return None,
        })
    }

    /// What it means and what to do, for a person reading the log or the health.
    pub fn explain(self) -> &'static str {
        match self {
            Fault::Unreachable => "PostgreSQL cannot be reached; check that it is running",
            Fault::Restarting => "PostgreSQL is restarting",
            Fault::DiskFull => "PostgreSQL's disk is full; free space on it",
            Fault::OutOfMemory => "PostgreSQL is out of memory",
            Fault::TooManyConnections => {
                "PostgreSQL has no connection left (max_connections); close other clients or \
                 raise it"
            }
            Fault::ResourceLimit => "PostgreSQL hit a configured limit",
            Fault::ReadOnly => {
                "PostgreSQL accepts reads only (a standby, or a failover in progress); point \
                 pipescope at the primary"
            }
            Fault::StorageIo => "PostgreSQL cannot read or write its files",
            Fault::Conflict => "a write conflicted with another and is tried again",
        }
    }
}

/// What waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiter {
    /// Events are numbered from the database's sequence: while this waits, nothing is
    /// delivered live either.
    Numbering,
    /// Numbered events are delivered live and wait in memory to be written.
    Writing,
}

impl Waiter {
    fn index(self) -> usize {
        match self {
            Waiter::Numbering => 0,
            Waiter::Writing => 1,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Waiter::Numbering => "numbering events",
            Waiter::Writing => "writing events",
        }
    }
}

/// One wait while it lasts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wait {
    pub waiter: Waiter,
    /// `None`: the database refused in a way not known to pass (numbering cannot refuse an
    /// event, so it keeps trying and says so).
    pub fault: Option<Fault>,
    pub since: DateTime<Utc>,
    /// The last error, as the database said it.
    pub error: String,
}

impl Wait {
    /// One line: what waits, since when, why, and what to do.
    pub fn describe(&self) -> String {
        format!(
            "{} has waited since {} ({}): {}",
            self.waiter.label(),
            self.since.format("%H:%M:%S UTC"),
            self.fault
                .map(Fault::explain)
                .unwrap_or("PostgreSQL refuses it; see the error"),
            self.error
        )
    }
}

/// The waits going on now, one slot per [`Waiter`]. Clones share them.
#[derive(Clone)]
pub struct Waits {
    now: Arc<watch::Sender<[Option<Wait>; 2]>>,
}

impl Default for Waits {
    fn default() -> Self {
        Self {
            now: Arc::new(watch::channel([None, None]).0),
        }
    }
}

impl Waits {
    /// `waiter` failed with `error` and will try again: starts its wait, or keeps it with the
    /// latest error (its start stays).
    pub fn failed(&self, waiter: Waiter, error: &sqlx::Error) {
        let fault = Fault::of(error);
        let error = error.to_string();
        self.now.send_if_modified(|now| {
            let slot = &mut now[waiter.index()];
            match slot {
                Some(wait) if wait.fault == fault => {
                    wait.error = error;
                    false
                }
                _ => {
                    let since = slot.as_ref().map_or_else(Utc::now, |w| w.since);
                    *slot = Some(Wait {
                        waiter,
                        fault,
                        since,
                        error,
                    });
                    true
                }
            }
        });
    }

    /// `waiter` succeeded: its wait, if any, is over.
    pub fn succeeded(&self, waiter: Waiter) {
        self.now
            .send_if_modified(|now| now[waiter.index()].take().is_some());
    }

    /// The waits going on now.
    pub fn current(&self) -> Vec<Wait> {
        self.now.borrow().iter().flatten().cloned().collect()
    }

    /// Changes, for the task that tells them in the log.
    pub fn watch(&self) -> watch::Receiver<[Option<Wait>; 2]> {
        self.now.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_that_pass_are_told_from_refusals() {
        for (code, fault) in [
            ("53100", Some(Fault::DiskFull)),
            ("53200", Some(Fault::OutOfMemory)),
            ("53300", Some(Fault::TooManyConnections)),
            ("53400", Some(Fault::ResourceLimit)),
            ("25006", Some(Fault::ReadOnly)),
            ("58030", Some(Fault::StorageIo)),
            ("40001", Some(Fault::Conflict)),
            ("40P01", Some(Fault::Conflict)),
            ("57P01", Some(Fault::Restarting)),
            ("57P03", Some(Fault::Restarting)),
            ("08006", Some(Fault::Unreachable)),
            ("08P01", Some(Fault::Unreachable)),
            // Refusals of the statement: waiting would not change them.
            ("23505", None),
            ("22P02", None),
            ("54000", None),
            ("57014", None),
            ("42P01", None),
        ] {
            assert_eq!(Fault::of_code(code), fault, "{code}");
        }
        assert_eq!(
            Fault::of(&sqlx::Error::PoolTimedOut),
            Some(Fault::Unreachable)
        );
        assert_eq!(Fault::of(&sqlx::Error::RowNotFound), None);
    }

    #[test]
    fn a_wait_keeps_its_start_and_ends_on_success() {
        let waits = Waits::default();
        let mut changes = waits.watch();
        waits.failed(Waiter::Writing, &sqlx::Error::PoolTimedOut);
        assert!(changes.has_changed().expect("open"));
        let first = changes.borrow_and_update()[1].clone().expect("a wait");
        assert_eq!(first.fault, Some(Fault::Unreachable));
        // The same fault again: no change to tell, the start stays.
        waits.failed(Waiter::Writing, &sqlx::Error::PoolTimedOut);
        assert!(!changes.has_changed().expect("open"));
        assert_eq!(waits.current()[0].since, first.since);
        // Another kind: told, with the first start.
        waits.failed(Waiter::Writing, &sqlx::Error::RowNotFound);
        let second = changes.borrow_and_update()[1].clone().expect("a wait");
        assert_eq!((second.fault, second.since), (None, first.since));
        assert!(second
            .describe()
            .starts_with("writing events has waited since"));
        waits.succeeded(Waiter::Writing);
        assert!(changes.has_changed().expect("open"));
        assert!(waits.current().is_empty());
        // Nothing waited: nothing to tell.
        changes.borrow_and_update();
        waits.succeeded(Waiter::Numbering);
        assert!(!changes.has_changed().expect("open"));
    }
}
