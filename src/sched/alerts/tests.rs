use super::*;

fn thresholds() -> Thresholds {
    Thresholds {
        task_failures: 3,
        stuck_factor: 3.0,
        stuck_min: 600.0,
        stuck_wait: 6.0 * 3600.0,
        batch_deadline: 3600.0,
        batch_landing: 1800.0,
        storage_min_free: 1 << 30,
    }
}

fn sector(number: u64, state: SectorState, fails: u32, entered: f64) -> SectorFact {
    SectorFact {
        number,
        state,
        fails,
        entered,
        deadline: None,
    }
}

const NOW: f64 = 1_000_000.0;

#[test]
fn a_quiet_farm_has_no_alerts() {
    let f = Facts {
        now: NOW,
        sectors: vec![
            sector(1, SectorState::PreCommit1, 2, NOW - 599.0),
            sector(2, SectorState::Proving, 0, NOW - 1e6),
            sector(3, SectorState::WaitSeed, 0, NOW - 3600.0),
        ],
        hosts: vec![("pc1-box".into(), true, None)],
        paths: vec![("/mnt/seal".into(), Ok(2 << 30))],
        ..Default::default()
    };
    assert_eq!(evaluate(&f, &thresholds()), vec![]);
}

#[test]
fn each_rule_raises_exactly_its_alert() {
    let mut pending = sector(6, SectorState::PreCommitBatch, 0, NOW - 10.0);
    pending.deadline = Some(NOW + 3599.0);
    let mut late = sector(7, SectorState::CommitBatch, 0, NOW - 10.0);
    late.deadline = Some(NOW - 90.0);
    let mut early = sector(8, SectorState::CommitBatch, 0, NOW - 10.0);
    early.deadline = Some(NOW + 3601.0);
    let f = Facts {
        now: NOW,
        sectors: vec![
            // Third failure in a row: an alert; its failure state is not "stuck".
            sector(1, SectorState::PreCommit2Failed, 3, NOW - 1e5),
            // PC1's mean is 1000 s: stuck past 3000 s, not at 2999 s.
            sector(2, SectorState::PreCommit1, 0, NOW - 3001.0),
            sector(3, SectorState::PreCommit1, 0, NOW - 2999.0),
            // No mean for C1 yet: stuck after the floor (600 s).
            sector(4, SectorState::Commit1, 0, NOW - 601.0),
            // A state without a task: stuck after 6 h.
            sector(5, SectorState::WaitSeed, 0, NOW - 6.0 * 3600.0 - 1.0),
            pending,
            late,
            early,
            // Done sectors are never stuck; removed ones raise nothing.
            sector(9, SectorState::Proving, 0, NOW - 1e7),
            sector(10, SectorState::Removed, 5, NOW - 1e7),
        ],
        mean_secs: [(TaskType::PreCommit1, 1000.0)].into_iter().collect(),
        hosts: vec![
            ("pc1-box".into(), true, None),
            (
                "c2-box".into(),
                false,
                Some("ssh: connect timed out".into()),
            ),
            ("gpu <b>".into(), false, None),
        ],
        paths: vec![
            ("/mnt/seal".into(), Ok((1 << 30) - 1)),
            ("/mnt/store".into(), Ok(1 << 30)),
            (
                "/mnt/gone".into(),
                Err("sectorstore.json is missing".into()),
            ),
        ],
        params: Some("parameter file /p/v28.vk is missing".into()),
        unsent: vec![(
            "precommit-17-3".into(),
            MsgKind::PreCommit,
            2,
            "the wallet holds 0 FIL".into(),
        )],
        // Sent 30 min and 1 s ago: not landed; 30 min ago exactly: not yet.
        in_flight: vec![
            (
                "commit-18-4".into(),
                MsgKind::ProveCommit,
                3,
                "bafy2bzacea".into(),
                NOW - 1801.0,
            ),
            (
                "commit-19-9".into(),
                MsgKind::ProveCommit,
                1,
                "bafy2bzaceb".into(),
                NOW - 1800.0,
            ),
        ],
        chain: Some("ChainHead: connection refused".into()),
    };
    let got: Vec<(AlertKind, String, Option<u64>, String)> = evaluate(&f, &thresholds())
        .into_iter()
        .map(|a| (a.kind, a.key, a.sector, a.message))
        .collect();
    use AlertKind::*;
    let want: Vec<(AlertKind, String, Option<u64>, String)> = vec![
        (
            TaskFailures,
            "task_failures/1",
            Some(1),
            "sector 1: its phase failed 3 times in a row (now PreCommit2Failed)",
        ),
        (
            SectorStuck,
            "sector_stuck/2/PreCommit1",
            Some(2),
            "sector 2 has been in PreCommit1 for 50m 01s, longer than the expected 50m 00s",
        ),
        (
            SectorStuck,
            "sector_stuck/4/Commit1",
            Some(4),
            "sector 4 has been in Commit1 for 10m 01s, longer than the expected 10m 00s",
        ),
        (
            SectorStuck,
            "sector_stuck/5/WaitSeed",
            Some(5),
            "sector 5 has been in WaitSeed for 6h 00m, longer than the expected 6h 00m",
        ),
        (
            BatchDeadline,
            "batch_deadline/6",
            Some(6),
            "sector 6 waits in PreCommitBatch: its deadline is in 59m 59s",
        ),
        (
            BatchDeadline,
            "batch_deadline/7",
            Some(7),
            "sector 7 waits in CommitBatch: its deadline passed 1m 30s ago",
        ),
        (
            HostDown,
            "host_down/c2-box",
            None,
            "host c2-box is down: ssh: connect timed out",
        ),
        (
            HostDown,
            "host_down/gpu <b>",
            None,
            "host gpu <b> is down: no answer",
        ),
        (
            StorageLow,
            "storage_low//mnt/seal",
            None,
            "storage path /mnt/seal is nearly full: 1024.0 MiB free, less than 1.0 GiB",
        ),
        (
            StorageGone,
            "storage_gone//mnt/gone",
            None,
            "storage path /mnt/gone cannot be read: sectorstore.json is missing",
        ),
        (
            ParamsMissing,
            "params_missing",
            None,
            "proof parameters are not ready: parameter file /p/v28.vk is missing",
        ),
        (
            BatchUnsent,
            "batch_unsent/precommit-17-3",
            None,
            "precommit batch precommit-17-3 (2 sectors) is not sent and waits for a retry: the wallet holds 0 FIL",
        ),
        (
            BatchNotLanded,
            "batch_not_landed/commit-18-4",
            None,
            "commit batch commit-18-4 (3 sectors) was sent 30m 01s ago as bafy2bzacea and has not landed: if it is stuck in the node's message pool (its fee cap under the base fee), `lotus mpool replace --auto bafy2bzacea` bumps its fees; the batch follows the replacement",
        ),
        (
            ChainUnreachable,
            "chain_unreachable",
            None,
            "the chain cannot be reached: ChainHead: connection refused; tasks go on, tickets, seeds and batch messages wait for it",
        ),
    ]
    .into_iter()
    .map(|(k, key, s, m)| (k, key.to_string(), s, m.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn the_failure_count_threshold_is_inclusive_and_zero_turns_it_off() {
    let f = Facts {
        now: NOW,
        sectors: vec![
            sector(1, SectorState::Commit2Failed, 2, NOW),
            sector(2, SectorState::Commit2Failed, 3, NOW),
        ],
        ..Default::default()
    };
    let keys: Vec<String> = evaluate(&f, &thresholds())
        .into_iter()
        .map(|a| a.key)
        .collect();
    assert_eq!(keys, ["task_failures/2"]);
    let off = Thresholds {
        task_failures: 0,
        ..thresholds()
    };
    assert_eq!(evaluate(&f, &off), vec![]);
}

#[test]
fn kinds_round_trip_through_their_names() {
    for k in AlertKind::ALL {
        assert_eq!(AlertKind::parse(k.name()), Some(*k));
    }
    assert_eq!(AlertKind::parse("nope"), None);
    assert_eq!(span(0.4), "0s");
    assert_eq!(span(59.6), "1m 00s");
    assert_eq!(span(3600.0 * 25.0 + 61.0), "25h 01m");
}
