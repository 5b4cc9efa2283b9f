//! Quoting for the remote shell, and the checks a remote path passes before it is used.
//!
//! `ssh host -- a b c` does not pass an argument vector: it joins the words with spaces and
//! hands the line to the remote user's shell. Every word we send is therefore quoted here,
//! the POSIX way (single quotes, with `'` written as `'\''`), which no shell expands. Paths
//! are also checked against the host's configured storage roots, so a corrupted database row
//! or a hostile document cannot make us copy or delete outside them.

use std::path::Path;

use anyhow::{ensure, Result};

/// One word, quoted for a POSIX shell. Plain words (letters, digits, `-_./=:,@%+`) stay
/// bare so command lines remain readable in logs.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A command line of quoted words.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An absolute, normalized path without control characters (a newline would end a remote
/// command line or a line of `sha256sum` output).
pub fn check_path(path: &str) -> Result<()> {
    ensure!(
        !path.chars().any(char::is_control),
        "path {path:?} contains a control character"
    );
    ensure!(path.starts_with('/'), "path {path:?} is not absolute");
    // Checked on the text, not through `Path::components`, which hides `.` and `//`.
    ensure!(
        path == "/"
            || path[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."),
        "path {path:?} is not normalized (no `.`, `..`, `//` or trailing `/`)"
    );
    Ok(())
}

/// `path` is `root` or below one of `roots`, checked component-wise (`/srv/a` does not
/// contain `/srv/ab`).
pub fn check_within(path: &str, roots: &[&str], host: &str) -> Result<()> {
    check_path(path)?;
    ensure!(
        roots
            .iter()
            .any(|r| check_path(r).is_ok() && Path::new(path).starts_with(r)),
        "path {path:?} is outside host {host}'s storage and run directories ({})",
        roots.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh -c` makes of our quoting: the words come back unchanged, nothing runs.
    #[test]
    fn sh_reads_back_every_word_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("pwned");
        let nasty = [
            "plain",
            "",
            "two words",
            "it's",
            "'",
            "''\\'",
            "$(touch CANARY)",
            "`touch CANARY`",
            "; touch CANARY",
            "a\nb",
            "* ? [x] ~ # ! & | < > { } \\ \" $HOME ${HOME}",
            "-n",
        ];
        let nasty: Vec<String> = nasty
            .iter()
            .map(|w| w.replace("CANARY", &canary.display().to_string()))
            .collect();
        let line = format!("printf '%s\\0' {}", join(&nasty));
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success(), "{line}");
        let mut back: Vec<String> = out
            .stdout
            .split(|&b| b == 0)
            .map(|w| String::from_utf8(w.to_vec()).unwrap())
            .collect();
        assert_eq!(back.pop().as_deref(), Some(""), "trailing NUL");
        assert_eq!(back, nasty);
        assert!(!canary.exists(), "a quoted word ran a command");
        assert_eq!(quote("/srv/seal-1/cache"), "/srv/seal-1/cache");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn paths_are_checked_against_roots() {
        let roots = ["/srv/a", "/var/tmp/sealkit"];
        assert!(check_within("/srv/a/cache/s-t01000-1", &roots, "h").is_ok());
        assert!(check_within("/srv/a", &roots, "h").is_ok());
        for bad in [
            "/srv/ab/x",
            "/srv/a/../../etc",
            "/srv/a/./x",
            "srv/a/x",
            "/srv/a//x",
            "/srv/a/x\nrm -rf /",
            "/etc/passwd",
        ] {
            assert!(check_within(bad, &roots, "h").is_err(), "{bad:?}");
        }
        let msg = format!("{}", check_within("/etc", &roots, "pc1").unwrap_err());
        assert!(msg.contains("host pc1"), "{msg}");
    }
}
