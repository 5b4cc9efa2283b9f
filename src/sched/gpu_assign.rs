//! Which GPU a task gets: one specific device per GPU task, the least loaded of its worker's,
//! handed to the phase through `CUDA_VISIBLE_DEVICES` / `NVIDIA_VISIBLE_DEVICES` so that two
//! tasks on one worker never both land on device 0 (what happens when every process just
//! opens "the GPU"). Pure: the holdings come in, the choice goes out.
//!
//! Holdings live in each running task's `task.json` (`TaskSpec::gpu`), written before the
//! task starts, so a restarted daemon and `seal-sched workers` see the same assignment.

/// One running task's hold on a GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holding {
    pub task: u64,
    pub gpu: usize,
    /// The task type's `gpu_utilization` (the resource table's share of one GPU).
    pub utilization: f64,
}

/// The least-loaded GPU of `gpus` (sum of the holders' utilization; ties to the lowest
/// index); `None` when the worker has no GPU. Holdings on devices past `gpus` (a config that
/// shrank) are ignored.
pub fn least_loaded(gpus: usize, held: &[Holding]) -> Option<usize> {
    (0..gpus).min_by(|a, b| {
        let load = |g: usize| -> f64 {
            held.iter()
                .filter(|h| h.gpu == g)
                .map(|h| h.utilization)
                .sum()
        };
        load(*a).total_cmp(&load(*b)).then(a.cmp(b))
    })
}

/// The environment that confines a process to GPU `gpu`: the CUDA runtime's and the NVIDIA
/// container runtime's variables. Inside the process the device is then ordinal 0.
pub fn visible_devices_env(gpu: usize) -> [(String, String); 2] {
    [
        ("CUDA_VISIBLE_DEVICES".into(), gpu.to_string()),
        ("NVIDIA_VISIBLE_DEVICES".into(), gpu.to_string()),
    ]
}

/// GPUs `nvidia-smi -L` lists (lines `GPU 0: NVIDIA H200 (UUID: …)`); `None` when it cannot
/// run (no driver installed).
pub fn nvidia_smi_gpus() -> Option<Vec<String>> {
    let out = std::process::Command::new("nvidia-smi")
        .arg("-L")
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse_nvidia_smi_list(&String::from_utf8_lossy(&out.stdout)))
}

/// The GPU lines of `nvidia-smi -L` output.
pub fn parse_nvidia_smi_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GPU "))
        .map(str::to_string)
        .collect()
}

/// What `seal-sched init` says about GPUs: the count for the worker's `gpus`, and a warning
/// when there is none although this build can use one (a silent "0 GPUs" leaves sealing on
/// the CPU without anyone noticing), or when there are GPUs this build cannot use.
pub fn init_report(
    proc_gpus: usize,
    smi: Option<&[String]>,
    cuda_feature: bool,
) -> (usize, Option<String>) {
    let found = proc_gpus.max(smi.map_or(0, <[String]>::len));
    let warning = match (found, cuda_feature) {
        (0, true) => Some(match smi {
            None => "no GPU found: nvidia-smi cannot run (no NVIDIA driver?) and \
                     /proc/driver/nvidia/gpus is empty; workers get gpus = 0 and PC2 runs on \
                     the CPU (set gpus in config.toml once the driver is installed)"
                .to_string(),
            Some(_) => "no GPU found: nvidia-smi lists none; workers get gpus = 0 and PC2 \
                        runs on the CPU"
                .to_string(),
        }),
        (n, false) if n > 0 => Some(format!(
            "{n} GPU(s) found, but this seal-sched was built without the cuda feature: the \
             phases will not use them"
        )),
        _ => None,
    };
    (found, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(task: u64, gpu: usize, utilization: f64) -> Holding {
        Holding {
            task,
            gpu,
            utilization,
        }
    }

    #[test]
    fn picks_the_least_loaded_device() {
        assert_eq!(least_loaded(0, &[]), None);
        assert_eq!(least_loaded(2, &[]), Some(0));
        assert_eq!(least_loaded(2, &[h(1, 0, 1.0)]), Some(1));
        assert_eq!(least_loaded(3, &[h(1, 0, 1.0), h(2, 1, 0.5)]), Some(2));
        assert_eq!(
            least_loaded(2, &[h(1, 0, 0.5), h(2, 1, 0.5), h(3, 1, 0.5)]),
            Some(0)
        );
        // A holding on a device the worker no longer has is not a device to pick.
        assert_eq!(least_loaded(1, &[h(1, 3, 1.0)]), Some(0));
        let env = visible_devices_env(3);
        assert_eq!(env[0], ("CUDA_VISIBLE_DEVICES".into(), "3".into()));
        assert_eq!(env[1], ("NVIDIA_VISIBLE_DEVICES".into(), "3".into()));
    }

    #[test]
    fn init_detection() {
        let smi = parse_nvidia_smi_list(
            "GPU 0: NVIDIA H200 (UUID: GPU-1)\nGPU 1: NVIDIA H200 (UUID: GPU-2)\n\n",
        );
        assert_eq!(smi.len(), 2);
        assert_eq!(init_report(0, Some(&smi), true), (2, None));
        let (n, w) = init_report(0, None, true);
        assert_eq!(n, 0);
        assert!(w
            .unwrap()
            .starts_with("no GPU found: nvidia-smi cannot run"));
        assert!(init_report(0, Some(&[]), true)
            .1
            .unwrap()
            .contains("nvidia-smi lists none"));
        assert_eq!(init_report(0, None, false), (0, None));
        assert!(init_report(1, None, false)
            .1
            .unwrap()
            .contains("without the cuda feature"));
    }
}
