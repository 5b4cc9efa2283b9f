//! Where a sector's files are: a storage path on this machine (`/srv/seal`) or on a remote
//! host (`ssh://root@pc1-box:2222/srv/seal`).
//!
//! Two hosts may well use the same directory names, so a path alone does not name a place;
//! the host is part of every location the database records. Local locations stay plain
//! paths, which keeps repositories from before remote workers valid.

use std::fmt;

use anyhow::{Context, Result};

const SCHEME: &str = "ssh://";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The worker's `host_id` (`root@pc1:2222`); empty for this machine.
    pub host: String,
    /// Absolute path on that host.
    pub path: String,
}

impl Location {
    pub fn new(host: &str, path: &str) -> Location {
        Location {
            host: host.to_string(),
            path: path.to_string(),
        }
    }

    pub fn parse(s: &str) -> Result<Location> {
        match s.strip_prefix(SCHEME) {
            None => Ok(Location::new("", s)),
            Some(rest) => {
                let at = rest
                    .find('/')
                    .with_context(|| format!("location {s:?} has no path"))?;
                Ok(Location::new(&rest[..at], &rest[at..]))
            }
        }
    }

    pub fn is_local(&self) -> bool {
        self.host.is_empty()
    }

    /// The same host, another path on it.
    pub fn with_path(&self, path: &str) -> Location {
        Location::new(&self.host, path)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.is_empty() {
            f.write_str(&self.path)
        } else {
            write!(f, "{SCHEME}{}{}", self.host, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "/srv/seal",
            "ssh://root@pc1:2222/srv/seal",
            "ssh://pc1/a b/c",
        ] {
            assert_eq!(Location::parse(s).unwrap().to_string(), s);
        }
        let l = Location::parse("ssh://root@pc1:2222/srv/seal").unwrap();
        assert_eq!(
            (l.host.as_str(), l.path.as_str()),
            ("root@pc1:2222", "/srv/seal")
        );
        assert!(Location::parse("/x").unwrap().is_local());
        assert!(Location::parse("ssh://nohostpath").is_err());
    }
}
