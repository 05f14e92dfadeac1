//! Directory grants: `HOST_DIR:GUEST_DIR[:ro|rw[,quota=SIZE][,files=N]]`, checked when the
//! step is declared.

use std::path::PathBuf;
use std::str::FromStr;

use super::quota::Quota;

/// One host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory, canonicalized (symlinks resolved) when the grant was parsed.
    pub host: PathBuf,
    /// Where the guest sees it; an absolute guest path such as `/data`.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
    /// What one attempt may add to it, when writable.
    pub quota: Quota,
}

/// A directory grant that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DirGrantError {
    /// Not `HOST:GUEST[:ro|rw]`.
    #[error("directory grant {0:?} is not of the form HOST_DIR:GUEST_DIR[:ro|rw]")]
    Malformed(String),
    /// An option after the mode that is not `quota=SIZE` or `files=N`, or a quota on a
    /// read-only grant.
    #[error(
        "directory grant {grant:?}: {option:?} is not an option here: after `rw` come `quota=SIZE` (e.g. quota=256MiB) and `files=N`, and a read-only grant takes none"
    )]
    BadOption {
        /// The grant as written.
        grant: String,
        /// The option.
        option: String,
    },
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
        let (rest, writable, options) = match grant.rsplit_once(':') {
            Some((rest, mode)) => {
                let mut options = mode.split(',');
                match options.next() {
                    Some("ro") => (rest, false, options.collect::<Vec<_>>()),
                    Some("rw") => (rest, true, options.collect()),
                    _ => (grant, false, Vec::new()),
                }
            }
            None => (grant, false, Vec::new()),
        };
        let mut quota = Quota::default();
        for option in options {
            let bad = || DirGrantError::BadOption {
                grant: grant.into(),
                option: option.into(),
            };
            match option.split_once('=') {
                Some(("quota", size)) if writable => {
                    quota.bytes = crate::limits::parse_size(size).map_err(|_| bad())?;
                }
                Some(("files", n)) if writable => {
                    quota.files = n.trim().parse().map_err(|_| bad())?;
                }
                _ => return Err(bad()),
            }
        }
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
            quota,
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
    fn a_writable_grant_takes_a_quota() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display();
        let rw: DirGrant = format!("{host}:/out:rw").parse().unwrap();
        assert_eq!(rw.quota, Quota::default());
        let rw: DirGrant = format!("{host}:/out:rw,quota=1MiB,files=10")
            .parse()
            .unwrap();
        assert_eq!(
            rw.quota,
            Quota {
                bytes: 1 << 20,
                files: 10
            }
        );
        for bad in [
            "rw,quota=lots",
            "rw,files=-1",
            "rw,color=red",
            "ro,quota=1MiB",
        ] {
            let err = format!("{host}:/out:{bad}")
                .parse::<DirGrant>()
                .unwrap_err();
            assert!(
                matches!(err, DirGrantError::BadOption { .. }),
                "{bad}: {err}"
            );
        }
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
