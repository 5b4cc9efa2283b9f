//! seal-sched's operator controls and its behaviour on damaged state: a corrupted row is
//! set aside while the other sectors move on, a damaged or missing database is refused
//! untouched, an abort never races a start, sectors are removed and storage detached, and
//! times are RFC 3339. Only AddPiece runs here (PreCommit1 is switched off).

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;

use common::fails;
use common::sched::{ok, sched, SCHED};
use sealkit::sched::daemon;
use sealkit::sched::db::{self, Table};
use sealkit::sched::engine::Engine;
use sealkit::sched::repo::Repo;
use sealkit::sched::task_state::TaskState;

/// A repository whose worker runs AddPiece only (PC1 switched off), with the binaries of
/// this build, and `n` CC sectors.
fn repo_with_sectors(dir: &Path, n: usize) -> PathBuf {
    let repo = dir.join("r");
    ok(sched(&repo, &["init"]));
    let cfg = repo.join("config.toml");
    let bin_dir = Path::new(SCHED).parent().unwrap().display().to_string();
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("bin_dir = \"\""), "{text}");
    std::fs::write(
        &cfg,
        text.replacen("bin_dir = \"\"", &format!("bin_dir = {bin_dir:?}"), 1),
    )
    .unwrap();
    ok(sched(&repo, &["workers", "disable", "local", "PC1"]));
    if n > 0 {
        ok(sched(
            &repo,
            &["sectors", "pledge", "--count", &n.to_string()],
        ));
    }
    repo
}

fn sql(repo: &Path, stmt: &str) {
    let c = Connection::open(repo.join("sched.db")).unwrap();
    c.execute_batch(stmt).unwrap();
}

fn state_of(repo: &Path, n: u64) -> String {
    let c = Connection::open(repo.join("sched.db")).unwrap();
    c.query_row(
        "SELECT state FROM sectors WHERE number = ?1",
        [n as i64],
        |r| r.get(0),
    )
    .unwrap()
}

/// Runs daemon passes until `done` holds and no task runs (bounded: a stuck run fails).
fn passes_until(e: &mut Engine, what: &str, done: impl Fn(&Engine) -> bool) {
    let t = Instant::now();
    loop {
        daemon::pass(e).unwrap();
        let running: i64 =
            e.db.conn
                .query_row(
                    "SELECT count(*) FROM tasks WHERE state = 'running'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
        if running == 0 && done(e) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "never reached: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn states(e: &Engine) -> Vec<(u64, String)> {
    e.db.sectors()
        .unwrap()
        .into_iter()
        .map(|s| (s.number, s.state.as_str().to_string()))
        .collect()
}

fn text(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_corrupted_row_is_set_aside_and_the_other_sectors_move_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 3);
    let c = Connection::open(repo.join("sched.db")).unwrap();
    let good_doc: String = c
        .query_row("SELECT doc FROM sectors WHERE number = 2", [], |r| r.get(0))
        .unwrap();
    sql(
        &repo,
        "UPDATE sectors SET doc = 'not json {' WHERE number = 2",
    );

    let mut e = Engine::open(&Repo { root: repo.clone() }).unwrap();
    passes_until(&mut e, "sectors 1 and 3 past AddPiece", |e| {
        states(e) == [(1, "PreCommit1".into()), (3, "PreCommit1".into())]
    });
    let q = db::quarantined(&e.db.conn, Table::Sectors).unwrap();
    assert_eq!(q.len(), 1);
    let msg = q[0].to_string();
    assert!(
        msg.starts_with("sched.db table sectors, sector 2, column doc: is not a JSON object: "),
        "{msg}"
    );
    assert_eq!(
        state_of(&repo, 2),
        "AddPiece",
        "the bad sector was not touched"
    );
    let last: String = c
        .query_row("SELECT last_error FROM sectors WHERE number = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(last, format!("quarantined: {msg}"));
    // The listings show it with the error, and the rest as usual.
    let list = text(sched(&repo, &["sectors", "list"]));
    let line = list.lines().find(|l| l.starts_with("2 ")).unwrap();
    assert!(
        line.contains("QUARANTINED") && line.contains(&msg),
        "{list}"
    );
    let list = ok(sched(&repo, &["sectors", "list", "--json"]));
    assert_eq!(
        list[1],
        json!({"sector": 2, "state": "quarantined", "last_error": msg})
    );
    assert_eq!(list[0]["state"], "PreCommit1");
    let status = text(sched(&repo, &["sectors", "status", "2"]));
    assert!(
        status.contains("QUARANTINED") && status.contains(&msg),
        "{status}"
    );

    // A task whose kind is no task type, and a text in an integer column.
    sql(
        &repo,
        "UPDATE tasks SET kind = 'XX' WHERE sector = 3 AND state = 'queued'",
    );
    sql(
        &repo,
        "UPDATE sectors SET priority = 'high' WHERE number = 1",
    );
    daemon::pass(&mut e).unwrap();
    let tq = db::quarantined(&e.db.conn, Table::Tasks).unwrap();
    assert_eq!(tq.len(), 1);
    assert_eq!(
        tq[0].to_string(),
        format!(
            "sched.db table tasks, task {} (sector 3), column kind: holds \"XX\", which is no task type (AP, PC1, PC2, C1, C2, FIN, GET, RU, PR1, PR2, GSK, FRU, UNS)",
            tq[0].key
        )
    );
    let sq = db::quarantined(&e.db.conn, Table::Sectors).unwrap();
    assert_eq!(
        sq[0].to_string(),
        "sched.db table sectors, sector 1, column priority: holds the text \"high\", expected an integer"
    );
    let jobs = text(sched(&repo, &["jobs"]));
    assert!(
        jobs.lines()
            .any(|l| l.contains("QUARANTINED") && l.contains("column kind")),
        "{jobs}"
    );

    // Repaired rows are taken back, and the sector goes on where it was.
    sql(
        &repo,
        &format!("UPDATE sectors SET doc = '{good_doc}' WHERE number = 2; UPDATE sectors SET priority = 0 WHERE number = 1"),
    );
    passes_until(&mut e, "sector 2 past AddPiece", |e| {
        states(e).contains(&(2, "PreCommit1".into()))
    });
    assert!(db::quarantined(&e.db.conn, Table::Sectors)
        .unwrap()
        .is_empty());
    assert_eq!(states(&e).len(), 3);
    let back: i64 = c
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'quarantine' AND detail LIKE '%readable again%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(back, 2);
    let ic: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        ic, "ok",
        "connections of this process and the CLI's shared the database"
    );
}

#[test]
fn a_damaged_or_missing_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 1);
    let db_path = repo.join("sched.db");
    let wal = repo.join("sched.db-wal");
    // A damaged header, with a -wal beside it holding the last transactions.
    let mut bytes = std::fs::read(&db_path).unwrap();
    bytes[..16].copy_from_slice(b"garbage garbage!");
    std::fs::write(&db_path, &bytes).unwrap();
    let wal_bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&wal, &wal_bytes).unwrap();
    fails(
        sched(&repo, &["sectors", "list"]),
        &format!(
            "{} is not an SQLite database (damaged header)",
            db_path.display()
        ),
    );
    fails(sched(&repo, &["run", "--until-done"]), "damaged header");
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        wal_bytes,
        "the -wal was changed"
    );
    assert_eq!(
        std::fs::read(&db_path).unwrap(),
        bytes,
        "sched.db was changed"
    );

    // A missing sched.db beside the chain's state: an error, and no new empty database.
    let repo2 = repo_with_sectors(&dir.path().join("two"), 1);
    ok(sched(&repo2, &["batch", "publish", "--now"])); // opens (creates) chain.db
    assert!(repo2.join("chain.db").exists());
    std::fs::remove_file(repo2.join("sched.db")).unwrap();
    fails(
        sched(&repo2, &["sectors", "list"]),
        "sched.db is missing, but",
    );
    assert!(!repo2.join("sched.db").exists(), "a new sched.db was made");
}

#[test]
fn an_abort_is_honoured_by_a_start_that_comes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 1);
    // The operator's abort lands between the pass's placement of the task and its start:
    // the trigger makes exactly that interleaving happen, every time.
    sql(
        &repo,
        "CREATE TRIGGER abort_after_placement AFTER UPDATE OF worker ON tasks \
         WHEN NEW.worker IS NOT NULL AND NEW.state = 'queued' \
         BEGIN UPDATE tasks SET state = 'cancelled' WHERE id = NEW.id; END;",
    );
    let mut e = Engine::open(&Repo { root: repo.clone() }).unwrap();
    e.tick().unwrap();
    let t = &e.db.task(1).unwrap().expect("task 1");
    assert_eq!(t.state, TaskState::Cancelled, "an aborted task was started");
    assert_eq!(t.pid, None);
    assert!(!repo
        .join("tasks")
        .join(t.id.to_string())
        .join("supervisor.log")
        .exists());
    drop(e);
    sql(
        &repo,
        "DROP TRIGGER abort_after_placement; DELETE FROM tasks",
    );

    // `jobs --abort` of a queued task: kept, as cancelled, with an event.
    sql(
        &repo,
        "INSERT INTO tasks (sector, kind, state, created) VALUES (1, 'AP', 'queued', 0)",
    );
    let id: i64 = Connection::open(repo.join("sched.db"))
        .unwrap()
        .query_row("SELECT id FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        ok(sched(&repo, &["jobs", "--abort", &id.to_string()]))["aborted"],
        id
    );
    let jobs = ok(sched(&repo, &["jobs", "--all", "--json"]));
    assert_eq!(jobs["jobs"][0]["state"], "cancelled");
    assert_eq!(jobs["jobs"][0]["error"], "aborted by the operator");
    fails(
        sched(&repo, &["jobs", "--abort", &id.to_string()]),
        "is cancelled, not running",
    );
}

#[test]
fn a_removed_sector_loses_its_files_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 2);
    let store = repo.join("storage");
    let files = |n: u64| -> Vec<PathBuf> {
        vec![
            store.join("sealed").join(format!("s-t01000-{n}")),
            store.join("unsealed").join(format!("s-t01000-{n}")),
            store
                .join("cache")
                .join(format!("s-t01000-{n}"))
                .join("p_aux"),
        ]
    };
    for n in [1, 2] {
        for f in files(n) {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, b"x").unwrap();
        }
    }
    // A symlink named like a sector file is removed itself, never followed.
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"k").unwrap();
    std::fs::remove_dir_all(store.join("cache").join("s-t01000-1")).unwrap();
    std::os::unix::fs::symlink(&outside, store.join("cache").join("s-t01000-1")).unwrap();
    // A running task refuses the removal.
    sql(
        &repo,
        "INSERT INTO tasks (sector, kind, state, created, started) VALUES (1, 'AP', 'running', 0, 0)",
    );
    fails(
        sched(&repo, &["sectors", "remove", "1"]),
        "sector 1 has a running AP task (1): wait for it, or --force cancels it",
    );
    assert!(files(1)[0].exists());
    std::fs::create_dir_all(repo.join("tasks/1")).unwrap();
    let r = ok(sched(&repo, &["sectors", "remove", "1", "--force"]));
    assert_eq!(r["sector"], 1);
    assert_eq!(r["cancelled"], 1);
    assert!(
        repo.join("tasks/1/cancel").exists(),
        "the running task was not cancelled"
    );
    assert_eq!(r["deleted"].as_array().unwrap().len(), 3, "{r}");
    assert!(files(1).iter().all(|f| !f.exists()));
    assert!(std::fs::symlink_metadata(store.join("cache/s-t01000-1")).is_err());
    assert!(outside.join("keep").exists(), "a symlink was followed");
    assert!(
        files(2).iter().all(|f| f.exists()),
        "another sector's files went"
    );
    assert_eq!(state_of(&repo, 1), "Removed");
    let st = ok(sched(&repo, &["sectors", "status", "1", "--json"]));
    assert_eq!(st["state"], "Removed");
    let tl = st["timeline"].as_array().unwrap();
    assert_eq!(tl.last().unwrap()["state"], "Removed");
    assert_eq!(
        tl.last().unwrap()["detail"],
        "removed by the operator (was AddPiece)"
    );
    // Once the daemon has collected the cancelled task, again: nothing left to release.
    sql(&repo, "UPDATE tasks SET state = 'failed' WHERE id = 1");
    assert_eq!(
        ok(sched(&repo, &["sectors", "remove", "1"]))["deleted"],
        json!([])
    );
    fails(sched(&repo, &["sectors", "remove", "9"]), "no sector 9");
    let db_tasks = |q: &str| -> i64 {
        Connection::open(repo.join("sched.db"))
            .unwrap()
            .query_row(q, [], |r| r.get(0))
            .unwrap()
    };
    sql(
        &repo,
        "INSERT INTO tasks (sector, kind, state, created) VALUES (2, 'AP', 'queued', 0)",
    );
    let r = ok(sched(&repo, &["sectors", "remove", "2"]));
    assert!(r["cancelled"].is_u64());
    assert_eq!(
        db_tasks("SELECT count(*) FROM tasks WHERE sector = 2 AND state = 'cancelled'"),
        1
    );
}

#[test]
fn storage_detach_refuses_a_path_with_sectors_and_keeps_comments() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 1);
    let cfg = repo.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("# the operator's note\n{text}")).unwrap();
    let extra = dir.path().join("extra");
    let extra_s = extra.display().to_string();
    ok(sched(&repo, &["storage", "attach", &extra_s, "--store"]));
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.starts_with("# the operator's note\n"), "{text}");
    assert!(text.contains(&format!("{extra_s:?}")), "{text}");
    // Sector 1's files are there.
    sql(
        &repo,
        &format!("UPDATE sectors SET location = '{extra_s}' WHERE number = 1"),
    );
    fails(
        sched(&repo, &["storage", "detach", &extra_s]),
        &format!("storage path {extra_s} holds sector(s) 1: move or remove them first"),
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        text,
        "config.toml changed"
    );
    let d = ok(sched(
        &repo,
        &["storage", "detach", &format!("{extra_s}/"), "--force"],
    ));
    assert_eq!(
        d,
        json!({"path": format!("{extra_s}/"), "workers": ["local"], "stranded": [1]})
    );
    let after = std::fs::read_to_string(&cfg).unwrap();
    assert!(after.starts_with("# the operator's note\n"), "{after}");
    assert!(!after.contains(&extra_s), "{after}");
    assert!(
        extra.join("sectorstore.json").exists(),
        "the path's metadata was touched"
    );
    fails(
        sched(&repo, &["storage", "detach", &extra_s]),
        "is not attached",
    );
    // The repository's own path is free: sectors were never placed there.
    sql(
        &repo,
        "UPDATE sectors SET state = 'Removed' WHERE number = 1",
    );
    let own = repo.join("storage").display().to_string();
    assert_eq!(
        ok(sched(&repo, &["storage", "detach", &own]))["stranded"],
        json!([])
    );
}

/// `2026-12-01T22:30:01Z` or with a fraction (`…:01.250000Z`).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && s.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1)))
}

#[test]
fn times_are_rfc3339_and_the_chain_epoch_is_shown() {
    // The daemon refuses to start without proof parameters.
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 1);
    let mut d = Command::new(SCHED)
        .arg("--repo")
        .arg(&repo)
        .arg("run")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = d.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr).lines() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("sector 1: PreCommit1"))
    {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("no PreCommit1 event: {lines:?}"),
        }
    }
    d.kill().unwrap();
    d.wait().unwrap();
    for l in &lines {
        let (time, rest) = l.split_once(' ').unwrap();
        assert!(is_rfc3339(time) && time.len() == 20, "{l}");
        assert!(rest.starts_with("seal-sched: "), "{l}");
    }
    let log = std::fs::read_to_string(repo.join("phase.log")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    for l in log.lines() {
        assert!(is_rfc3339(l.split(' ').next().unwrap()), "{l}");
    }

    let st = ok(sched(&repo, &["sectors", "status", "1", "--json"]));
    let epoch = st["chain_epoch"].as_i64().unwrap();
    for t in st["timeline"].as_array().unwrap() {
        assert!(is_rfc3339(t["time"].as_str().unwrap()), "{t}");
    }
    let status = text(sched(&repo, &["sectors", "status", "1"]));
    assert!(
        status.lines().next().unwrap().contains(", chain epoch "),
        "{status}"
    );
    let row = status.lines().find(|l| l.contains("AddPiece")).unwrap();
    assert!(
        is_rfc3339(row.split_whitespace().next().unwrap()),
        "{status}"
    );
    let jobs = ok(sched(&repo, &["jobs", "--json"]));
    assert!(jobs["chain_epoch"].as_i64().unwrap() >= epoch, "{jobs}");
    assert_eq!(jobs["jobs"][0]["task"], "PC1");
    let jobs = text(sched(&repo, &["jobs"]));
    assert!(jobs.starts_with("Chain epoch "), "{jobs}");

    // -q keeps the informational lines off stderr; the default stamps them.
    let out = sched(&dir.path().join("q"), &["-q", "init"]);
    assert!(out.status.success() && out.stderr.is_empty());
    let out = sched(&dir.path().join("v"), &["init"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        is_rfc3339(err.split(' ').next().unwrap()) && err.contains("initialized"),
        "{err}"
    );
}

#[test]
fn operator_counts_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 0);
    let out = sched(&repo, &["sectors", "pledge", "--count", "4000000000"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--count") && err.contains("1..=1000"), "{err}");
    // A CPU list that would allocate gigabytes: one line naming the key, nothing written.
    let cfg = repo.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let cpus = text.lines().find(|l| l.starts_with("cpus = ")).unwrap();
    std::fs::write(&cfg, text.replace(cpus, "cpus = \"0-4000000000\"")).unwrap();
    fails(
        sched(&repo, &["jobs"]),
        "worker \"local\": key cpus: \"0-4000000000\": CPU 4000000000 is beyond the most a machine has (65536)",
    );
}

#[test]
fn run_until_done_stops_and_says_so_when_only_set_aside_sectors_are_left() {
    // The daemon refuses to start without proof parameters.
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_with_sectors(dir.path(), 1);
    sql(
        &repo,
        "UPDATE sectors SET doc = 'not json {' WHERE number = 1",
    );
    // Before, the sector counted as in flight for ever and `--until-done` never returned.
    let mut d = Command::new(SCHED)
        .arg("--repo")
        .arg(&repo)
        .args(["-q", "run", "--until-done"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = d.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            d.kill().unwrap();
            d.wait().unwrap();
            panic!("run --until-done did not return with only a quarantined sector left");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut d.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("stopped with 1 row(s) of sched.db set aside")
            && err.contains("sched.db table sectors, sector 1, column doc: is not a JSON object"),
        "{err}"
    );
}
