//! The repository: one directory holding `config.toml`, the state database, the simulated
//! chain, per-task directories and logs. Chosen by `--repo`, then `SEALKIT_REPO`, then
//! `~/.sealkit`. Everything in it is readable by its owner only: it holds sector documents
//! and the chain adapter's settings.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use super::config::{self, Config};
use super::db::Db;
use super::sysinfo;

pub const REPO_ENV: &str = "SEALKIT_REPO";

#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
}

impl Repo {
    /// The repository `--repo` names, else `$SEALKIT_REPO`, else `~/.sealkit`.
    pub fn locate(arg: Option<&Path>) -> Result<Repo> {
        let root = match arg {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os(REPO_ENV) {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => {
                    let home = std::env::var_os("HOME")
                        .context("neither --repo, SEALKIT_REPO nor HOME is set")?;
                    PathBuf::from(home).join(".sealkit")
                }
            },
        };
        Ok(Repo { root })
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn db_path(&self) -> PathBuf {
        self.root.join("sched.db")
    }
    pub fn chain_path(&self) -> PathBuf {
        self.root.join("chain.db")
    }
    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }
    /// Held by whoever sends batches to the chain (`batch::Publisher`).
    pub fn publisher_lock(&self) -> PathBuf {
        self.locks_dir().join("publisher.lock")
    }
    /// Where new sectors' deal pieces are kept until AddPiece has read them.
    pub fn pieces_dir(&self) -> PathBuf {
        self.root.join("pieces")
    }

    /// The lock a sector's task supervisor holds while its phase runs.
    pub fn sector_lock(&self, sector: u64) -> PathBuf {
        self.locks_dir().join(format!("sector-{sector}.lock"))
    }

    pub fn is_initialized(&self) -> bool {
        self.config_path().exists()
    }

    /// Loads the configuration, with a hint when the repository was never initialized.
    pub fn config(&self) -> Result<Config> {
        ensure!(
            self.is_initialized(),
            "{} is not a seal-sched repository (no config.toml): run `seal-sched init --repo {}`",
            self.root.display(),
            self.root.display()
        );
        Config::load(&self.config_path())
    }

    pub fn open_db(&self) -> Result<Db> {
        ensure!(
            self.is_initialized(),
            "{} is not a seal-sched repository (no config.toml): run `seal-sched init`",
            self.root.display()
        );
        self.check_state_files()?;
        Db::open(&self.db_path())
    }

    /// Refuses to go on with a state file that is damaged or gone: an unreadable sched.db or
    /// chain.db is never opened (SQLite would delete its `-wal`), and a missing sched.db is
    /// never silently replaced by an empty one when the repository already has a chain (so
    /// sectors had state): that would forget every sector.
    fn check_state_files(&self) -> Result<()> {
        let db = self.db_path();
        let chain = self.chain_path();
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let gone = |p: &Path| std::fs::symlink_metadata(p).is_err();
        ensure!(
            !gone(&db) || (gone(&chain) && gone(Path::new(&wal))),
            "{} is missing, but {} is here: this repository had sectors, so no new empty state \
             database is made; restore sched.db (and its -wal) from a backup (`seal-sched init` \
             makes a new repository elsewhere)",
            db.display(),
            if gone(&chain) {
                format!("{}-wal", db.display())
            } else {
                chain.display().to_string()
            }
        );
        super::db::check_header(&db)?;
        super::db::check_header(&chain)
    }

    /// Creates the repository with a default configuration for this machine: one local
    /// worker with all CPUs, memory and GPUs, one storage path that seals and stores, and the
    /// simulated chain. Refuses to overwrite an existing configuration.
    pub fn init(&self, cfg: Option<Config>) -> Result<Config> {
        ensure!(
            !self.config_path().exists(),
            "{} already exists: remove it first to start over",
            self.config_path().display()
        );
        for d in [
            self.root.clone(),
            self.tasks_dir(),
            self.locks_dir(),
            self.pieces_dir(),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))?;
        let cfg = match cfg {
            Some(c) => c,
            None => self.default_config()?,
        };
        cfg.validate()?;
        for w in &cfg.workers {
            for s in &w.storage {
                super::storage::ensure_path(Path::new(s), true, true)?;
            }
        }
        crate::fsutil::write_atomic(&self.config_path(), cfg.to_toml().as_bytes())?;
        std::fs::set_permissions(self.config_path(), std::fs::Permissions::from_mode(0o600))?;
        Db::open(&self.db_path())?;
        Ok(cfg)
    }

    /// The default configuration `init` writes.
    pub fn default_config(&self) -> Result<Config> {
        self.default_config_warn(&mut |_| {})
    }

    /// [`Repo::default_config`], saying through `warn` when GPU detection found nothing
    /// although this build can use a GPU (see [`super::gpu_assign::init_report`]).
    pub fn default_config_warn(&self, warn: &mut dyn FnMut(&str)) -> Result<Config> {
        let mut cfg = self.default_config_inner()?;
        for w in &mut cfg.workers {
            w.gpus = detected_gpus(w.gpus, warn);
        }
        Ok(cfg)
    }

    fn default_config_inner(&self) -> Result<Config> {
        let m = sysinfo::detect();
        let last = m.cpus.saturating_sub(1);
        Ok(Config {
            sealing: Default::default(),
            chain: Default::default(),
            batching: Default::default(),
            ssh: Default::default(),
            resources: Default::default(),
            metrics: Default::default(),
            alerts: Default::default(),
            workers: vec![config::Worker {
                name: "local".into(),
                cpus: format!("0-{last}"),
                memory: format!("{}MiB", m.mem_physical >> 20),
                swap: format!("{}MiB", m.mem_swap >> 20),
                gpus: m.gpus,
                windows: 2,
                tasks: config::all_tasks(),
                storage: vec![self.root.join("storage").display().to_string()],
                env: Default::default(),
                host: String::new(),
                port: 0,
                run_dir: config::default_run_dir(),
                bin_dir: String::new(),
                rsync_path: String::new(),
                fetch_limit: 0,
            }],
        })
    }
}

/// GPUs for a new worker: the driver's own count (`/proc/driver/nvidia/gpus`) or
/// `nvidia-smi -L`'s, whichever finds more, with a warning when that is none in a build with
/// the cuda feature.
fn detected_gpus(proc_gpus: usize, warn: &mut dyn FnMut(&str)) -> usize {
    let smi = super::gpu_assign::nvidia_smi_gpus();
    let (n, warning) =
        super::gpu_assign::init_report(proc_gpus, smi.as_deref(), cfg!(feature = "cuda"));
    if let Some(w) = warning {
        warn(&w);
    }
    n
}
