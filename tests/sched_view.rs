//! Watching the farm: `/metrics` is scraped during a real daemon run on 2KiB sectors and
//! parsed with a Prometheus text-format parser (its counters equal what sched.db says), the
//! web view is loaded in headless Chromium (one Gantt bar per started phase task of each
//! sector, hostile names escaped, nothing loaded from off the machine; a screenshot is kept
//! under target/), and an alert reaches a webhook exactly once, across a restart.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

use common::fails;
use common::sched::{ok, sched, SCHED};
use common::sector::parent_cache_dir;
use sealkit::sched::repo::Repo;

/// A worker name an attacker would choose: it reaches the page, the metrics and the JSON.
const HOSTILE: &str = "w<script>alert(1)</script>";

const CHROMIUM: &str = "/usr/bin/chromium";

/// A repository with the demo's fast clock (100 ms epochs, 5 s batch waits), one local
/// worker named `worker`, and `edit` applied to its config.
fn fast_repo(
    dir: &Path,
    worker: &str,
    edit: impl FnOnce(&mut sealkit::sched::config::Config),
) -> PathBuf {
    let root = dir.join("farm");
    let repo = Repo { root: root.clone() };
    let mut cfg = repo.default_config().unwrap();
    cfg.chain.epoch = "100ms".into();
    cfg.batching.precommit_batch_wait = "5s".into();
    cfg.batching.commit_batch_wait = "5s".into();
    cfg.batching.precommit_batch_slack = "10s".into();
    cfg.batching.commit_batch_slack = "10s".into();
    cfg.sealing.retry_min = "5s".into();
    cfg.sealing.bin_dir = Path::new(SCHED).parent().unwrap().display().to_string();
    cfg.workers[0].name = worker.into();
    edit(&mut cfg);
    repo.init(Some(cfg)).unwrap();
    root
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The daemon, killed when the test ends however it ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(repo: &Path, args: &[&str]) -> Daemon {
    start_with(repo, args, &[])
}

fn start_with(repo: &Path, args: &[&str], env: &[(&str, &Path)]) -> Daemon {
    let log = std::fs::File::create(repo.with_extension("daemon.log")).unwrap();
    Daemon(
        Command::new(SCHED)
            .arg("--repo")
            .arg(repo)
            .args(args)
            .envs(env.iter().copied())
            .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn daemon_log(repo: &Path) -> String {
    std::fs::read_to_string(repo.with_extension("daemon.log")).unwrap_or_default()
}

/// GET `url`: the status, the headers we look at, and the body.
fn get(url: &str) -> Result<(u16, Option<String>, Option<String>, String), String> {
    let mut resp = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .map_err(|e| e.to_string())?;
    let h = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (ct, csp) = (h("content-type"), h("content-security-policy"));
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, ct, csp, body))
}

fn wait_for_listener(url: &str, repo: &Path) {
    let t = Instant::now();
    while get(url).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the listener never answered: {}",
            daemon_log(repo)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A parsed scrape as name → (sorted labels → value); histograms as their `_count` samples.
type Series = BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>;

fn parse_metrics(text: &str) -> Series {
    use prometheus_parse::{Scrape, Value as V};
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let mut out = Series::new();
    for s in scrape.samples {
        let v = match s.value {
            V::Counter(v) | V::Gauge(v) | V::Untyped(v) => v,
            V::Histogram(_) | V::Summary(_) => continue,
        };
        let mut labels: Vec<(String, String)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        out.entry(s.metric).or_default().insert(labels, v);
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// What sched.db says, grouped like the metric: `sql` selects label values then a count.
fn db_counts(repo: &Path, sql: &str, names: &[&str]) -> BTreeMap<Vec<(String, String)>, f64> {
    let c = Connection::open(repo.join("sched.db")).unwrap();
    let mut st = c.prepare(sql).unwrap();
    let rows = st
        .query_map([], |r| {
            let mut l = Vec::new();
            for (i, n) in names.iter().enumerate() {
                l.push((n.to_string(), r.get::<_, String>(i)?));
            }
            l.sort();
            Ok((l, r.get::<_, i64>(names.len())? as f64))
        })
        .unwrap()
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()
        .unwrap();
    rows
}

fn proving(repo: &Path) -> i64 {
    let c = Connection::open(repo.join("sched.db")).unwrap();
    c.query_row(
        "SELECT count(*) FROM sectors WHERE state = 'Proving'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn artifact_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sched-view");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Headless Chromium as the machine's probe runs it: no background networking, a fresh
/// profile. Returns the DOM after load.
fn chromium(url: &str, screenshot: &Path, profile: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium"
    );
    let run = |extra: &[String]| {
        let out = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1100,2400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[format!("--screenshot={}", screenshot.display())]);
    run(&["--dump-dom".to_string()])
}

/// Counts `<rect class="bar"` per `data-sector` chart in a DOM.
fn bars_per_sector(dom: &str) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for chart in dom.split("<svg").skip(1) {
        let Some(rest) = chart.split("data-sector=\"").nth(1) else {
            continue;
        };
        let n: u64 = rest.split('"').next().unwrap().parse().unwrap();
        let body = chart.split("</svg>").next().unwrap();
        out.insert(n, body.matches("<rect class=\"bar\"").count());
    }
    out
}

#[test]
fn metrics_and_the_web_view_match_the_database_during_a_real_run() {
    sealkit::sched::demo::ensure_test_params().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A storage path with markup in its name: it is on the page and a metric label.
    let store = dir.path().join("st<i>&'x").display().to_string();
    let repo = fast_repo(dir.path(), HOSTILE, |cfg| {
        cfg.workers[0].storage = vec![store.clone()];
    });
    ok(sched(&repo, &["sectors", "pledge", "--count", "2"]));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _d = start(
        &repo,
        &["run", "-q", "--metrics", &format!("127.0.0.1:{port}")],
    );
    wait_for_listener(&format!("{base}/metrics"), &repo);

    // Scrape while the sectors seal: every scrape parses, and one sees a task running.
    let t = Instant::now();
    let mut saw_running = false;
    let mut scrapes = 0;
    while proving(&repo) < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "sectors never reached Proving: {}",
            daemon_log(&repo)
        );
        let (status, ct, _, text) = get(&format!("{base}/metrics")).unwrap();
        assert_eq!(status, 200);
        assert!(ct.unwrap().starts_with("application/openmetrics-text"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        let m = parse_metrics(&text);
        scrapes += 1;
        saw_running |= m
            .get("sealkit_tasks")
            .into_iter()
            .flatten()
            .any(|(l, v)| l.contains(&("state".into(), "running".into())) && *v > 0.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        saw_running,
        "{scrapes} scrapes during the run, none saw a running task"
    );

    // Done: the counters are exactly the database's counts.
    let (_, _, _, text) = get(&format!("{base}/metrics")).unwrap();
    std::fs::write(artifact_dir().join("metrics.txt"), &text).unwrap();
    let m = parse_metrics(&text);
    let started = db_counts(
        &repo,
        "SELECT kind, worker, count(*) FROM tasks WHERE started IS NOT NULL GROUP BY 1, 2",
        &["type", "worker"],
    );
    assert!(!started.is_empty());
    assert!(started
        .keys()
        .all(|l| l.contains(&("worker".into(), HOSTILE.into()))));
    assert_eq!(m["sealkit_tasks_started_total"], started);
    let finished = db_counts(
        &repo,
        "SELECT kind, coalesce(worker, ''), state, count(*) FROM tasks \
         WHERE state NOT IN ('queued', 'running') GROUP BY 1, 2, 3",
        &["type", "worker", "outcome"],
    );
    assert_eq!(m["sealkit_tasks_finished_total"], finished);
    let failed = db_counts(
        &repo,
        "SELECT kind, worker, count(*) FROM tasks WHERE state = 'failed' GROUP BY 1, 2",
        &["type", "worker"],
    );
    assert_eq!(
        m.get("sealkit_tasks_failed_total")
            .cloned()
            .unwrap_or_default(),
        failed
    );
    let durations = db_counts(
        &repo,
        "SELECT kind, '2KiB', count(*) FROM tasks WHERE state = 'done' \
         AND started IS NOT NULL AND finished IS NOT NULL GROUP BY 1",
        &["type", "sector_size"],
    );
    assert_eq!(m["sealkit_task_duration_seconds_count"], durations);
    let waits = db_counts(
        &repo,
        "SELECT kind, '2KiB', count(*) FROM tasks WHERE started IS NOT NULL GROUP BY 1",
        &["type", "sector_size"],
    );
    assert_eq!(m["sealkit_task_queue_wait_seconds_count"], waits);
    assert_eq!(m["sealkit_sectors"][&labels(&[("state", "Proving")])], 2.0);
    assert_eq!(
        m["sealkit_batches"][&labels(&[("kind", "precommit"), ("state", "landed")])]
            + m["sealkit_batches"][&labels(&[("kind", "commit"), ("state", "landed")])],
        db_counts(
            &repo,
            "SELECT 'x', count(*) FROM batches WHERE state = 'landed'",
            &["x"]
        )
        .into_values()
        .sum::<f64>()
    );
    assert_eq!(m["sealkit_host_up"][&labels(&[("host", "local")])], 1.0);
    assert_eq!(
        m["sealkit_worker_cpus_reserved"][&labels(&[("worker", HOSTILE)])],
        0.0
    );
    let storage = m["sealkit_storage_available_bytes"].clone();
    assert_eq!(
        storage.keys().collect::<Vec<_>>(),
        [&labels(&[("path", &store)])]
    );
    assert!(storage.values().all(|v| *v > 0.0));
    assert_eq!(
        m["sealkit_alerts"].len(),
        sealkit::sched::alerts::AlertKind::ALL.len()
    );

    // The web view: headers, escaping, no URL off the machine.
    let (status, ct, csp, html) = get(&format!("{base}/")).unwrap();
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("text/html; charset=utf-8"));
    assert!(csp.unwrap().starts_with("default-src 'none'"));
    assert!(!html.contains("<script"), "unescaped worker name");
    assert!(html.contains("w&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<i>"), "unescaped storage path");
    assert!(html.contains("st&lt;i&gt;&amp;&#39;x"));
    for scheme in ["http:", "https:", "src=", "<link", "@import"] {
        assert!(!html.contains(scheme), "the page has {scheme}");
    }
    for href in html.split("href=\"").skip(1) {
        let v = href.split('"').next().unwrap();
        assert!(
            v.starts_with('#') || (v.starts_with('/') && !v.starts_with("//")),
            "a link off this page's server: {v}"
        );
    }
    assert!(!html.contains("url("), "a style loads something");

    // Other requests: JSON, a single chart, not found, and nothing but GET/HEAD.
    let (status, ct, _, json) = get(&format!("{base}/api/state.json")).unwrap();
    assert_eq!((status, ct.as_deref()), (200, Some("application/json")));
    let state: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(state["sectors"].as_array().unwrap().len(), 2);
    assert_eq!(state["workers"][0]["name"], HOSTILE);
    let (status, ct, _, svg) = get(&format!("{base}/sector/1.svg")).unwrap();
    assert_eq!((status, ct.as_deref()), (200, Some("image/svg+xml")));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_eq!(get(&format!("{base}/nope")).unwrap().0, 404);
    let post = ureq::post(&format!("{base}/"))
        .config()
        .http_status_as_error(false)
        .build()
        .send("x")
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    // A real browser: the page renders, with one bar per started phase task of each sector.
    let shot = artifact_dir().join("farm.png");
    let _ = std::fs::remove_file(&shot);
    let dom = chromium(&format!("{base}/"), &shot, &dir.path().join("chromium"));
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "no screenshot"
    );
    std::fs::write(artifact_dir().join("farm.dom.html"), &dom).unwrap();
    assert!(
        !dom.contains("<script"),
        "the browser found a script element"
    );
    let want: BTreeMap<u64, usize> = db_counts(
        &repo,
        "SELECT CAST(sector AS TEXT), count(*) FROM tasks WHERE started IS NOT NULL GROUP BY sector",
        &["sector"],
    )
    .into_iter()
    .map(|(l, n)| (l[0].1.parse().unwrap(), n as usize))
    .collect();
    assert_eq!(want.len(), 2);
    // AP, PC1, PC2, C1, C2 and Finalize at least, each a bar.
    assert!(want.values().all(|n| *n >= 6), "{want:?}");
    assert_eq!(bars_per_sector(&dom), want);

    // The plot of one sector: a standalone SVG with the same bars.
    let plot = dir.path().join("s1.svg");
    let out = ok(sched(
        &repo,
        &[
            "sectors",
            "status",
            "1",
            "--json",
            "--plot",
            plot.to_str().unwrap(),
        ],
    ));
    assert_eq!(out["plot"], plot.display().to_string());
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert_eq!(bars_per_sector(&svg)[&1], want[&1]);
}

/// Each request a receiver got: its request line and its body.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on loopback: every request it gets.
fn receiver() -> (u16, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            g.lock().unwrap().push((
                first.trim().to_string(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, got)
}

/// A parameter directory whose files exist (empty): enough for the daemon's start check when
/// no sector will ever reach Commit2, without generating real test parameters.
///
/// The file names come from the reference crate, whose settings read the parameter
/// directory from the environment once per process: the variable is set first, to what
/// `ensure_test_params` (the other test of this binary) sets, so whichever test asks first
/// fixes the same directory for both.
fn placeholder_params(dir: &Path) -> PathBuf {
    if std::env::var_os("FIL_PROOFS_PARAMETER_CACHE").is_none() {
        std::env::set_var("FIL_PROOFS_PARAMETER_CACHE", "/var/tmp/sealkit-test-params");
    }
    let p = dir.join("params");
    std::fs::create_dir_all(&p).unwrap();
    let proof = sealkit::sector::proof::SealProof::from_name("StackedDrg2KiBV1_1").unwrap();
    let f = sealkit::snark::params::files(proof).unwrap();
    for file in [&f.params, &f.vk] {
        std::fs::write(p.join(file.file_name().unwrap()), b"").unwrap();
    }
    p
}

#[test]
fn an_alert_reaches_the_webhook_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let params = placeholder_params(dir.path());
    let env = [("FIL_PROOFS_PARAMETER_CACHE", params.as_path())];
    let sched = |repo: &Path, args: &[&str]| {
        Command::new(SCHED)
            .arg("--repo")
            .arg(repo)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let (port, got) = receiver();
    // No storage path here has 1000 TiB free: the one path is nearly full.
    let repo = fast_repo(dir.path(), "local", |cfg| {
        cfg.alerts.webhook = format!("http://127.0.0.1:{port}/hook");
        cfg.alerts.storage_min_free = "1000TiB".into();
    });
    let store = std::fs::read_to_string(repo.join("config.toml")).unwrap();
    assert!(store.contains("[alerts]"), "{store}");

    let alerts = ok(sched(&repo, &["alerts", "--json"]));
    let list = alerts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    assert_eq!(list[0]["kind"], "storage_low");
    assert_eq!(
        list[0]["since"],
        Value::Null,
        "not recorded before a daemon saw it"
    );

    for _ in 0..2 {
        let mut d = start_with(&repo, &["run", "--until-done"], &env);
        let status = d.0.wait().unwrap();
        assert!(status.success(), "{}", daemon_log(&repo));
    }
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let (line, body) = &bodies[0];
    assert_eq!(line, "POST /hook HTTP/1.1");
    let json: Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["kind"], "storage_low");
    assert_eq!(json["source"], "seal-sched");
    let storage = repo.join("storage").display().to_string();
    assert_eq!(json["key"], format!("storage_low/{storage}"));
    assert!(json["text"]
        .as_str()
        .unwrap()
        .starts_with(&format!("storage path {storage} is nearly full: ")));

    // Recorded once, with the webhook's answer; shown with its time.
    let alerts = ok(sched(&repo, &["alerts", "--json"]));
    assert!(alerts[0]["since"].is_string(), "{alerts}");
    assert!(alerts[0]["notified"].is_string(), "{alerts}");
    assert_eq!(alerts[0]["notify_error"], Value::Null);
    let text = String::from_utf8(sched(&repo, &["alerts"]).stdout).unwrap();
    assert!(text.starts_with("storage_low     storage path "), "{text}");

    // The alert is a metric and on the page of `serve`.
    let port = free_port();
    let _s = start_with(
        &repo,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &env,
    );
    wait_for_listener(&format!("http://127.0.0.1:{port}/metrics"), &repo);
    let (_, _, _, text) = get(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
    let m = parse_metrics(&text);
    assert_eq!(
        m["sealkit_alerts"][&labels(&[("kind", "storage_low")])],
        1.0
    );
    assert_eq!(m["sealkit_alerts"][&labels(&[("kind", "host_down")])], 0.0);
    let (_, _, _, html) = get(&format!("http://127.0.0.1:{port}/")).unwrap();
    assert!(html.contains("<h2 id=\"alerts\">Alerts (1)</h2>"));

    // A browser sent here under another name (DNS rebinding) reads nothing.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET / HTTP/1.1\r\nHost: rebind.example:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421 "), "{answer}");
    assert!(!answer.contains("storage_low"), "{answer}");
}

#[test]
fn a_listener_off_loopback_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fast_repo(dir.path(), "local", |_| {});
    let err = fails(
        sched(&repo, &["serve", "--listen", "0.0.0.0:9"]),
        "0.0.0.0:9 is not a loopback address",
    );
    assert!(err.contains("[metrics] allow_remote = true"), "{err}");
    fails(
        sched(&repo, &["run", "--metrics", "192.0.2.1:9268"]),
        "192.0.2.1:9268 is not a loopback address",
    );
    fails(
        sched(&repo, &["serve", "--listen", "nonsense"]),
        "\"nonsense\" is not a listen address",
    );
    // Allowed: the check passes and the bind itself is what fails (a documentation address).
    let cfg = repo.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("allow_remote = false", "allow_remote = true"),
    )
    .unwrap();
    fails(
        sched(&repo, &["serve", "--listen", "192.0.2.1:9"]),
        "cannot listen on 192.0.2.1:9",
    );
    // A webhook must be plain http on this machine's terms.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("webhook = \"\"", "webhook = \"https://hooks.example/x\""),
    )
    .unwrap();
    fails(sched(&repo, &["alerts"]), "key alerts.webhook");
}
