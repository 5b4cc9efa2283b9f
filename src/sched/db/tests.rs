//! The database functions against a real SQLite file: each statement does what its name
//! says, and the invariants the schema holds are held.

use serde_json::json;

use super::*;
use crate::sched::batch::BatchState;
use crate::sched::chain::MsgKind;
use crate::sched::state::SectorState;
use crate::sched::task_type::TaskType;

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("sched.db")).unwrap();
    (dir, db)
}

fn add(db: &Db, n: u64, state: SectorState) {
    let doc = json!({"sector": n});
    sectors::insert(
        &db.conn,
        &sectors::NewSector {
            number: n,
            state,
            deal: false,
            priority: 0,
            doc: &doc,
            pieces: &[],
        },
    )
    .unwrap();
}

#[test]
fn a_sector_reads_back_typed_and_moves_with_an_event() {
    let (_d, db) = open();
    add(&db, 7, SectorState::AddPiece);
    let s = db.sector(7).unwrap().unwrap();
    assert_eq!((s.number, s.state, s.fails), (7, SectorState::AddPiece, 0));
    set_state(&db.conn, 7, SectorState::PreCommit1, "AP done").unwrap();
    assert_eq!(
        db.sector(7).unwrap().unwrap().state,
        SectorState::PreCommit1
    );
    let ev = db.events(7).unwrap();
    assert_eq!(ev.last().unwrap().detail, "PreCommit1: AP done");
    assert_eq!(events::last_id(&db.conn).unwrap(), ev.last().unwrap().id);
    assert!(events::after(&db.conn, ev.last().unwrap().id)
        .unwrap()
        .is_empty());
}

#[test]
fn failures_count_back_off_and_clear() {
    let (_d, db) = open();
    add(&db, 1, SectorState::PreCommit1);
    sectors::record_failure(&db.conn, 1, 3, 1234.5, "boom").unwrap();
    let s = db.sector(1).unwrap().unwrap();
    assert_eq!(
        (s.fails, s.retry_at, s.last_error.as_deref()),
        (3, 1234.5, Some("boom"))
    );
    assert_eq!(
        sectors::retry_due(&db.conn, &[SectorState::PreCommit1], 1000.0)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        sectors::retry_due(&db.conn, &[SectorState::PreCommit1], 1234.5)
            .unwrap()
            .len(),
        1
    );
    sectors::clear_failures(&db.conn, 1).unwrap();
    let s = db.sector(1).unwrap().unwrap();
    assert_eq!((s.fails, s.last_error), (0, None));
    sectors::reset_retries(&db.conn, 1).unwrap();
    assert_eq!(db.sector(1).unwrap().unwrap().retry_at, 0.0);
}

#[test]
fn one_live_task_per_sector_and_a_cancelled_task_never_starts() {
    let (_d, db) = open();
    add(&db, 1, SectorState::PreCommit1);
    tasks::queue(&db.conn, 1, TaskType::PreCommit1).unwrap();
    assert!(
        tasks::queue(&db.conn, 1, TaskType::PreCommit1).is_err(),
        "a second live task was queued"
    );
    let t = tasks::live_of(&db.conn, 1).unwrap().pop().unwrap();
    assert_eq!(t.state, TaskState::Queued);
    assert!(
        sectors::without_live_task(&db.conn, &[SectorState::PreCommit1])
            .unwrap()
            .is_empty()
    );
    assert!(tasks::cancel_queued(&db.conn, t.id, "aborted").unwrap());
    assert!(!tasks::start(&db.conn, t.id, "w", None).unwrap());
    let t = db.task(t.id).unwrap().unwrap();
    assert_eq!(
        (t.state, t.error.as_deref()),
        (TaskState::Cancelled, Some("aborted"))
    );
    // The sector has no live task now: another may be queued, started and finished.
    tasks::queue(&db.conn, 1, TaskType::PreCommit1).unwrap();
    let t = tasks::live_of(&db.conn, 1).unwrap().pop().unwrap();
    assert!(tasks::start(&db.conn, t.id, "w", Some("/s")).unwrap());
    assert!(!tasks::cancel_queued(&db.conn, t.id, "late").unwrap());
    assert_eq!(
        tasks::count_in_state(&db.conn, TaskState::Running).unwrap(),
        1
    );
    tasks::finish(&db.conn, t.id, TaskState::Lost, 10.0, Some("ssh")).unwrap();
    assert_eq!(tasks::lost_since_done(&db.conn, 1).unwrap(), 1);
    let t = db.task(t.id).unwrap().unwrap();
    assert_eq!(
        (t.state, t.worker.as_deref(), t.fetch_to.as_deref()),
        (TaskState::Lost, Some("w"), Some("/s"))
    );
}

#[test]
fn mean_durations_are_of_finished_successful_tasks() {
    let (_d, db) = open();
    for (n, took, outcome) in [
        (1, 10.0, TaskState::Done),
        (2, 30.0, TaskState::Done),
        (3, 1000.0, TaskState::Failed),
    ] {
        add(&db, n, SectorState::PreCommit1);
        tasks::queue(&db.conn, n, TaskType::PreCommit1).unwrap();
        let t = tasks::live_of(&db.conn, n).unwrap().pop().unwrap();
        assert!(tasks::start(&db.conn, t.id, "w", None).unwrap());
        let started = db.task(t.id).unwrap().unwrap().started.unwrap();
        tasks::finish(&db.conn, t.id, outcome, started + took, None).unwrap();
    }
    let est = tasks::mean_durations(&db.conn).unwrap();
    assert_eq!(est.len(), 1);
    assert!((est["PC1"] - 20.0).abs() < 1e-6, "{est:?}");
}

#[test]
fn an_unknown_state_is_a_row_error_not_a_guess() {
    let (_d, db) = open();
    add(&db, 1, SectorState::AddPiece);
    db.conn
        .execute("UPDATE sectors SET state = 'Sealing' WHERE number = 1", [])
        .unwrap();
    let e = db.sectors().unwrap_err();
    assert_eq!(
        row_error(&e).unwrap().to_string(),
        "sched.db table sectors, sector 1, column state: holds \"Sealing\", which is not a sector state"
    );
    tasks::queue(&db.conn, 1, TaskType::AddPiece).unwrap();
    db.conn
        .execute("UPDATE tasks SET state = 'paused'", [])
        .unwrap();
    let e = db.tasks_in(TaskState::Queued).unwrap();
    assert!(e.is_empty());
    let listing = tasks::listing(&db.conn, true).unwrap();
    let bad = listing[0].1.as_ref().unwrap_err();
    assert_eq!(bad.column, "state");
}

#[test]
fn a_batch_is_recorded_sent_and_landed_once() {
    let (_d, db) = open();
    add(&db, 1, SectorState::PreCommitBatchWait);
    add(&db, 2, SectorState::PreCommitBatchWait);
    batches::record(&db.conn, "b1", MsgKind::PreCommit, "{}", &[1, 2]).unwrap();
    assert_eq!(db.sector(2).unwrap().unwrap().batch.as_deref(), Some("b1"));
    assert_eq!(
        batches::body(&db.conn, "b1").unwrap().as_deref(),
        Some("{}")
    );
    assert!(batches::body(&db.conn, "b2").is_err());
    let b = &db.batches().unwrap()[0];
    assert_eq!(
        (b.kind, b.state, b.sectors.clone()),
        (MsgKind::PreCommit, BatchState::Recorded, vec![1, 2])
    );
    batches::mark_sent(&db.conn, "b1", "cid1").unwrap();
    assert_eq!(db.batches().unwrap()[0].state, BatchState::Sent);
    assert!(batches::mark_landed(&db.conn, "b1", 42, "cid1").unwrap());
    assert!(!batches::mark_landed(&db.conn, "b1", 43, "cid2").unwrap());
    batches::mark_sent(&db.conn, "b1", "cid3").unwrap();
    let b = &db.batches().unwrap()[0];
    assert_eq!(
        (b.state, b.landed_epoch, b.message.as_deref()),
        (BatchState::Landed, Some(42), Some("cid1"))
    );
    sectors::precommit_landed(&db.conn, 1, 42).unwrap();
    let s = db.sector(1).unwrap().unwrap();
    assert_eq!((s.precommit_epoch, s.batch), (Some(42), None));
}

#[test]
fn a_version_one_database_is_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sched.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        // The version-1 schema: no `body` column in `batches`, no `leader` in `tasks`, no
        // version recorded.
        let v1 = without_leader(
            &schema::SCHEMA.replace("    error TEXT,\n    body TEXT\n", "    error TEXT\n"),
        );
        assert_ne!(v1, without_leader(schema::SCHEMA));
        c.execute_batch(&v1).unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(
        db.meta("schema_version").unwrap(),
        Some(SCHEMA_VERSION.to_string())
    );
    batches::record(&db.conn, "b", MsgKind::ProveCommit, "{\"x\":1}", &[]).unwrap();
    set_meta(&db.conn, "schema_version", "99").unwrap();
    drop(db);
    let e = Db::open(&path).err().unwrap();
    assert!(format!("{e:#}").contains("schema version 99"), "{e:#}");
}

fn without_leader(schema: &str) -> String {
    let s = schema.replace("    error TEXT,\n    leader INTEGER\n", "    error TEXT\n");
    assert_ne!(s, schema);
    s
}

/// A version-3 database (before PC1 batches) gains `tasks.leader`, and a batch's rider
/// starts under its leader there.
#[test]
fn a_version_three_database_gains_batch_leaders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sched.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&without_leader(schema::SCHEMA)).unwrap();
        set_meta(&c, "schema_version", "3").unwrap();
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(
        db.meta("schema_version").unwrap(),
        Some(SCHEMA_VERSION.to_string())
    );
    add(&db, 1, SectorState::PreCommit1);
    add(&db, 2, SectorState::PreCommit1);
    tasks::queue(&db.conn, 1, TaskType::PreCommit1).unwrap();
    tasks::queue(&db.conn, 2, TaskType::PreCommit1).unwrap();
    let q = db.tasks_in(TaskState::Queued).unwrap();
    let (lead, rider) = (q[0].id, q[1].id);
    assert!(tasks::start(&db.conn, lead, "w", None).unwrap());
    assert!(tasks::start_rider(&db.conn, rider, "w", lead).unwrap());
    assert!(!tasks::start_rider(&db.conn, rider, "w", lead).unwrap());
    let running = db.tasks_in(TaskState::Running).unwrap();
    let leaders: Vec<Option<u64>> = running.iter().map(|t| t.leader).collect();
    assert_eq!(leaders, [None, Some(lead)]);
}
