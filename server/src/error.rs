//! Why pipescope could not start or keep running, in words that say what to change.

use std::{io, net::SocketAddr, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },

    #[error("the data directory {path} {what}: {source}; choose another with --data-dir or PIPESCOPE_DATA_DIR")]
    DataDir {
        path: String,
        what: String,
        source: io::Error,
    },

    #[error("pipescope's own database could not start: {message}")]
    Postgres { message: String },

    #[error("cannot reach the database at {url}: {reason}; check DATABASE_URL, or unset it to let pipescope run its own PostgreSQL")]
    Database { url: String, reason: String },

    #[error("the database schema could not be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("{0}")]
    Config(String),

    #[error("the server stopped unexpectedly: {0}")]
    Serve(io::Error),
}

impl StartupError {
    pub fn data_dir(path: &Path, what: &str, source: io::Error) -> Self {
        StartupError::DataDir {
            path: path.display().to_string(),
            what: what.to_string(),
            source,
        }
    }

    pub fn listen(addr: SocketAddr, error: &io::Error) -> Self {
        let reason = match error.kind() {
            io::ErrorKind::AddrInUse => {
                "the address is already in use (another pipescope?); choose another with --listen"
                    .to_string()
            }
            io::ErrorKind::AddrNotAvailable => {
                "no network interface has that address; use 127.0.0.1 or 0.0.0.0".to_string()
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need privileges); choose a port above 1024"
                    .to_string()
            }
            _ => error.to_string(),
        };
        StartupError::Listen { addr, reason }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            let hidden = if credentials.contains(':') {
                ":***"
            } else {
                ""
            };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://me:s3cret@db:5432/pipescope?sslmode=require"),
            "postgres://me:***@db:5432/pipescope?sslmode=require"
        );
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
