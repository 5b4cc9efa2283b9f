//! Storage paths: Lotus's `sectorstore.json` metadata, free space, the sector file layout
//! (`<path>/{unsealed,sealed,cache}/s-t0<miner>-<n>`), moving a sector between paths, and
//! Finalize's cache trimming.
//!
//! The metadata file uses Lotus's field names, so a path attached to lotus-miner can be
//! attached here unchanged and the other way round.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

pub const META_FILE: &str = "sectorstore.json";
pub const FILE_TYPES: [&str; 5] = ["unsealed", "sealed", "cache", "update", "update-cache"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct StoreMeta {
    #[serde(rename = "ID")]
    pub id: String,
    pub weight: u64,
    pub can_seal: bool,
    pub can_store: bool,
    #[serde(default)]
    pub max_storage: u64,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub allow_to: Vec<String>,
    #[serde(default)]
    pub allow_types: Vec<String>,
    #[serde(default)]
    pub deny_types: Vec<String>,
    #[serde(default)]
    pub allow_miners: Vec<String>,
    #[serde(default)]
    pub deny_miners: Vec<String>,
}

/// A random version-4 UUID for a new path's ID, as Lotus writes them.
fn uuid() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hex::encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Creates the path's layout and a `sectorstore.json` (weight 10, as `storage attach --init`)
/// unless it has one; returns its metadata.
pub fn ensure_path(path: &Path, seal: bool, store: bool) -> Result<StoreMeta> {
    for t in FILE_TYPES {
        fs::create_dir_all(path.join(t))
            .with_context(|| format!("cannot create {}", path.join(t).display()))?;
    }
    if path.join(META_FILE).exists() {
        return read_meta(path);
    }
    let meta = StoreMeta {
        id: uuid(),
        weight: 10,
        can_seal: seal,
        can_store: store,
        max_storage: 0,
        groups: vec![],
        allow_to: vec![],
        allow_types: vec![],
        deny_types: vec![],
        allow_miners: vec![],
        deny_miners: vec![],
    };
    write_meta(path, &meta)?;
    Ok(meta)
}

pub fn write_meta(path: &Path, meta: &StoreMeta) -> Result<()> {
    let text = serde_json::to_string_pretty(meta)?;
    crate::fsutil::write_atomic(&path.join(META_FILE), text.as_bytes())
}

pub fn read_meta(path: &Path) -> Result<StoreMeta> {
    let f = path.join(META_FILE);
    let text = fs::read_to_string(&f).with_context(|| {
        format!(
            "storage path {} is missing or unreadable ({META_FILE})",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", f.display()))
}

/// Bytes available for new sector data: free filesystem space, capped by MaxStorage minus
/// what the path already holds (Lotus's rule).
pub fn available(path: &Path, meta: &StoreMeta) -> Result<u64> {
    let st = nix::sys::statvfs::statvfs(path)
        .map_err(|e| anyhow::anyhow!("cannot stat storage path {}: {e}", path.display()))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if meta.max_storage == 0 {
        return Ok(free);
    }
    Ok(free.min(meta.max_storage.saturating_sub(disk_usage(path))))
}

fn disk_usage(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    if md.is_dir() {
        fs::read_dir(p)
            .map(|d| d.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else {
        md.blocks() * 512
    }
}

/// `s-t0<miner>-<number>`, Lotus's sector file name.
pub fn sector_name(miner: u64, number: u64) -> String {
    format!("s-t0{miner}-{number}")
}

/// The document `paths` of a sector stored under `root`.
pub fn sector_paths(root: &Path, name: &str) -> serde_json::Value {
    let p = |t: &str| root.join(t).join(name).display().to_string();
    serde_json::json!({"unsealed": p("unsealed"), "sealed": p("sealed"), "cache": p("cache")})
}

/// The document `update.paths` of a snapped sector stored under `root` (Lotus's layout,
/// docs/snap-deals.md#lotus-layout): the update's data is the sector's unsealed file (a CC
/// sector keeps none), the update replica is `update/`, its cache `update-cache/`.
pub fn update_paths(root: &Path, name: &str) -> serde_json::Value {
    let p = |t: &str| root.join(t).join(name).display().to_string();
    serde_json::json!({"unsealed": p("unsealed"), "sealed": p("update"), "cache": p("update-cache")})
}

/// Points a document's `paths` (and its update's, if it has one) at `root`: the one rule
/// that makes a document follow its sector's files.
pub fn rebase_doc(doc: &mut serde_json::Value, root: &Path, name: &str) {
    doc["paths"] = sector_paths(root, name);
    if doc.get("update").is_some_and(serde_json::Value::is_object) {
        doc["update"]["paths"] = update_paths(root, name);
    }
}

/// Whether `path` (of the sector named `name`) holds any of its files.
pub fn holds(root: &Path, name: &str) -> bool {
    FILE_TYPES.iter().any(|t| root.join(t).join(name).exists())
}

/// Moves a sector's files from one path to another, idempotently, never deleting a source
/// before its destination is proven equal to it.
///
/// Within a filesystem each file type is one rename that refuses to replace anything
/// (`RENAME_NOREPLACE`). Across filesystems every file is copied to a temp name, fsynced,
/// and renamed into place without replacing; then source and destination are compared by
/// size and SHA-256 (as moves between hosts are) before the source goes. A destination
/// file that already exists is kept only if its content equals the source's (an earlier,
/// interrupted move placed it); a different one is some other sector's data or a stale
/// copy, and the move stops with the source kept rather than guess which to trust. A
/// source holding none of the sector's files is an error unless the destination holds
/// them (the move already happened).
pub fn move_sector(from: &Path, to: &Path, name: &str) -> Result<()> {
    move_files(from, to, name, Method::RenameOrCopy)
}

/// How [`move_files`] may move a file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Rename when both paths share a filesystem, copy and verify otherwise.
    RenameOrCopy,
    /// Always copy and verify (what a move between filesystems does; tests force it).
    #[cfg(test)]
    Copy,
}

pub(crate) fn move_files(from: &Path, to: &Path, name: &str, method: Method) -> Result<()> {
    ensure!(
        from != to,
        "source and destination are the same path {}",
        from.display()
    );
    let mut found = false;
    for t in FILE_TYPES {
        let (src, dst) = (from.join(t).join(name), to.join(t).join(name));
        let Ok(md) = fs::symlink_metadata(&src) else {
            continue;
        };
        found = true;
        ensure!(
            md.is_file() || md.is_dir(),
            "{} is neither a regular file nor a directory: not moving it",
            src.display()
        );
        fs::create_dir_all(to.join(t))
            .with_context(|| format!("cannot create {}", to.join(t).display()))?;
        if method == Method::RenameOrCopy && fs::symlink_metadata(&dst).is_err() {
            match crate::fsutil::rename_noreplace(&src, &dst) {
                Ok(()) => {
                    crate::fsutil::sync_parent(&dst)?;
                    crate::fsutil::sync_parent(&src)?;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {}
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot move {} to {}", src.display(), dst.display())
                    })
                }
            }
        }
        copy_tree(&src, &dst)?;
        verify_copy(&src, &dst)?;
        remove_all(&src)?;
        crate::fsutil::sync_parent(&src)?;
    }
    if !found {
        ensure!(
            holds(to, name),
            "sector {name} has no files at {} (nor at {}): nothing to move",
            from.display(),
            to.display()
        );
    }
    Ok(())
}

/// Copies `src` (a file or a directory tree of regular files) to `dst`, each file through a
/// temp name that is fsynced and renamed into place without replacing anything. Files
/// already at the destination are left for [`verify_copy`] to judge.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let md = fs::symlink_metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
    if md.is_dir() {
        fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
        for e in fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
        return Ok(());
    }
    ensure!(
        md.is_file(),
        "{} is not a regular file: not copying it",
        src.display()
    );
    if fs::symlink_metadata(dst).is_ok() {
        return Ok(());
    }
    let tmp = crate::fsutil::temp_path(dst);
    let _ = fs::remove_file(&tmp);
    fs::copy(src, &tmp)
        .with_context(|| format!("cannot copy {} to {}", src.display(), tmp.display()))?;
    fs::File::open(&tmp)?.sync_all()?;
    crate::fsutil::rename_noreplace(&tmp, dst)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dst.display()))?;
    crate::fsutil::sync_parent(dst)
}

/// Source and destination hold the same files with the same sizes and SHA-256 digests;
/// otherwise an error that names the first difference (the source is kept).
fn verify_copy(src: &Path, dst: &Path) -> Result<()> {
    let (sp, sn) = split(src)?;
    let (dp, dn) = split(dst)?;
    let want = super::transfer::manifest_local(sp, std::slice::from_ref(&sn))?;
    let got = super::transfer::manifest_local(dp, std::slice::from_ref(&dn))?;
    for (rel, (size, sum)) in &want {
        let there = format!("{dn}{}", &rel[sn.len()..]);
        match got.get(&there) {
            Some((s, h)) if s == size && h == sum => {}
            Some((s, h)) => bail!(
                "{} already holds a different file ({s} bytes, sha256 {h}; the source {} has \
                 {size} bytes, sha256 {sum}): source kept, nothing overwritten",
                dp.join(&there).display(),
                sp.join(rel).display()
            ),
            None => bail!(
                "{} is missing after the copy: source kept",
                dp.join(&there).display()
            ),
        }
    }
    Ok(())
}

fn split(p: &Path) -> Result<(&Path, String)> {
    let parent = p
        .parent()
        .with_context(|| format!("{} has no parent directory", p.display()))?;
    let name = p
        .file_name()
        .with_context(|| format!("{} names no file", p.display()))?
        .to_string_lossy()
        .to_string();
    Ok((parent, name))
}

pub(crate) fn remove_all(p: &Path) -> Result<()> {
    if p.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
    .with_context(|| format!("cannot remove {}", p.display()))
}

/// Our phases' resume journals: bookkeeping for a re-run, meaningless once sealed.
const OUR_JOURNALS: [&str; 3] = ["seal-ap.journal", "sealkit-pc1.json", "sealkit-pc2.json"];

/// Finalize's trimming of a sealed sector's cache: what the reference's `clear_cache`
/// removes (layers, tree_d, tree_c), plus the files only Commit1/Commit2 needed once the
/// proof is on chain (our `commit1-output.json` and the synthetic proofs). tree_r_last,
/// p_aux and t_aux stay: WindowPoSt needs them. FinalizeReplicaUpdate trims an update cache
/// the same way (its tree_d, and the vanilla proofs once the update is on chain).
pub fn clear_cache(cache: &Path) -> Result<u64> {
    if !cache.is_dir() {
        bail!("cache directory {} is missing", cache.display());
    }
    let mut freed = 0;
    for e in fs::read_dir(cache)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        let drop = name.starts_with("sc-02-data-layer")
            || name.starts_with("sc-02-data-tree-c")
            || name == "sc-02-data-tree-d.dat"
            || name == crate::commit::synth_file::SYNTH_FILE
            || name == "commit1-output.json"
            || name == crate::update::phase::VANILLA_FILE
            || OUR_JOURNALS.contains(&name.as_str());
        if drop {
            freed += e.metadata().map_or(0, |m| m.len());
            fs::remove_file(e.path())?;
        }
    }
    crate::fsutil::sync_parent(&cache.join("x"))?;
    Ok(freed)
}

/// The storage roots a worker sees, with their metadata (unreadable ones as errors).
pub fn scan(paths: &[String]) -> Vec<(PathBuf, Result<StoreMeta>)> {
    paths
        .iter()
        .map(|p| (PathBuf::from(p), read_meta(Path::new(p))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_with_lotus_names() {
        let d = tempfile::tempdir().unwrap();
        let m = ensure_path(d.path(), true, false).unwrap();
        let text = fs::read_to_string(d.path().join(META_FILE)).unwrap();
        for key in [
            "\"ID\"",
            "\"Weight\": 10",
            "\"CanSeal\": true",
            "\"CanStore\": false",
            "\"AllowTo\"",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
        assert_eq!(read_meta(d.path()).unwrap(), m);
        assert_eq!(
            ensure_path(d.path(), false, true).unwrap(),
            m,
            "existing metadata is kept"
        );
        let lotus = r#"{"ID":"x","Weight":5,"CanSeal":false,"CanStore":true,"Groups":["a"],"AllowTo":["b"]}"#;
        let parsed: StoreMeta = serde_json::from_str(lotus).unwrap();
        assert_eq!(
            (
                parsed.weight,
                parsed.groups.clone(),
                parsed.allow_to.clone()
            ),
            (5, vec!["a".into()], vec!["b".into()])
        );
    }

    #[test]
    fn move_is_idempotent_and_clear_cache_keeps_what_post_needs() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        ensure_path(a.path(), true, true).unwrap();
        let name = sector_name(1000, 3);
        fs::write(a.path().join("sealed").join(&name), b"replica").unwrap();
        let cache = a.path().join("cache").join(&name);
        fs::create_dir_all(&cache).unwrap();
        for f in [
            "sc-02-data-layer-1.dat",
            "sc-02-data-tree-d.dat",
            "sc-02-data-tree-c.dat",
            "sc-02-data-tree-r-last.dat",
            "p_aux",
            "sealkit-pc1.json",
            "t_aux",
        ] {
            fs::write(cache.join(f), f).unwrap();
        }
        move_sector(a.path(), b.path(), &name).unwrap();
        move_sector(a.path(), b.path(), &name).unwrap();
        assert!(!holds(a.path(), &name));
        assert_eq!(
            fs::read(b.path().join("sealed").join(&name)).unwrap(),
            b"replica"
        );
        let cache = b.path().join("cache").join(&name);
        clear_cache(&cache).unwrap();
        let mut left: Vec<String> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        left.sort();
        assert_eq!(left, ["p_aux", "sc-02-data-tree-r-last.dat", "t_aux"]);
    }
    /// A sector with a replica and a two-file cache under `root`.
    fn sector_at(root: &Path, name: &str, replica: &[u8]) {
        ensure_path(root, true, true).unwrap();
        fs::write(root.join("sealed").join(name), replica).unwrap();
        let cache = root.join("cache").join(name);
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("p_aux"), b"paux").unwrap();
        fs::write(cache.join("t_aux"), b"taux").unwrap();
    }

    #[test]
    fn a_copying_move_keeps_the_source_when_the_destination_differs() {
        for method in [Method::Copy, Method::RenameOrCopy] {
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let name = sector_name(1000, 7);
            sector_at(a.path(), &name, b"the sealed replica");
            // A stale replica of the same name and size sits at the destination.
            sector_at(b.path(), &name, b"someone else's rep");
            let err = move_files(a.path(), b.path(), &name, method).unwrap_err();
            assert!(
                format!("{err:#}").contains("already holds a different file"),
                "{err:#}"
            );
            assert_eq!(
                fs::read(a.path().join("sealed").join(&name)).unwrap(),
                b"the sealed replica",
                "the source stays"
            );
            assert_eq!(
                fs::read(b.path().join("sealed").join(&name)).unwrap(),
                b"someone else's rep",
                "the destination is not overwritten"
            );
        }
    }

    #[test]
    fn a_copying_move_verifies_then_removes_the_source_and_is_idempotent() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let name = sector_name(1000, 8);
        sector_at(a.path(), &name, b"replica bytes");
        // An interrupted earlier copy left one identical file behind.
        fs::create_dir_all(b.path().join("cache").join(&name)).unwrap();
        fs::write(b.path().join("cache").join(&name).join("p_aux"), b"paux").unwrap();
        move_files(a.path(), b.path(), &name, Method::Copy).unwrap();
        assert!(!holds(a.path(), &name));
        assert_eq!(
            fs::read(b.path().join("sealed").join(&name)).unwrap(),
            b"replica bytes"
        );
        assert_eq!(
            fs::read(b.path().join("cache").join(&name).join("t_aux")).unwrap(),
            b"taux"
        );
        move_files(a.path(), b.path(), &name, Method::Copy).unwrap();
    }

    #[test]
    fn a_move_without_source_files_fails_unless_already_moved() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        ensure_path(a.path(), true, true).unwrap();
        let name = sector_name(1000, 9);
        let err = move_sector(a.path(), b.path(), &name).unwrap_err();
        assert!(format!("{err:#}").contains("no files at"), "{err:#}");
        assert!(!holds(b.path(), &name));
        sector_at(b.path(), &name, b"r");
        move_sector(a.path(), b.path(), &name).unwrap();
    }

    #[test]
    fn a_move_across_filesystems_checks_content() {
        // /dev/shm is tmpfs, another filesystem than the temp dir on most Linux machines.
        let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let a = tempfile::tempdir().unwrap();
        let name = sector_name(1000, 10);
        sector_at(a.path(), &name, b"replica on disk!");
        sector_at(shm.path(), &name, b"stale in tmpfs!!");
        let err = move_sector(a.path(), shm.path(), &name).unwrap_err();
        assert!(format!("{err:#}").contains("different file"), "{err:#}");
        assert!(holds(a.path(), &name));
        fs::remove_file(shm.path().join("sealed").join(&name)).unwrap();
        move_sector(a.path(), shm.path(), &name).unwrap();
        assert!(!holds(a.path(), &name));
        assert_eq!(
            fs::read(shm.path().join("sealed").join(&name)).unwrap(),
            b"replica on disk!"
        );
    }

    #[test]
    fn a_move_refuses_symlinks_and_special_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        ensure_path(a.path(), true, true).unwrap();
        let name = sector_name(1000, 11);
        std::os::unix::fs::symlink("/etc/passwd", a.path().join("sealed").join(&name)).unwrap();
        let err = move_files(a.path(), b.path(), &name, Method::Copy).unwrap_err();
        assert!(
            format!("{err:#}").contains("neither a regular file"),
            "{err:#}"
        );
    }
}
