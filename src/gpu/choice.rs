//! Which PC2 work runs on a GPU, from the reference's environment variables and sealkit's own
//! flag. Pure: the environment is passed in, so the rules are tested without touching it.
//!
//! - `FIL_PROOFS_USE_GPU_COLUMN_BUILDER` / `FIL_PROOFS_USE_GPU_TREE_BUILDER` (the reference's
//!   settings, read as booleans the way its `config` crate does): column hashes / tree rows
//!   on the GPU *if one can be used*; without one PC2 says so and runs on the CPU, so an
//!   environment copied from a GPU host still seals.
//! - `seal-pc2 --gpu` or `SEALKIT_GPU=1`: both on the GPU, and no GPU is an error (an
//!   operator who asked for the GPU explicitly wants to know it is not there).

/// Where one kind of work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Cpu,
    /// On a GPU; `required`: no GPU is an error rather than a fall-back to the CPU.
    Gpu {
        required: bool,
    },
}

impl Want {
    pub fn gpu(self) -> bool {
        matches!(self, Want::Gpu { .. })
    }
}

/// Where PC2's two kinds of Poseidon work run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub columns: Want,
    pub trees: Want,
}

impl Choice {
    pub fn any_gpu(&self) -> bool {
        self.columns.gpu() || self.trees.gpu()
    }

    pub fn required(&self) -> bool {
        matches!(self.columns, Want::Gpu { required: true })
            || matches!(self.trees, Want::Gpu { required: true })
    }
}

/// A boolean setting: `1`, `true`, `yes`, `on` (any case) are true; anything else false.
fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The choice from an environment (`env(name)`) and the `--gpu` flag.
pub fn choose(env: impl Fn(&str) -> Option<String>, flag: bool) -> Choice {
    if flag || truthy(env("SEALKIT_GPU")) {
        let want = Want::Gpu { required: true };
        return Choice {
            columns: want,
            trees: want,
        };
    }
    let pick = |name: &str| {
        if truthy(env(name)) {
            Want::Gpu { required: false }
        } else {
            Want::Cpu
        }
    };
    Choice {
        columns: pick("FIL_PROOFS_USE_GPU_COLUMN_BUILDER"),
        trees: pick("FIL_PROOFS_USE_GPU_TREE_BUILDER"),
    }
}

/// [`choose`] from this process's environment.
pub fn from_env(flag: bool) -> Choice {
    choose(|k| std::env::var(k).ok(), flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn rules() {
        let cpu = Choice {
            columns: Want::Cpu,
            trees: Want::Cpu,
        };
        assert_eq!(choose(env(&[]), false), cpu);
        assert!(!cpu.any_gpu());
        let c = choose(env(&[("FIL_PROOFS_USE_GPU_COLUMN_BUILDER", "1")]), false);
        assert_eq!(c.columns, Want::Gpu { required: false });
        assert_eq!(c.trees, Want::Cpu);
        assert!(c.any_gpu() && !c.required());
        let t = choose(env(&[("FIL_PROOFS_USE_GPU_TREE_BUILDER", "True")]), false);
        assert_eq!(
            (t.columns, t.trees),
            (Want::Cpu, Want::Gpu { required: false })
        );
        let off = choose(env(&[("FIL_PROOFS_USE_GPU_TREE_BUILDER", "0")]), false);
        assert_eq!(off, cpu);
        for c in [
            choose(env(&[]), true),
            choose(env(&[("SEALKIT_GPU", "yes")]), false),
        ] {
            assert!(c.required());
            assert_eq!(c.columns, Want::Gpu { required: true });
            assert_eq!(c.trees, Want::Gpu { required: true });
        }
    }
}
