//! CPU placement: which CPUs this process may use, which of them share an L3 cache, and
//! pinning threads to them.
//!
//! `taskset -c 0-7 seal-pc1` must keep every thread on CPUs 0–7, so we read the affinity mask
//! the process was started with instead of assuming the whole machine.

use std::fs;

/// CPUs in this process's affinity mask, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// The L3 cache domain of `cpu` (its `shared_cpu_list`), or `None` if unknown.
fn l3_domain(cpu: usize) -> Option<String> {
    fs::read_to_string(format!(
        "/sys/devices/system/cpu/cpu{cpu}/cache/index3/shared_cpu_list"
    ))
    .ok()
    .map(|s| s.trim().to_string())
}

/// `cpus` grouped by shared L3 cache, largest group first; CPUs of one group are adjacent so
/// a hashing thread and its prefetchers can be placed on one cache.
pub fn l3_groups(cpus: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    for &c in cpus {
        let d = l3_domain(c);
        match groups.iter_mut().find(|(k, _)| *k == d) {
            Some((_, g)) => g.push(c),
            None => groups.push((d, vec![c])),
        }
    }
    let mut out: Vec<Vec<usize>> = groups.into_iter().map(|(_, g)| g).collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.len()));
    out
}

/// The allowed CPUs ordered so that CPUs sharing an L3 cache are adjacent.
pub fn ordered_cpus() -> Vec<usize> {
    l3_groups(&allowed_cpus()).concat()
}

/// Pins the calling thread to `cpu` (best effort: a failure only costs locality).
pub fn pin_current_thread(cpu: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
}

/// Restricts the calling thread (and every process it starts afterwards) to `cpus`: what
/// `taskset -c` does before it execs. An empty list leaves the mask as it is.
pub fn pin_current_thread_to(cpus: &[usize]) -> anyhow::Result<()> {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    if cpus.is_empty() {
        return Ok(());
    }
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c)
            .map_err(|e| anyhow::anyhow!("CPU {c} cannot be in an affinity mask: {e}"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|e| anyhow::anyhow!("cannot pin to CPUs {cpus:?}: {e}"))
}
