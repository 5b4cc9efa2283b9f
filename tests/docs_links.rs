//! The repository stands on its own: every fact a comment cites lives in `docs/`.
//!
//! Comments cite `docs/<file>.md#<anchor>`. This test finds every such citation in `src/` and
//! `tests/` and checks that the file exists and has a heading whose GitHub slug is the anchor,
//! that the links between the docs resolve the same way, that `docs/README.md` lists every
//! document, and that no comment still points at the old, out-of-tree notes by section number.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// GitHub's heading anchor: lower case; letters, digits, `-` and `_` kept; spaces become `-`;
/// everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The slugs of a markdown file's headings (outside fenced code), in order.
fn heading_slugs(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            out.push(slug(line[hashes..].trim().trim_end_matches('#')));
        }
    }
    out
}

/// The documents in `docs/` by file name, with their heading slugs.
fn docs() -> BTreeMap<String, Vec<String>> {
    let dir = root().join("docs");
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&dir).expect("docs/ exists") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            out.insert(name, heading_slugs(&fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

fn is_anchor_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// Every `docs/<file>.md[#<anchor>]` in `text`, with its line number.
fn citations(text: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("docs/") {
            rest = &rest[at + "docs/".len()..];
            let name_len = rest
                .find(|c: char| !is_anchor_char(c))
                .unwrap_or(rest.len());
            let Some(after) = rest[name_len..].strip_prefix(".md") else {
                continue;
            };
            let file = format!("{}.md", &rest[..name_len]);
            let anchor = after.strip_prefix('#').map(|a| {
                let len = a.find(|c: char| !is_anchor_char(c)).unwrap_or(a.len());
                a[..len].to_string()
            });
            out.push((n + 1, file, anchor));
        }
    }
    out
}

/// The comment part of a source line (after `//`), if any.
fn comment(line: &str) -> Option<&str> {
    line.find("//").map(|at| &line[at..])
}

#[test]
fn every_code_citation_names_an_existing_heading() {
    let docs = docs();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let mut bad = Vec::new();
    let mut count = 0;
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for (line, file, anchor) in citations(&text) {
            count += 1;
            let at = format!("{}:{line}", f.strip_prefix(root()).unwrap().display());
            match (docs.get(&file), anchor) {
                (None, _) => bad.push(format!("{at}: docs/{file} does not exist")),
                (Some(slugs), Some(a)) if !slugs.contains(&a) => {
                    bad.push(format!("{at}: docs/{file} has no heading #{a}"))
                }
                _ => {}
            }
        }
    }
    assert!(bad.is_empty(), "broken citations:\n{}", bad.join("\n"));
    // The code cites the docs in dozens of places; finding none means the scan is broken.
    assert!(count >= 50, "only {count} citations found");
}

#[test]
fn no_comment_cites_the_out_of_tree_notes() {
    // Built from pieces so that this file does not match itself.
    let old = [
        ["spec", " §"].concat(),
        ["spec", " a."].concat(),
        ["trap", " b."].concat(),
        ["spec", "'s"].concat(),
        ["shared/", "spec"].concat(),
    ];
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        for (n, line) in fs::read_to_string(f).unwrap().lines().enumerate() {
            let Some(c) = comment(line) else { continue };
            let lower = c.to_lowercase();
            // A section sign is fine when it points into a named standard (FIPS 180-4 §5.3.3).
            let stray_section = c.contains('§') && !c.contains("FIPS") && !c.contains("RFC");
            if old.iter().any(|o| lower.contains(o.as_str())) || stray_section {
                let path = f.strip_prefix(root()).unwrap().display();
                bad.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "comments citing notes outside the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn docs_links_resolve_and_headings_are_unique() {
    let docs = docs();
    let mut bad = Vec::new();
    for (name, slugs) in &docs {
        let mut seen = BTreeSet::new();
        for s in slugs {
            if !seen.insert(s) {
                bad.push(format!("docs/{name}: two headings #{s}"));
            }
        }
        let text = fs::read_to_string(root().join("docs").join(name)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            if target.contains("://") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (if f.is_empty() { name.as_str() } else { f }, Some(a)),
                None => (target, None),
            };
            match (docs.get(file), anchor) {
                (None, _) => bad.push(format!("docs/{name}: link to missing {target}")),
                (Some(s), Some(a)) if !s.iter().any(|x| x == a) => {
                    bad.push(format!("docs/{name}: link to missing heading {target}"))
                }
                _ => {}
            }
        }
    }
    assert!(bad.is_empty(), "broken links in docs/:\n{}", bad.join("\n"));
}

#[test]
fn readme_lists_every_document() {
    let docs = docs();
    let readme = fs::read_to_string(root().join("docs/README.md")).unwrap();
    let missing: Vec<_> = docs
        .keys()
        .filter(|n| *n != "README.md" && !readme.contains(&format!("]({n})")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/README.md does not list {missing:?}"
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("Replica id"), "replica-id");
    assert_eq!(slug("p_aux and t_aux"), "p_aux-and-t_aux");
    assert_eq!(slug("fr32 padding"), "fr32-padding");
    assert_eq!(slug("CommR (Poseidon-2)"), "commr-poseidon-2");
    assert_eq!(
        citations("see docs/sdr-porep.md#labels, and docs/chain.md."),
        vec![
            (1, "sdr-porep.md".into(), Some("labels".into())),
            (1, "chain.md".into(), None)
        ]
    );
}
