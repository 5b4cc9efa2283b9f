//! What this machine has: logical CPUs, memory, swap and GPUs, as Lotus's worker reports
//! them (`worker_local.go`): totals for the config default, and "used outside the
//! scheduler" for admission.

#[derive(Debug, Clone, Copy, Default)]
pub struct Machine {
    pub cpus: usize,
    pub mem_physical: u64,
    pub mem_available: u64,
    pub mem_swap: u64,
    pub mem_swap_free: u64,
    pub gpus: usize,
}

pub fn detect() -> Machine {
    let mut m = Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Default::default()
    };
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(key), Some(kb)) = (it.next(), it.next().and_then(|v| v.parse::<u64>().ok()))
            else {
                continue;
            };
            let bytes = kb << 10;
            match key {
                "MemTotal:" => m.mem_physical = bytes,
                "MemAvailable:" => m.mem_available = bytes,
                "SwapTotal:" => m.mem_swap = bytes,
                "SwapFree:" => m.mem_swap_free = bytes,
                _ => {}
            }
        }
    }
    // NVIDIA's driver lists one directory per GPU; no driver, no GPUs to schedule.
    m.gpus = std::fs::read_dir("/proc/driver/nvidia/gpus").map_or(0, |d| d.count());
    m
}
