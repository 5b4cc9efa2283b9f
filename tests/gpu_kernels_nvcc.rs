//! The CUDA kernels compile with nvcc: PTX for compute_80 and Hopper (sm_90) machine code,
//! so a kernel that does not compile fails the tests before it reaches a GPU host. Runs
//! when `SEALKIT_NVCC` names an nvcc (scripts/test.sh installs the pinned PyPI wheels and
//! sets it through scripts/cuda-wheels.sh); says so and passes otherwise.

use std::path::Path;
use std::process::Command;

#[test]
fn kernels_compile_with_nvcc() {
    let Ok(nvcc) = std::env::var("SEALKIT_NVCC") else {
        eprintln!("SEALKIT_NVCC not set: kernels not compiled (scripts/test.sh sets it)");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = root.join("src/gpu/kernels/poseidon.cu");
    for (what, args, file) in [
        ("PTX", &["-ptx", "-arch=compute_80"][..], "poseidon.ptx"),
        (
            "sm_90 cubin",
            &["-cubin", "-arch=sm_90"][..],
            "poseidon.cubin",
        ),
    ] {
        let dst = out.join(file);
        let run = Command::new(&nvcc)
            .args(args)
            .arg("-I")
            .arg(root.join("src/gpu/kernels"))
            .arg(&src)
            .arg("-o")
            .arg(&dst)
            .output()
            .unwrap_or_else(|e| panic!("running {nvcc}: {e}"));
        assert!(
            run.status.success(),
            "nvcc {what}:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let bytes = std::fs::read(&dst).unwrap();
        for arity in [2, 8, 11, 16] {
            let name = format!("sk_poseidon_strided_{arity}");
            assert!(
                bytes.windows(name.len()).any(|w| w == name.as_bytes()),
                "{what} has {name}"
            );
        }
    }
}
