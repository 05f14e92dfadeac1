//! Directory grants: `HOST_DIR:GUEST_DIR[:ro|rw]`, checked when the step is declared.

use std::path::PathBuf;
use std::str::FromStr;

/// One host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory, canonicalized (symlinks resolved) when the grant was parsed.
    pub host: PathBuf,
    /// Where the guest sees it; an absolute guest path such as `/data`.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
}

/// A directory grant that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DirGrantError {
    /// Not `HOST:GUEST[:ro|rw]`.
    #[error("directory grant {0:?} is not of the form HOST_DIR:GUEST_DIR[:ro|rw]")]
    Malformed(String),
    /// The host directory is missing or unreadable.
    #[error("directory grant {grant:?}: host directory {path:?} cannot be opened: {error}")]
    HostDir {
        /// The grant as written.
        grant: String,
        /// The host path.
        path: PathBuf,
        /// Why it cannot be opened.
        error: std::io::Error,
    },
    /// The host path is a file.
    #[error("directory grant {grant:?}: {path:?} is not a directory")]
    NotADirectory {
        /// The grant as written.
        grant: String,
        /// The host path.
        path: PathBuf,
    },
    /// The guest path is relative or climbs.
    #[error(
        "directory grant {grant:?}: guest path {guest:?} must be absolute and must not contain `..` (e.g. /data)"
    )]
    BadGuestPath {
        /// The grant as written.
        grant: String,
        /// The guest path.
        guest: String,
    },
}

impl FromStr for DirGrant {
    type Err = DirGrantError;

    fn from_str(grant: &str) -> Result<Self, Self::Err> {
        let malformed = || DirGrantError::Malformed(grant.to_string());
        // Split from the right: the mode and guest path never contain ':', the host path may.
        let (rest, writable) = match grant.rsplit_once(':') {
            Some((rest, "ro")) => (rest, false),
            Some((rest, "rw")) => (rest, true),
            _ => (grant, false),
        };
        let (host, guest) = rest.rsplit_once(':').ok_or_else(malformed)?;
        if host.is_empty() || guest.is_empty() {
            return Err(malformed());
        }
        if !guest.starts_with('/') || guest.split('/').any(|part| part == "..") {
            return Err(DirGrantError::BadGuestPath {
                grant: grant.into(),
                guest: guest.into(),
            });
        }
        let host_path = PathBuf::from(host);
        let canonical =
            std::fs::canonicalize(&host_path).map_err(|error| DirGrantError::HostDir {
                grant: grant.into(),
                path: host_path.clone(),
                error,
            })?;
        if !canonical.is_dir() {
            return Err(DirGrantError::NotADirectory {
                grant: grant.into(),
                path: host_path,
            });
        }
        Ok(Self {
            host: canonical,
            guest: guest.to_string(),
            writable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes_and_defaults_to_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display();
        let ro: DirGrant = format!("{host}:/data").parse().unwrap();
        assert!(!ro.writable);
        assert_eq!(ro.guest, "/data");
        let rw: DirGrant = format!("{host}:/out:rw").parse().unwrap();
        assert!(rw.writable);
        assert_eq!(rw.host, std::fs::canonicalize(dir.path()).unwrap());
    }

    #[test]
    fn rejects_bad_grants_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display();
        assert!(matches!(
            "nocolon".parse::<DirGrant>(),
            Err(DirGrantError::Malformed(_))
        ));
        assert!(matches!(
            format!("{host}:data").parse::<DirGrant>(),
            Err(DirGrantError::BadGuestPath { .. })
        ));
        assert!(matches!(
            format!("{host}:/a/../b").parse::<DirGrant>(),
            Err(DirGrantError::BadGuestPath { .. })
        ));
        assert!(matches!(
            "/definitely/not/here:/data".parse::<DirGrant>(),
            Err(DirGrantError::HostDir { .. })
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            format!("{}:/data", file.display()).parse::<DirGrant>(),
            Err(DirGrantError::NotADirectory { .. })
        ));
    }
}
