//! seal-sched: the sealing scheduler and sector state machine. See `man/seal-sched.1`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, Parser, Subcommand};
use serde_json::{json, Value};

use sealkit::cli;
use sealkit::sched::{
    alerts, batch, chain::MsgKind, config_edit::ConfigFile, daemon, demo, engine, hostcmd, log,
    numbering, observe, ops, proving, repo::Repo, report, storage, supervisor, task_type::TaskType,
};

#[derive(Parser)]
#[command(
    name = "seal-sched",
    version,
    about = "Schedule and track sector sealing on this machine's workers",
    after_help = "\
seal-sched owns every sector's state in a repository (--repo, $SEALKIT_REPO, ~/.sealkit):
config.toml (workers, storage, chain, batching), sched.db (SQLite: sectors, tasks, batches,
events) and the simulated chain. `run` is the daemon; every other command may run beside it
(from cron, too). Listings take --json.

Examples:
  seal-sched demo                          # seal 2KiB sectors from nothing to Proving
  seal-sched init && seal-sched run &      # a repository for this machine, then the daemon
  seal-sched sectors pledge --count 4      # committed-capacity sectors
  seal-sched sectors add --piece deal.car  # a sector with a deal piece (priority 1024)
  seal-sched sectors status 3              # the sector's per-phase timeline
  seal-sched jobs                          # what runs where, and why the rest waits
  seal-sched workers --json
  seal-sched batch publish --now           # send pending precommits/commits (cron)
  seal-sched storage attach /mnt/fast --seal --groups pc2-a
  seal-sched storage detach /mnt/old       # refused while sectors are there
  seal-sched sectors remove 7              # release sector 7's files, keep its history
  seal-sched sectors update-state 7 PreCommit1  # along the pipeline's transitions only
  seal-sched -v run                        # the daemon, with its pass summaries
  seal-sched run --metrics 127.0.0.1:9268  # the daemon, with /metrics and the web view
  seal-sched serve                         # the web view alone: http://127.0.0.1:9268/
  seal-sched alerts --json                 # what needs the operator now
  seal-sched sectors status 3 --plot       # its timeline as an SVG Gantt chart

Log lines on stderr start with the time, RFC 3339 UTC (2026-12-01T22:30:01Z)."
)]
struct Cli {
    /// The repository directory (default: $SEALKIT_REPO, else ~/.sealkit).
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// More on stderr (-v: each pass's summary when it changes).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less on stderr (-q: warnings and errors only; `run -q` logs no events).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(ClapArgs)]
struct Json {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the repository: one local worker with this machine's CPUs, memory and GPUs,
    /// one storage path that seals and stores, the simulated chain.
    Init {
        /// The seal proof of new sectors (default StackedDrg2KiBV1_1).
        #[arg(long)]
        seal_proof: Option<String>,
        /// The miner actor id (default 1000).
        #[arg(long)]
        miner: Option<u64>,
    },
    /// The daemon: runs passes until killed (or until every sector is done).
    Run {
        /// Exit once every sector is Proving or failed for good.
        #[arg(long)]
        until_done: bool,
        /// Serve Prometheus metrics (/metrics) and the web view (/) on ADDR, e.g.
        /// 127.0.0.1:9268 (loopback only unless config says [metrics] allow_remote = true).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
    },
    /// The read-only web view (sector timelines, waiting reasons, batches, storage, events),
    /// /metrics and /api/state.json, without the daemon; runs until killed.
    Serve {
        /// Where to listen (loopback only unless config says [metrics] allow_remote = true).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9268")]
        listen: String,
    },
    /// What needs the operator now: failing phases, stuck sectors, batch deadlines, hosts
    /// down, storage nearly full or gone, missing proof parameters.
    Alerts {
        #[command(flatten)]
        json: Json,
    },
    /// Sectors: pledge, add, list, status.
    #[command(subcommand)]
    Sectors(SectorsCmd),
    /// Workers and their resource use; enable or disable task types at run time.
    Workers {
        #[command(subcommand)]
        action: Option<WorkersCmd>,
        #[command(flatten)]
        json: Json,
    },
    /// Running and waiting tasks, and why each waiting one waits.
    Jobs {
        /// Also finished, failed and abandoned tasks.
        #[arg(long)]
        all: bool,
        /// Cancel a task: a queued one is dropped, a running one is killed (its sector retries).
        #[arg(long, value_name = "ID")]
        abort: Option<u64>,
        #[command(flatten)]
        json: Json,
    },
    /// PreCommit and Commit batches.
    #[command(subcommand)]
    Batch(BatchCmd),
    /// The chain: the simulated one, or the Lotus/Forest node of `[chain] kind = "lotus"`.
    #[command(subcommand)]
    Chain(ChainCmd),
    /// Storage paths (Lotus sectorstore.json).
    #[command(subcommand)]
    Storage(StorageCmd),
    /// Seal a few 2KiB sectors (CC and deal) from nothing to Proving in a fresh repository,
    /// then print each timeline and verify each proof.
    Demo {
        /// CC sectors (at most 64).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=64))]
        cc: u16,
        /// Sectors with a random deal piece (at most 64).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=64))]
        deals: u16,
        /// Snap up this many of the CC sectors once they prove (a snap deal each), unseal
        /// another CC sector on demand, and seal a new one beside them. The first run
        /// generates the 2KiB update test parameters (about 10-20 minutes, once per machine).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
        snap: u16,
    },
    /// (internal) Run one task: the process the daemon starts per task.
    #[command(hide = true)]
    TaskExec { dir: PathBuf },
    /// What the scheduler runs on a remote host over ssh (JSON on stdout).
    #[command(hide = true, subcommand)]
    Host(HostCmd),
    /// (internal) Time one scheduling pass over a synthetic load (scripts/bench-sched.sh).
    #[command(hide = true)]
    BenchPass {
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        tasks: u32,
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        workers: u32,
    },
}

#[derive(Subcommand)]
enum SectorsCmd {
    /// Add committed-capacity sectors.
    Pledge {
        /// How many (at most 1000 at a time).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
        count: u16,
    },
    /// Add a sector with deal pieces (kept in place until AddPiece has read them).
    Add {
        #[arg(long = "piece", value_name = "FILE", required = true)]
        pieces: Vec<PathBuf>,
        /// The sector number (default: the next free one).
        #[arg(long)]
        number: Option<u64>,
        /// Keep no unsealed copy after Finalize, whatever `[sealing] keep_unsealed` says
        /// (Lotus's KeepUnsealed = false for the deal).
        #[arg(long)]
        drop_unsealed: bool,
    },
    /// Every sector with its state and document fields.
    List {
        #[command(flatten)]
        json: Json,
    },
    /// One sector with its per-phase timeline and the chain's current epoch.
    Status {
        number: u64,
        /// Also draw its timeline as an SVG Gantt chart into FILE (default:
        /// REPO/plots/sector-N.svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<Option<PathBuf>>,
        #[command(flatten)]
        json: Json,
    },
    /// Remove a sector: its files in this machine's storage are deleted, its row is kept as
    /// state Removed with its history. Refused while a task runs for it, unless --force.
    ///
    /// Example: seal-sched sectors remove 7
    Remove {
        /// The sector number.
        number: u64,
        /// Cancel the sector's running task first (waits up to 2 minutes for it to stop).
        #[arg(long)]
        force: bool,
    },
    /// Fill a proving committed-capacity sector with deal data (a snap deal): AddPiece into
    /// the update, ReplicaUpdate, ProveReplicaUpdate 1 and 2, an update batch on chain
    /// (ProveReplicaUpdates3), FinalizeReplicaUpdate, Proving again. The pieces stay in
    /// place until AddPiece has read them.
    ///
    /// Examples: seal-sched sectors snap-up 7 --piece /deals/a.car --piece /deals/b.car
    ///           seal-sched sectors snap-up --piece /deals/c.car   # the lowest proving CC sector
    SnapUp {
        /// The sector number (default: the lowest-numbered proving CC sector).
        number: Option<u64>,
        #[arg(long = "piece", value_name = "FILE", required = true)]
        pieces: Vec<PathBuf>,
        /// Keep no unsealed copy after FinalizeReplicaUpdate, whatever `[sealing]
        /// keep_unsealed` says.
        #[arg(long)]
        drop_unsealed: bool,
    },
    /// Read a proving sector's data: from its unsealed copy when there is one, else after an
    /// UNS task (queued here, run by the daemon) has regenerated the copy from the sealed
    /// replica (or, for a snapped sector, the update replica). The bytes are checked against
    /// the piece's comm_p (or comm_d) before any is written.
    ///
    /// Examples: seal-sched sectors unseal 7 --piece 0 --out deal.car
    ///           seal-sched sectors unseal 7 --piece baga6ea4seaq… > deal.car
    ///           seal-sched sectors unseal 7 --no-wait     # only queue the regeneration
    Unseal {
        /// The sector number.
        number: u64,
        /// A piece: its index in the sector's data, or its piece CID (default: the whole
        /// fr32-padded sector).
        #[arg(long)]
        piece: Option<String>,
        /// Write here (temp name, then renamed) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Queue the regeneration and return; run again once the sector is Proving.
        #[arg(long)]
        no_wait: bool,
    },
    /// Regenerate a snapped sector's lost sector key (Lotus's GSK task) from its update
    /// replica and the update's data (its unsealed copy: `sectors unseal N --no-wait` first
    /// if that is gone); kept only if it gives the sector's comm_r again.
    ///
    /// Example: seal-sched sectors regen-key 7
    RegenKey {
        /// The sector number.
        number: u64,
    },
    /// Print the `RemoteSectorMeta` with which lotus-miner's `SectorReceive` imports a
    /// Proving sector, so that lotus-miner proves it every day (WindowPoSt, which sealkit does
    /// not do). The files stay where they are: attach their storage path to lotus-miner
    /// first. Ticket, seed and proof are the ones lotus-miner checks against its chain.
    ///
    /// Example: seal-sched sectors lotus-meta 7 > meta.json
    ///          curl -s -H "Authorization: Bearer $MINER_TOKEN" -d "{\"jsonrpc\":\"2.0\",\"id\":1,
    ///            \"method\":\"Filecoin.SectorReceive\",\"params\":[$(cat meta.json)]}" $MINER_API/rpc/v0
    LotusMeta {
        /// The sector number.
        number: u64,
    },
    /// Move a sector to another state (Lotus's `sectors update-state`): only along the
    /// pipeline's transitions, never while a task runs for it or its batch is being sent.
    ///
    /// Examples: seal-sched sectors update-state 7 PreCommit1      # redo PC1 after PC2 failed
    ///           seal-sched sectors update-state 7 Proving --really-do-it
    UpdateState {
        /// The sector number.
        number: u64,
        /// The state to move it to (as `sectors list` shows them).
        state: String,
        /// Allow a move the pipeline never makes itself.
        #[arg(long)]
        really_do_it: bool,
    },
}

#[derive(Subcommand)]
enum WorkersCmd {
    /// Let a worker run these task types again.
    Enable { worker: String, tasks: Vec<String> },
    /// Stop giving a worker these task types (running ones finish).
    Disable { worker: String, tasks: Vec<String> },
}

#[derive(Subcommand)]
enum BatchCmd {
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Send the batches that are due (full, waited long enough, or near a deadline).
    Publish {
        /// Send everything pending now.
        #[arg(long)]
        now: bool,
    },
}

#[derive(Subcommand)]
enum ChainCmd {
    /// The chain's head, network and parameters; for a node also the miner's facts (owner,
    /// worker, sector size), checked against the config.
    Status {
        #[command(flatten)]
        json: Json,
    },
    /// Simulated chain only: add FIL to its wallet, which pays every sector's deposit and
    /// pledge (a batch the wallet cannot pay waits, not sent). Prints the new balance.
    /// On a Lotus node, send FIL to the worker address with your wallet instead.
    ///
    /// Example: seal-sched chain fund 25
    Fund {
        /// FIL, like "25" or "0.5".
        amount: String,
    },
}

#[derive(Subcommand)]
enum StorageCmd {
    /// Attach a path to a worker, creating its sectorstore.json unless it has one.
    Attach {
        path: PathBuf,
        #[arg(long)]
        seal: bool,
        #[arg(long)]
        store: bool,
        #[arg(long, default_value_t = 10)]
        weight: u64,
        /// Groups this path belongs to (comma-separated).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Groups allowed to fetch from this path (comma-separated; empty: all).
        #[arg(long, value_delimiter = ',')]
        allow_to: Vec<String>,
        /// Byte cap, e.g. 4TiB (0: none).
        #[arg(long)]
        max_storage: Option<String>,
        /// The worker (default: the first one).
        #[arg(long)]
        worker: Option<String>,
    },
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Detach a path from its worker(s) in config.toml (comments kept); the path's files and
    /// sectorstore.json stay. Refused while a sector is there, unless --force.
    ///
    /// Example: seal-sched storage detach /mnt/old --worker local
    Detach {
        /// The path as attached (`seal-sched storage list` shows it).
        path: PathBuf,
        /// The worker (default: every worker the path is attached to).
        #[arg(long)]
        worker: Option<String>,
        /// Detach even with sectors there (they wait for the path to return).
        #[arg(long)]
        force: bool,
    },
    /// Re-index a storage path (Lotus's `storage redeclare`): list the sector files under it
    /// and point a sector whose recorded location lost its files here. Moves no file.
    ///
    /// Example: seal-sched storage redeclare /mnt/store2   # after moving sectors by hand
    Redeclare {
        /// The storage path (of a worker on this machine).
        path: PathBuf,
    },
}

fn show(json: bool, (text, value): (String, Value)) -> Result<()> {
    if json {
        cli::print_json_line(&value.to_string())
    } else {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}

#[derive(Subcommand)]
enum HostCmd {
    /// CPUs, load, memory, GPUs and each storage path's metadata and free space.
    Probe { roots: Vec<String> },
    /// Size and SHA-256 of every file under BASE/REL for each REL.
    Manifest { base: PathBuf, rels: Vec<String> },
    /// Move a sector's files between two storage paths of this host.
    Move {
        from: PathBuf,
        to: PathBuf,
        name: String,
    },
    /// Create a storage path's layout and sectorstore.json here (ARGS: JSON).
    Attach { path: PathBuf, args: String },
    /// Whether a storage path here holds any file of sector NAME (`{"holds": bool}`).
    Holds { root: PathBuf, name: String },
    /// Finalize's trimming of a sector cache here.
    Finalize {
        cache: PathBuf,
        #[arg(long)]
        drop_unsealed: Option<PathBuf>,
    },
}

fn host_cmd(cmd: HostCmd) -> Result<()> {
    use sealkit::sched::transfer;
    let out = match cmd {
        HostCmd::Probe { roots } => serde_json::to_value(hostcmd::probe(&roots))?,
        HostCmd::Manifest { base, rels } => {
            serde_json::to_value(transfer::manifest_local(&base, &rels)?)?
        }
        HostCmd::Move { from, to, name } => {
            storage::move_sector(&from, &to, &name)?;
            json!({"moved": name})
        }
        HostCmd::Holds { root, name } => json!({"holds": storage::holds(&root, &name)}),
        HostCmd::Attach { path, args } => {
            let a: hostcmd::AttachArgs =
                serde_json::from_str(&args).context("attach arguments are not valid")?;
            serde_json::to_value(hostcmd::attach(&path, &a)?)?
        }
        HostCmd::Finalize {
            cache,
            drop_unsealed,
        } => json!({"freed": hostcmd::finalize(&cache, drop_unsealed.as_deref())?}),
    };
    cli::print_json_line(&out.to_string())
}

fn main() -> ExitCode {
    // The repository (database, task logs, Commit1 outputs) is the owner's alone, and so is
    // everything the phases it starts write.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    cli::run_main("seal-sched", || {
        let args = Cli::parse();
        log::set_level(args.verbose, args.quiet);
        run(args)
    })
}

fn run(args: Cli) -> Result<()> {
    let repo = Repo::locate(args.repo.as_deref())?;
    match args.cmd {
        Cmd::TaskExec { dir } => supervisor::run(&dir),
        Cmd::Host(cmd) => host_cmd(cmd),
        Cmd::Init { seal_proof, miner } => {
            let mut cfg = repo.default_config_warn(&mut |w| {
                log::emit(log::Level::Warn, w, None);
            })?;
            if let Some(p) = seal_proof {
                cfg.sealing.seal_proof = p;
            }
            if let Some(m) = miner {
                cfg.sealing.miner = m;
            }
            let cfg = repo.init(Some(cfg))?;
            log::emit(
                log::Level::Info,
                &format!(
                    "initialized {} (edit {} to change workers and storage)",
                    repo.root.display(),
                    repo.config_path().display()
                ),
                None,
            );
            cli::print_json_line(&json!({"repo": repo.root, "workers": cfg.workers.len(), "seal_proof": cfg.sealing.seal_proof}).to_string())
        }
        // `run --quiet` (or -q): no event log, only warnings and errors.
        Cmd::Run {
            until_done,
            metrics,
        } => {
            let metrics = match metrics {
                Some(a) => Some(observe::server::check_listen(
                    &a,
                    repo.config()?.metrics.allow_remote,
                )?),
                None => None,
            };
            daemon::run(
                &repo,
                daemon::RunOptions {
                    until_done,
                    quiet: !log::enabled(log::Level::Info),
                    metrics,
                },
            )
        }
        Cmd::Serve { listen } => {
            let addr = observe::server::check_listen(&listen, repo.config()?.metrics.allow_remote)?;
            let ctx = observe::server::Ctx::new(&repo)?;
            let (server, bound) = observe::server::bind(addr)?;
            log::emit(
                log::Level::Info,
                &format!("web view on http://{bound}/ (/metrics, /api/state.json); read-only"),
                None,
            );
            observe::server::serve(server, ctx);
            anyhow::bail!("the listener on {bound} stopped")
        }
        Cmd::Alerts { json } => show(json.json, alerts::report(&engine::Engine::open(&repo)?)?),
        Cmd::Sectors(c) => sectors(&repo, c),
        Cmd::Workers { action, json } => {
            let e = engine::Engine::open(&repo)?;
            match action {
                None => show(json.json, report::workers(&e)?),
                Some(WorkersCmd::Enable { worker, tasks }) => switch(&e, &worker, &tasks, true),
                Some(WorkersCmd::Disable { worker, tasks }) => switch(&e, &worker, &tasks, false),
            }
        }
        Cmd::Jobs { all, abort, json } => {
            let e = engine::Engine::open(&repo)?;
            if let Some(id) = abort {
                engine::cancel(&repo, &e.db, id)?;
                return cli::print_json_line(&json!({"aborted": id}).to_string());
            }
            let head = e.chain.head()?;
            show(json.json, report::jobs(&e, all, head)?)
        }
        Cmd::Batch(BatchCmd::List { json }) => show(json.json, report::batches(&repo.open_db()?)?),
        Cmd::Chain(ChainCmd::Status { json }) => {
            show(json.json, report::chain_status(&repo, &repo.config()?)?)
        }
        Cmd::Chain(ChainCmd::Fund { amount }) => {
            let v = sealkit::sched::funds::fund_sim(&repo, &repo.config()?, &amount)?;
            cli::print_json_line(&v.to_string())
        }
        Cmd::Batch(BatchCmd::Publish { now }) => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let chain = engine::open_chain(&repo, &cfg)?;
            let publisher = batch::Publisher::acquire(&repo.publisher_lock())?;
            let inline = batch::Aggregation::Inline;
            let mut done = batch::recover(&publisher, &mut db, chain.as_ref(), &cfg, inline)?;
            for kind in MsgKind::ALL {
                done.extend(batch::publish(
                    &publisher,
                    &mut db,
                    chain.as_ref(),
                    &cfg,
                    inline,
                    kind,
                    now,
                )?);
            }
            let mut out = Vec::new();
            let mut not_sent = Vec::new();
            for (id, o) in &done {
                match o {
                    batch::Outcome::Landed(r) => {
                        eprintln!(
                            "Batch {id}:\n  Message: {}\n  Sectors: {}",
                            r.cid,
                            r.results
                                .iter()
                                .map(|(n, e)| format!(
                                    "{n} {}",
                                    if e.is_none() { "OK" } else { "ERROR" }
                                ))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        out.push(json!({"batch": id, "message": r.cid, "epoch": r.epoch,
                            "sectors": r.results.iter().map(|(n, e)| json!({"sector": n, "error": e})).collect::<Vec<_>>()}));
                    }
                    batch::Outcome::Pending => {
                        eprintln!("Batch {id}: sent, not landed yet");
                        out.push(json!({"batch": id, "pending": true}));
                    }
                    batch::Outcome::NotSent(e) => not_sent.push(format!("batch {id}: {e}")),
                    batch::Outcome::Aggregating => {
                        eprintln!("Batch {id}: its aggregate is being made");
                        out.push(json!({"batch": id, "aggregating": true}));
                    }
                    batch::Outcome::Refused(e) => {
                        eprintln!("Batch {id}: refused by the chain, split or failed: {e}");
                        out.push(json!({"batch": id, "refused": e}));
                    }
                    batch::Outcome::Dropped { resent_as, why } => {
                        eprintln!(
                            "Batch {id}: can never land, its sectors resent as {resent_as}: {why}"
                        );
                        out.push(json!({"batch": id, "dropped": why, "resent_as": resent_as}));
                    }
                }
            }
            if done.is_empty() {
                log::emit(
                    log::Level::Info,
                    &format!(
                        "no batch is due{}",
                        if now {
                            " (no sectors to publish)"
                        } else {
                            " (--now sends what is pending)"
                        }
                    ),
                    None,
                );
            }
            cli::print_json_line(&Value::Array(out).to_string())?;
            anyhow::ensure!(
                not_sent.is_empty(),
                "not sent, kept for a retry: {}",
                not_sent.join("; ")
            );
            Ok(())
        }
        Cmd::Storage(StorageCmd::List { json }) => {
            show(json.json, report::storage(&engine::Engine::open(&repo)?)?)
        }
        Cmd::Storage(StorageCmd::Attach {
            path,
            seal,
            store,
            weight,
            groups,
            allow_to,
            max_storage,
            worker,
        }) => {
            let cfg = repo.config()?;
            let wi = match &worker {
                Some(n) => cfg
                    .workers
                    .iter()
                    .position(|w| &w.name == n)
                    .ok_or_else(|| cfg.worker(n).unwrap_err())?,
                None => 0,
            };
            let a = hostcmd::AttachArgs {
                seal,
                store,
                weight,
                groups,
                allow_to,
                max_storage: max_storage
                    .as_deref()
                    .map(sealkit::sched::config::parse_size)
                    .transpose()?
                    .unwrap_or(0),
            };
            let w = &cfg.workers[wi];
            let (meta, existed): (storage::StoreMeta, bool) = if w.is_remote() {
                // The path is on the worker's host: its own seal-sched writes the metadata.
                sealkit::sched::shell::check_path(&path.display().to_string())?;
                let net = engine::net(&repo, &cfg)?;
                let h = net.host(&w.host_id())?;
                let out = net.ssh.sched(
                    h,
                    &[
                        "host",
                        "attach",
                        &path.display().to_string(),
                        &serde_json::to_string(&a)?,
                    ],
                )?;
                serde_json::from_slice(&out).context("the host sent malformed metadata")?
            } else {
                hostcmd::attach(&path, &a)?
            };
            let mut file = ConfigFile::load(&repo.config_path())?;
            file.add_storage(&cfg.workers[wi].name, &path.display().to_string())?;
            file.save()?;
            cli::print_json_line(&json!({"path": path, "worker": cfg.workers[wi].name, "meta": meta, "existing": existed}).to_string())
        }
        Cmd::Storage(StorageCmd::Detach {
            path,
            worker,
            force,
        }) => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let d = ops::detach_storage(
                &repo,
                &cfg,
                &mut db,
                &path.display().to_string(),
                worker.as_deref(),
                force,
            )?;
            cli::print_json_line(&serde_json::to_string(&d)?)
        }
        Cmd::Storage(StorageCmd::Redeclare { path }) => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let d = ops::redeclare_storage(&cfg, &mut db, &path)?;
            cli::print_json_line(&serde_json::to_string(&d)?)
        }
        Cmd::Demo { cc, deals, snap } => {
            let dir = args.repo.clone();
            let out = demo::run(demo::DemoOptions {
                dir,
                cc: cc.into(),
                deals: deals.into(),
                snap: snap.into(),
            })?;
            cli::print_json_line(&out.to_string())
        }
        Cmd::BenchPass { tasks, workers } => {
            let (tasks, workers) = (tasks as usize, workers as usize);
            let (q, w, p) = sealkit::sched::assign::synthetic_load(tasks, workers, 1);
            let table = sealkit::sched::resources::ResourceTable::defaults();
            let mut best = f64::INFINITY;
            let mut plan = None;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                plan = Some(sealkit::sched::assign::schedule(&q, &w, &p, &table, 0.0));
                best = best.min(t.elapsed().as_secs_f64());
            }
            let plan = plan.expect("ran");
            cli::print_json_line(&json!({"tasks": tasks, "workers": workers, "seconds": best,
                "assigned": plan.assignments.len(), "reserved": plan.reservations.len(), "waiting": plan.waiting.len()}).to_string())
        }
    }
}

fn switch(e: &engine::Engine, worker: &str, tasks: &[String], enabled: bool) -> Result<()> {
    e.cfg.worker(worker)?;
    anyhow::ensure!(
        !tasks.is_empty(),
        "name the task types to switch ({})",
        TaskType::short_names(&TaskType::SEALING)
    );
    for t in tasks {
        let k = TaskType::parse(t).with_context(|| format!("unknown task type {t:?}"))?;
        sealkit::sched::db::meta::set_switch(&e.db.conn, worker, k, enabled)?;
    }
    cli::print_json_line(&json!({"worker": worker, "tasks": e.worker_tasks(e.cfg.worker(worker)?)?.iter().map(|t| t.short()).collect::<Vec<_>>()}).to_string())
}

fn sectors(repo: &Repo, c: SectorsCmd) -> Result<()> {
    match c {
        SectorsCmd::Pledge { count } => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let chain = engine::open_chain(repo, &cfg)?;
            let mut added = Vec::new();
            for _ in 0..count {
                added.push(numbering::add_sector(
                    &mut db,
                    &cfg,
                    chain.as_ref(),
                    &[],
                    None,
                    None,
                )?);
            }
            cli::print_json_line(&json!({"pledged": added}).to_string())
        }
        SectorsCmd::Add {
            pieces,
            number,
            drop_unsealed,
        } => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let chain = engine::open_chain(repo, &cfg)?;
            let keep = drop_unsealed.then_some(false);
            let n = numbering::add_sector(&mut db, &cfg, chain.as_ref(), &pieces, number, keep)?;
            cli::print_json_line(&json!({"added": n}).to_string())
        }
        SectorsCmd::List { json } => show(json.json, report::sectors(&repo.open_db()?)?),
        SectorsCmd::Status { number, plot, json } => {
            let cfg = repo.config()?;
            let db = repo.open_db()?;
            let head = engine::open_chain(repo, &cfg)?.head()?;
            let (mut text, mut value) = report::status(&db, number, head)?;
            if let Some(file) = plot {
                let file = match file {
                    Some(f) => f,
                    None => {
                        std::fs::create_dir_all(repo.root.join("plots"))?;
                        repo.root.join("plots").join(format!("sector-{number}.svg"))
                    }
                };
                observe::save_sector_svg(repo, number, &file)?;
                text += &format!("  plot:    {} (open it in a browser)\n", file.display());
                value["plot"] = file.display().to_string().into();
            }
            show(json.json, (text, value))
        }
        SectorsCmd::Remove { number, force } => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let r = ops::remove_sector(repo, &cfg, &mut db, number, force)?;
            cli::print_json_line(&serde_json::to_string(&r)?)
        }
        SectorsCmd::SnapUp {
            number,
            pieces,
            drop_unsealed,
        } => {
            let cfg = repo.config()?;
            let mut db = repo.open_db()?;
            let r = proving::snap_up(
                &cfg,
                &mut db,
                number,
                &pieces,
                drop_unsealed.then_some(false),
            )?;
            cli::print_json_line(&serde_json::to_string(&r)?)
        }
        SectorsCmd::Unseal {
            number,
            piece,
            out,
            no_wait,
        } => {
            let mut db = repo.open_db()?;
            if proving::request_unseal(&mut db, number, !no_wait)? == proving::Unsealed::Pending {
                if no_wait {
                    log::emit(
                        log::Level::Info,
                        &format!(
                            "sector {number}: unseal queued; run this again once it is Proving"
                        ),
                        None,
                    );
                    return Ok(());
                }
                log::emit(
                    log::Level::Info,
                    &format!(
                        "sector {number}: waiting for the daemon to regenerate its unsealed copy (UNS)"
                    ),
                    None,
                );
                proving::wait_unsealed(&db, number, std::time::Duration::from_secs(1))?;
            }
            let want = match piece {
                Some(p) => proving::Want::Piece(p),
                None => proving::Want::Padded,
            };
            let bytes = proving::read(&db, number, &want, out.as_deref())?;
            if out.is_some() {
                cli::print_json_line(&proving::report(number, bytes, out.as_deref()).to_string())?;
            }
            Ok(())
        }
        SectorsCmd::RegenKey { number } => {
            let mut db = repo.open_db()?;
            let r = proving::request_regen_key(&mut db, number)?;
            cli::print_json_line(&serde_json::to_string(&r)?)
        }
        SectorsCmd::LotusMeta { number } => {
            let db = repo.open_db()?;
            cli::print_json_line(&sealkit::sched::handoff::lotus_meta(&db, number)?.to_string())
        }
        SectorsCmd::UpdateState {
            number,
            state,
            really_do_it,
        } => {
            let mut db = repo.open_db()?;
            let r = ops::update_state(&mut db, number, &state, really_do_it)?;
            cli::print_json_line(&serde_json::to_string(&r)?)
        }
    }
}
