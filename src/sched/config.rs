//! `config.toml`: the repository's configuration (workers, storage, chain, batching, retries).
//!
//! The file is the operator's; `seal-sched init` writes a working default and the daemon
//! re-reads it on start. Every field has a default so a config only names what it changes.
//! Durations are strings with a unit (`"90s"`, `"24h"`, `"250ms"`), as Lotus writes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::task_type::TaskType;
use crate::sector::proof::SealProof;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub sealing: Sealing,
    #[serde(default)]
    pub chain: Chain,
    #[serde(default)]
    pub batching: Batching,
    #[serde(default)]
    pub ssh: Ssh,
    #[serde(default, rename = "worker")]
    pub workers: Vec<Worker>,
    /// Resource-table overrides, keyed like Lotus's environment variables
    /// (`PC1_32G_MAX_CONCURRENT = "4"`); the environment wins over these.
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// `seal-sched run --metrics` and `serve`: who may connect.
    #[serde(default)]
    pub metrics: Metrics,
    /// The operator's alerts: thresholds and where to send them.
    #[serde(default)]
    pub alerts: Alerts,
}

/// `[metrics]`: the metrics and web-view listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Listen on an address other than loopback. The pages name sectors, paths, hosts and
    /// errors, so they are for this machine only unless the operator says otherwise.
    pub allow_remote: bool,
}

/// `[alerts]`: when a condition is worth an operator's attention (see `sched::alerts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// A generic JSON POST target (`http://…`) for each new alert; empty: none.
    pub webhook: String,
    /// A sector whose phase failed this many times in a row.
    pub task_failures: u32,
    /// A compute state lasting this many times its task type's mean run time is stuck.
    pub stuck_factor: f64,
    /// ... but never before this long (short phases vary a lot in relative terms).
    pub stuck_min: String,
    /// A state with no task of its own (waiting for a batch, a seed) is stuck after this.
    pub stuck_wait: String,
    /// A pending batch sector whose deadline is closer than this.
    pub batch_deadline: String,
    /// A batch sent this long ago that has not landed (a message stuck in the node's pool).
    pub batch_landing: String,
    /// A storage path with less room than this is nearly full; empty: 16 sector sizes
    /// (about what one more sector needs while it is sealed).
    pub storage_min_free: String,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            webhook: String::new(),
            task_failures: 3,
            stuck_factor: 3.0,
            stuck_min: "10m".into(),
            stuck_wait: "6h".into(),
            batch_deadline: "1h".into(),
            batch_landing: "30m".into(),
            storage_min_free: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sealing {
    /// The registered seal proof of new sectors (name or id).
    pub seal_proof: String,
    /// The miner actor id: sector files are named `s-t0<miner>-<number>`.
    pub miner: u64,
    /// Failures of one phase before the sector gives up on it (Lotus: 3 for PC1/PC2).
    pub max_retries: u32,
    /// The first retry waits this long, each later one twice as long (Lotus waits a flat
    /// minute, MinRetryTime, with no back-off).
    pub retry_min: String,
    pub retry_max: String,
    /// Keep the unsealed copy of deal sectors at Finalize (Lotus AlwaysKeepUnsealedCopy).
    pub keep_unsealed: bool,
    /// Where the `seal-*` binaries are; empty: next to `seal-sched` itself.
    pub bin_dir: String,
    /// Per task type time limits (`PC1 = "48h"`); a task over its limit is killed and fails.
    pub timeouts: BTreeMap<String, String>,
    /// Most sectors one PC1 task labels together (`seal-pc1` with several documents: 16 per
    /// core on AVX-512 lanes, up to 4 on SHA-NI chains). Queued PC1 sectors on one storage
    /// path go as one task on a local worker, counted as one task with their summed memory;
    /// each moves on alone afterwards. 1: every sector alone (Lotus).
    pub pc1_batch: u32,
    /// How long a PC1 batch short of `pc1_batch` waits for more sectors, from when its
    /// oldest sector was queued for PC1 ("0s": go with what is queued).
    pub pc1_batch_wait: String,
}

impl Default for Sealing {
    fn default() -> Self {
        Sealing {
            seal_proof: "StackedDrg2KiBV1_1".into(),
            miner: 1000,
            max_retries: 3,
            retry_min: "60s".into(),
            retry_max: "30m".into(),
            keep_unsealed: true,
            bin_dir: String::new(),
            timeouts: BTreeMap::new(),
            pc1_batch: 1,
            pc1_batch_wait: "10m".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Chain {
    /// Which chain: the embedded simulated one, or a Lotus/Forest full node.
    pub kind: ChainKind,
    /// Simulated chain: wall-clock length of one epoch (mainnet: 30s). A node says its own.
    pub epoch: String,
    /// Simulated chain: epochs between a precommit landing and its interactive seed
    /// (mainnet: 150). A node says its own (`PreCommitChallengeDelay`).
    pub seed_delay: u64,
    /// Secret mixed into the simulated chain's randomness, so two repositories differ.
    pub secret: String,
    /// Simulated chain: the FIL its wallet holds when the chain is created (it pays every
    /// sector's deposit and pledge as message value; `seal-sched chain fund` adds more).
    pub wallet: String,
    /// Lotus: the node, as `FULLNODE_API_INFO` writes it (`TOKEN:/ip4/…/tcp/1234/http`);
    /// empty: the environment's `FULLNODE_API_INFO`.
    pub api_info: String,
    /// Lotus: the network the node must be on (`mainnet`, `calibrationnet`, …); empty: any.
    pub network: String,
    /// Lotus: a file every request and response is appended to (empty: none).
    pub record: String,
    /// Lotus: a committed-capacity sector's lifetime at precommit, in days (its expiration
    /// is the head plus this; Lotus's `CommittedCapacitySectorLifetime`, 540 days). The actor
    /// wants at least 180 days after the latest possible prove-commit (30 days on) and at most
    /// 3.5 years.
    pub sector_lifetime_days: u64,
    /// Lotus: the most a message may spend on gas, per sector in it, in FIL (Curio's
    /// `MaxCommitBatchGasFee` per-sector default, 0.03).
    pub max_fee_per_sector: String,
}

/// The chain `seal-sched` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// The embedded simulated chain (`chain.db`): the default, for the demo and the tests.
    Sim,
    /// The operator's own Lotus or Forest full node, over JSON-RPC.
    Lotus,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            kind: ChainKind::Sim,
            epoch: "30s".into(),
            seed_delay: 150,
            secret: "sealkit".into(),
            wallet: "1000".into(),
            api_info: String::new(),
            network: String::new(),
            record: String::new(),
            sector_lifetime_days: 540,
            max_fee_per_sector: "0.03".into(),
        }
    }
}

/// How remote workers are reached: the system `ssh`, with connection sharing, keep-alives
/// and strict host keys, plus the heartbeat and transfer limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ssh {
    /// An ssh_config file (`ssh -F`); empty: the user's own (`~/.ssh/config`).
    pub config: String,
    /// Extra `-o` options, `"Key=Value"` each (`"IdentityFile=/etc/sealkit/id_ed25519"`).
    pub options: Vec<String>,
    /// `StrictHostKeyChecking=yes` (the default) refuses unknown or changed host keys;
    /// `false` accepts a new host's key on first contact (`accept-new`), never a changed one.
    pub strict_host_keys: bool,
    pub connect_timeout: String,
    /// `ServerAliveInterval` and `ServerAliveCountMax`: a silent connection is dropped after
    /// interval × count.
    pub alive_interval: String,
    pub alive_count: u32,
    /// How long a shared (ControlMaster) connection outlives its last session.
    pub control_persist: String,
    /// Every host is probed this often (CPU, memory, GPUs, storage paths).
    pub heartbeat: String,
    /// A host with no successful probe for this long is down: it gets no new work, and
    /// sectors whose files it holds wait for it.
    pub down_after: String,
    /// Transfers running into one host at once (a worker's `fetch_limit` overrides it).
    pub fetch_limit: usize,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            config: String::new(),
            options: Vec::new(),
            strict_host_keys: true,
            connect_timeout: "10s".into(),
            alive_interval: "15s".into(),
            alive_count: 4,
            control_persist: "10m".into(),
            heartbeat: "10s".into(),
            down_after: "60s".into(),
            fetch_limit: 2,
        }
    }
}

/// Lotus's `[Sealing]` batching keys with their defaults
/// (docs/lotus-scheduler.md#batching-config-defaults).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Batching {
    pub max_precommit_batch: usize,
    pub precommit_batch_wait: String,
    pub precommit_batch_slack: String,
    pub min_commit_batch: usize,
    pub max_commit_batch: usize,
    pub commit_batch_wait: String,
    pub commit_batch_slack: String,
    /// Sectors in one `ProveReplicaUpdates3` at most (Curio batches up to 16).
    pub max_update_batch: usize,
    /// How long the first snapped sector waits for others before its update is sent.
    pub update_batch_wait: String,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_precommit_batch: 256,
            precommit_batch_wait: "24h".into(),
            precommit_batch_slack: "3h".into(),
            min_commit_batch: 4,
            max_commit_batch: 819,
            commit_batch_wait: "24h".into(),
            commit_batch_slack: "1h".into(),
            max_update_batch: 16,
            update_batch_wait: "1h".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    pub name: String,
    /// CPUs the worker's tasks are pinned to, taskset style (`"0-7,16-23"`).
    pub cpus: String,
    /// Physical memory and swap the scheduler may plan with (`"256GiB"`).
    pub memory: String,
    #[serde(default)]
    pub swap: String,
    #[serde(default)]
    pub gpus: usize,
    /// Scheduling windows: how many full capacities of work may be placed on the worker
    /// ahead of running (Lotus SchedWindows, 2).
    #[serde(default = "two")]
    pub windows: u32,
    /// Task types this worker runs (`lotus-worker run --precommit1=false` drops PC1).
    #[serde(default = "all_tasks")]
    pub tasks: Vec<String>,
    /// Storage paths local to the worker.
    #[serde(default)]
    pub storage: Vec<String>,
    /// Environment for the worker's tasks (`TMPDIR`, `FIL_PROOFS_*`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The ssh destination of a remote worker (`"user@pc1-box"`, or a `Host` of the ssh
    /// config); empty: the worker is this machine. Its `storage` and `cpus` are the host's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// ssh port; 0: the ssh config's (22).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port: u16,
    /// On the host: where task inputs are staged and sector locks live.
    #[serde(
        default = "default_run_dir",
        skip_serializing_if = "is_default_run_dir"
    )]
    pub run_dir: String,
    /// On the host: where the `seal-*` binaries are; empty: `[sealing] bin_dir`, else the
    /// directory `seal-sched` runs from here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bin_dir: String,
    /// rsync's `--rsync-path` on the host (a wrapper, or rsync outside `$PATH`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rsync_path: String,
    /// Transfers into this worker's host at once; 0: `[ssh] fetch_limit`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fetch_limit: usize,
}

/// Sectors one update batch carries at most: Curio's limit for `ProveReplicaUpdates3`
/// (docs/snap-deals.md#the-scheduled-pipeline).
pub const MAX_UPDATE_BATCH: usize = 16;

/// GPUs a worker may declare at most.
pub const MAX_GPUS: usize = 1024;

/// Epochs between precommit and seed at most (mainnet: 150); more is a typo that would
/// overflow epoch arithmetic.
pub const MAX_SEED_DELAY: u64 = 1_000_000;

pub fn default_run_dir() -> String {
    "/var/tmp/sealkit-worker".into()
}

fn is_default_run_dir(s: &String) -> bool {
    *s == default_run_dir()
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn two() -> u32 {
    2
}

/// A worker's `tasks` when its config names none: [`TaskType::SEALING`].
pub fn all_tasks() -> Vec<String> {
    TaskType::SEALING
        .iter()
        .map(|t| t.short().to_string())
        .collect()
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "config {}: {}",
                path.display(),
                e.to_string().lines().collect::<Vec<_>>().join(" ")
            )
        })?;
        cfg.validate()
            .with_context(|| format!("config {}", path.display()))?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    /// Checks every value that would otherwise fail later, naming the key.
    pub fn validate(&self) -> Result<()> {
        self.seal_proof()?;
        for (k, v) in [
            ("sealing.retry_min", &self.sealing.retry_min),
            ("sealing.retry_max", &self.sealing.retry_max),
            ("sealing.pc1_batch_wait", &self.sealing.pc1_batch_wait),
            ("chain.epoch", &self.chain.epoch),
            (
                "batching.precommit_batch_wait",
                &self.batching.precommit_batch_wait,
            ),
            (
                "batching.precommit_batch_slack",
                &self.batching.precommit_batch_slack,
            ),
            (
                "batching.commit_batch_wait",
                &self.batching.commit_batch_wait,
            ),
            (
                "batching.update_batch_wait",
                &self.batching.update_batch_wait,
            ),
            (
                "batching.commit_batch_slack",
                &self.batching.commit_batch_slack,
            ),
            ("alerts.stuck_min", &self.alerts.stuck_min),
            ("alerts.stuck_wait", &self.alerts.stuck_wait),
            ("alerts.batch_deadline", &self.alerts.batch_deadline),
            ("alerts.batch_landing", &self.alerts.batch_landing),
        ] {
            parse_duration(v).with_context(|| format!("key {k}"))?;
        }
        if !self.alerts.storage_min_free.is_empty() {
            parse_size(&self.alerts.storage_min_free).context("key alerts.storage_min_free")?;
        }
        ensure!(
            self.alerts.stuck_factor.is_finite() && self.alerts.stuck_factor > 0.0,
            "key alerts.stuck_factor: must be a number above 0"
        );
        ensure!(
            self.alerts.webhook.is_empty() || self.alerts.webhook.starts_with("http://"),
            "key alerts.webhook: {:?} is not an http:// URL (https is not built in: point it at \
             a relay on this machine, such as Alertmanager or a local proxy)",
            self.alerts.webhook
        );
        ensure!(
            (1..=1024).contains(&self.sealing.pc1_batch),
            "key sealing.pc1_batch: must be 1 to 1024 sectors (1: no batches)"
        );
        ensure!(
            parse_duration(&self.chain.epoch)? > 0.0,
            "key chain.epoch: must be longer than 0s"
        );
        for (k, v) in &self.sealing.timeouts {
            TaskType::parse(k)
                .with_context(|| format!("key sealing.timeouts.{k}: unknown task type"))?;
            parse_duration(v).with_context(|| format!("key sealing.timeouts.{k}"))?;
        }
        for (k, v) in [
            ("ssh.connect_timeout", &self.ssh.connect_timeout),
            ("ssh.alive_interval", &self.ssh.alive_interval),
            ("ssh.control_persist", &self.ssh.control_persist),
            ("ssh.heartbeat", &self.ssh.heartbeat),
            ("ssh.down_after", &self.ssh.down_after),
        ] {
            ensure!(
                parse_duration(v).with_context(|| format!("key {k}"))? >= 1.0,
                "key {k}: must be at least 1s"
            );
        }
        for o in &self.ssh.options {
            ensure!(
                o.contains('=') && !o.starts_with('-') && !o.contains('\n'),
                "key ssh.options: {o:?} is not \"Key=Value\""
            );
        }
        ensure!(
            self.chain.seed_delay <= MAX_SEED_DELAY,
            "key chain.seed_delay: must be at most {MAX_SEED_DELAY} epochs"
        );
        ensure!(
            (211..=1278).contains(&self.chain.sector_lifetime_days),
            "key chain.sector_lifetime_days: must be 211 to 1278 days (the actor wants 180 days \
             after the latest possible prove-commit, 30 days on, and at most 3.5 years)"
        );
        crate::filecoin::token::parse_fil(&self.chain.max_fee_per_sector)
            .context("key chain.max_fee_per_sector")?;
        crate::filecoin::token::parse_fil(&self.chain.wallet).context("key chain.wallet")?;
        ensure!(
            self.batching.max_precommit_batch > 0,
            "key batching.max_precommit_batch: must be at least 1"
        );
        let most = *crate::snark::aggregate::INTERACTIVE_SECTORS.end();
        ensure!(
            (1..=most).contains(&self.batching.max_commit_batch),
            "key batching.max_commit_batch: must be 1 to {most} (the most sectors the miner actor takes in one aggregate)"
        );
        ensure!(
            (1..=MAX_UPDATE_BATCH).contains(&self.batching.max_update_batch),
            "key batching.max_update_batch: must be 1 to {MAX_UPDATE_BATCH}"
        );
        ensure!(
            !self.workers.is_empty(),
            "no [[worker]]: add one (seal-sched init writes a default)"
        );
        let mut names = std::collections::BTreeSet::new();
        for w in &self.workers {
            let at = format!("worker {:?}", w.name);
            ensure!(!w.name.is_empty(), "a [[worker]] has an empty name");
            ensure!(names.insert(&w.name), "{at}: the name is used twice");
            parse_cpus(&w.cpus).with_context(|| format!("{at}: key cpus"))?;
            parse_size(&w.memory).with_context(|| format!("{at}: key memory"))?;
            if !w.swap.is_empty() {
                parse_size(&w.swap).with_context(|| format!("{at}: key swap"))?;
            }
            ensure!(
                (1..=super::assign::MAX_WINDOWS).contains(&w.windows),
                "{at}: key windows must be 1 to {}",
                super::assign::MAX_WINDOWS
            );
            ensure!(
                w.gpus <= MAX_GPUS,
                "{at}: key gpus must be at most {MAX_GPUS}"
            );
            for t in &w.tasks {
                TaskType::parse(t)
                    .with_context(|| format!("{at}: key tasks: unknown task type {t:?}"))?;
            }
            for s in &w.storage {
                super::shell::check_path(s).with_context(|| format!("{at}: key storage"))?;
            }
            if w.is_remote() {
                super::shell::check_path(&w.run_dir)
                    .with_context(|| format!("{at}: key run_dir"))?;
                ensure!(
                    !w.host.starts_with('-') && !w.host.contains(char::is_whitespace),
                    "{at}: key host {:?} is not an ssh destination",
                    w.host
                );
                if !w.bin_dir.is_empty() {
                    super::shell::check_path(&w.bin_dir)
                        .with_context(|| format!("{at}: key bin_dir"))?;
                }
            }
            for k in w.env.keys() {
                ensure!(
                    !k.is_empty()
                        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !k.as_bytes()[0].is_ascii_digit(),
                    "{at}: env key {k:?} is not a variable name"
                );
            }
        }
        super::resources::ResourceTable::defaults()
            .with_overrides(&self.resource_overrides())
            .map_err(|e| anyhow::anyhow!("[resources]: {e}"))?;
        Ok(())
    }

    pub fn seal_proof(&self) -> Result<SealProof> {
        let s = &self.sealing.seal_proof;
        match s.parse::<u64>() {
            Ok(id) => SealProof::from_id(id),
            Err(_) => SealProof::from_name(s),
        }
        .with_context(|| format!("key sealing.seal_proof: {s:?}"))
    }

    pub fn resource_overrides(&self) -> Vec<(String, String)> {
        self.resources
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn worker(&self, name: &str) -> Result<&Worker> {
        self.workers
            .iter()
            .find(|w| w.name == name)
            .with_context(|| {
                let known: Vec<&str> = self.workers.iter().map(|w| w.name.as_str()).collect();
                format!("unknown worker {name:?} (known: {})", known.join(", "))
            })
    }

    /// Seconds for a duration key that [`Config::validate`] accepted.
    pub fn secs(s: &str) -> f64 {
        parse_duration(s).expect("validated duration")
    }

    pub fn timeout(&self, task: TaskType) -> Option<f64> {
        self.sealing
            .timeouts
            .iter()
            .find(|(k, _)| TaskType::parse(k) == Some(task))
            .map(|(_, v)| Config::secs(v))
    }

    pub fn bin_dir(&self) -> PathBuf {
        if !self.sealing.bin_dir.is_empty() {
            return PathBuf::from(&self.sealing.bin_dir);
        }
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

impl Worker {
    pub fn is_remote(&self) -> bool {
        !self.host.is_empty()
    }

    /// The host the worker's files and processes are on: `""` for this machine, else the
    /// ssh destination with its port (`root@pc1:2222`), which names its storage locations.
    pub fn host_id(&self) -> String {
        match (self.host.as_str(), self.port) {
            ("", _) => String::new(),
            (h, 0) => h.to_string(),
            (h, p) => format!("{h}:{p}"),
        }
    }

    pub fn task_types(&self) -> Vec<TaskType> {
        self.tasks
            .iter()
            .filter_map(|t| TaskType::parse(t))
            .collect()
    }
}

/// `"90s"`, `"1.5h"`, `"250ms"`, `"2d"`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration (like \"90s\", \"24h\")"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        u => bail!("{s:?}: unknown duration unit {u:?} (ms, s, m, h, d)"),
    };
    ensure!(
        n * scale <= MAX_DURATION_SECS,
        "{s:?}: longer than the most this accepts (10 years)"
    );
    Ok(n * scale)
}

/// `"256GiB"`, `"512MiB"`, `"2KiB"`, `"1.5TiB"` or plain bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a size (like \"64GiB\")"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        u => bail!("{s:?}: unknown size unit {u:?} (KiB, MiB, GiB, TiB)"),
    };
    let bytes = n * (1u64 << shift) as f64;
    ensure!(
        bytes <= MAX_SIZE as f64,
        "{s:?}: larger than the most this accepts (1 EiB)"
    );
    Ok(bytes as u64)
}

/// CPU numbers above this are refused: no machine has more, and a typo such as
/// `"0-4000000000"` would otherwise allocate gigabytes for the list.
pub const MAX_CPUS: usize = 65_536;

/// Sizes above this (1 EiB) are refused: no memory or storage path is that large, and sums
/// of such sizes would overflow.
pub const MAX_SIZE: u64 = 1 << 60;

/// Durations above this (10 years) are refused as typos.
pub const MAX_DURATION_SECS: f64 = 10.0 * 365.0 * 86_400.0;

/// A taskset CPU list (`"0-3,8,10-11"`) as CPU numbers, each below [`MAX_CPUS`].
pub fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let (a, b): (usize, usize) = (
            a.parse()
                .with_context(|| format!("{s:?}: {a:?} is not a CPU number"))?,
            b.parse()
                .with_context(|| format!("{s:?}: {b:?} is not a CPU number"))?,
        );
        ensure!(a <= b, "{s:?}: range {part} runs backwards");
        ensure!(
            b < MAX_CPUS,
            "{s:?}: CPU {b} is beyond the most a machine has ({MAX_CPUS})"
        );
        cpus.extend(a..=b);
    }
    ensure!(!cpus.is_empty(), "{s:?}: no CPUs");
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats bytes the way the CLI shows them (`1.5 GiB`).
pub fn show_size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("90s").unwrap(), 90.0);
        assert_eq!(parse_duration("24h").unwrap(), 86400.0);
        assert_eq!(parse_duration("250ms").unwrap(), 0.25);
        assert!(parse_duration("5 fortnights").is_err());
        assert_eq!(parse_size("2KiB").unwrap(), 2048);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_cpus("0-3,8,2").unwrap(), vec![0, 1, 2, 3, 8]);
        assert!(parse_cpus("3-1").is_err());
        assert_eq!(show_size(3 << 29), "1.5 GiB");
    }

    /// Operator-typed numbers that size an allocation or an arithmetic are bounded, with one
    /// line naming the key (`cpus = "0-4000000000"` used to allocate 32 GB and abort).
    #[test]
    fn values_that_would_allocate_or_overflow_are_refused() {
        let w = |k: &str, v: &str| {
            format!("[[worker]]\nname = \"a\"\ncpus = \"0-1\"\nmemory = \"4GiB\"\n{k} = {v}\n")
        };
        let bad = |text: &str| {
            let cfg: Config = toml::from_str(text).unwrap();
            format!("{:#}", cfg.validate().unwrap_err())
        };
        let e = bad(&w("swap", "\"1GiB\"").replace("0-1", "0-4000000000"));
        assert_eq!(
            e,
            "worker \"a\": key cpus: \"0-4000000000\": CPU 4000000000 is beyond the most a machine has (65536)"
        );
        assert!(parse_cpus("65535").is_ok());
        assert!(parse_cpus("65536").is_err());
        assert!(bad(&w("swap", "\"99999999999TiB\"")).contains("key swap"));
        assert!(bad(&w("windows", "100000")).contains("key windows must be 1 to 64"));
        assert!(bad(&w("gpus", "100000")).contains("key gpus"));
        let seed = format!(
            "{}[chain]\nseed_delay = 9223372036854775807\n",
            w("gpus", "0")
        );
        assert!(bad(&seed).contains("key chain.seed_delay"));
        let retry = format!(
            "{}[sealing]\nretry_max = \"99999999999d\"\n",
            w("gpus", "0")
        );
        assert!(bad(&retry).contains("key sealing.retry_max"));
        let sealing = |k: &str, v: &str| format!("{}[sealing]\n{k} = {v}\n", w("gpus", "0"));
        for n in ["0", "1025"] {
            assert_eq!(
                bad(&sealing("pc1_batch", n)),
                "key sealing.pc1_batch: must be 1 to 1024 sectors (1: no batches)"
            );
        }
        assert!(
            bad(&sealing("pc1_batch_wait", "\"ten minutes\"")).contains("sealing.pc1_batch_wait")
        );
        let ok: Config = toml::from_str(&sealing("pc1_batch", "1024")).unwrap();
        assert!(ok.validate().is_ok());
        let batching = |k: &str, v: &str| format!("{}[batching]\n{k} = {v}\n", w("gpus", "0"));
        for n in ["0", "820"] {
            assert!(bad(&batching("max_commit_batch", n))
                .starts_with("key batching.max_commit_batch: must be 1 to 819"));
        }
        let ok: Config = toml::from_str(&batching("max_commit_batch", "819")).unwrap();
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn errors_name_the_key() {
        let bad = |text: &str| {
            let cfg: Config = toml::from_str(text).unwrap();
            format!("{:#}", cfg.validate().unwrap_err())
        };
        let w = "[[worker]]\nname = \"a\"\ncpus = \"0-1\"\nmemory = \"4GiB\"\n";
        assert!(bad(&format!("{w}[chain]\nepoch = \"soon\"\n")).contains("chain.epoch"));
        assert!(bad(&format!("{w}[chain]\nwallet = \"-1\"\n")).contains("chain.wallet"));
        assert!(bad(&w.replace("0-1", "x")).contains("key cpus"));
        assert!(bad(&format!("{w}{w}")).contains("used twice"));
        assert!(bad("").contains("no [[worker]]"));
        assert!(bad(&format!("{w}[sealing]\nseal_proof = \"Nope\"\n")).contains("seal_proof"));
        assert!(
            bad(&format!("{w}[resources]\nPC1_2K_MAX_CONCURRENT = \"x\"\n"))
                .contains("PC1_2K_MAX_CONCURRENT")
        );
        assert!(toml::from_str::<Config>("[sealing]\ntypo = 1\n").is_err());
        // Remote workers: nothing that ssh or a shell would read as an option or a command.
        let remote = |extra: &str| bad(&format!("{w}host = \"pc1\"\n{extra}"));
        assert!(bad(&format!("{w}host = \"-oProxyCommand=sh\"\n")).contains("key host"));
        assert!(remote("storage = [\"/srv/a\\nrm -rf /\"]\n").contains("key storage"));
        assert!(remote("storage = [\"/srv/../etc\"]\n").contains("key storage"));
        assert!(remote("run_dir = \"tmp\"\n").contains("key run_dir"));
        assert!(remote("env = { \"A;B\" = \"1\" }\n").contains("env key"));
        assert!(bad(&format!("{w}[ssh]\nheartbeat = \"0s\"\n")).contains("ssh.heartbeat"));
        assert!(
            bad(&format!("{w}[ssh]\noptions = [\"-oProxyCommand=x\"]\n")).contains("ssh.options")
        );
    }
}
