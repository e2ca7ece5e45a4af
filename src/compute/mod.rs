//! Feature extraction engines. One interface ([`ComputeBackend`]), one layout in
//! ([`WindowBatch`]: ragged values with per-window offsets, the layout the CUDA kernels take)
//! and one layout out ([`FeatureBatch`]: a row of features per window). Engines: `cpu` (the
//! reference), `cuda` (cuda/features.cu through cudarc, asynchronous: several batches in
//! flight), `emulated` (the same kernel source run on the host, asynchronous, for tests), and the
//! `scheduler` that keeps batches in flight on them, where `router` (shared with the detector
//! engine) says.

pub mod cost;
pub mod cpu;
pub mod cuda;
pub mod detect;
#[cfg(feature = "kernel-emulation")]
pub mod emulated;
pub mod router;
pub mod scheduler;

use crate::stages::features::FeatureSet;

pub use crate::batch::{FeatureBatch, WindowBatch};

/// A compute engine failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComputeError {
    /// The engine cannot run on this machine.
    #[error("{0}")]
    Unavailable(String),
    /// The device failed a batch (out of memory, a launch error); later batches may succeed.
    #[error("{0}")]
    Device(String),
    /// The device is gone for the rest of the run (a kernel fault leaves its context unusable,
    /// or the device fell off the bus): no later batch can succeed on it.
    #[error("{0}")]
    Lost(String),
}

/// A feature-extraction engine.
pub trait ComputeBackend: Send {
    /// Short name for logs and reports (`cpu`, `cuda:0`).
    fn name(&self) -> &str;
    /// Computes `features` for every window of `batch` into `out` (cleared first).
    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError>;
    /// What each engine behind this one did (for the cost report).
    fn report(&self) -> Vec<cost::EngineReport> {
        Vec::new()
    }
    /// Batches this engine can have in flight at once through [`Self::begin`]; 0 for engines
    /// that compute only synchronously, through [`Self::features`].
    fn depth(&self) -> usize {
        0
    }
    /// Starts computing `batch` without waiting for it (called only while fewer than
    /// [`Self::depth`] batches are in flight). The engine copies what it needs before it
    /// returns; the result comes back from [`Self::finish`] under `ticket`.
    fn begin(
        &mut self,
        ticket: Ticket,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
    ) -> Result<(), ComputeError> {
        let _ = (ticket, features, window_ms, batch);
        Err(ComputeError::Unavailable(format!(
            "{} computes synchronously only",
            self.name()
        )))
    }
    /// The oldest batch in flight once it is finished (`None` when it is not yet, or when
    /// nothing is in flight); with `wait`, blocks until it is. Gives its ticket, its features
    /// and the seconds the engine spent on it.
    fn finish(&mut self, wait: bool) -> Option<Finished> {
        let _ = wait;
        None
    }
}

/// Identifies a batch given to an asynchronous engine.
pub type Ticket = u64;

/// A batch an asynchronous engine has finished.
#[derive(Debug)]
pub struct Finished {
    /// The ticket it was begun with.
    pub ticket: Ticket,
    /// Its features, or why the engine failed it.
    pub result: Result<FeatureBatch, ComputeError>,
    /// Seconds the engine spent on it (copies and kernels).
    pub busy_secs: f64,
}

/// How the feature kernel maps windows to GPU threads (cuda/features.cu has one kernel each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelLayout {
    /// `hyflow_features`: one block per window, its threads striding over the values.
    Block,
    /// `hyflow_features_warp`: one warp per window, several windows per block, no block
    /// barriers.
    Warp,
}

/// Batches averaging at most this many values per window use [`KernelLayout::Warp`]. A first
/// guess (a warp covers 256 values in 8 strides), not yet measured on a GPU: the throughput
/// test of tests/gpu.rs prints both layouts so the GPU check can set it.
pub const WARP_MAX_VALUES: usize = 256;

impl KernelLayout {
    /// The layout for `batch`: by its mean window length.
    pub fn for_batch(batch: &WindowBatch) -> Self {
        if batch.values.len() <= WARP_MAX_VALUES * batch.len().max(1) {
            KernelLayout::Warp
        } else {
            KernelLayout::Block
        }
    }

    /// The kernel's name in cuda/features.cu.
    pub fn kernel(self) -> &'static str {
        match self {
            KernelLayout::Block => "hyflow_features",
            KernelLayout::Warp => "hyflow_features_warp",
        }
    }
}

/// The feature codes the kernels in cuda/features.cu take (`kinds`), with each band's edges
/// (`band_lo`, `band_hi`; 0 for other features). Keep in step with the `HF_*` defines there.
pub fn kernel_codes(features: &FeatureSet) -> (Vec<i32>, Vec<f64>, Vec<f64>) {
    use crate::stages::features::Feature::*;
    let mut kinds = Vec::new();
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    for f in &features.kinds {
        let (k, l, h) = match *f {
            Count => (0, 0.0, 0.0),
            Mean => (1, 0.0, 0.0),
            Std => (2, 0.0, 0.0),
            Min => (3, 0.0, 0.0),
            Max => (4, 0.0, 0.0),
            Rms => (5, 0.0, 0.0),
            Skewness => (6, 0.0, 0.0),
            Kurtosis => (7, 0.0, 0.0),
            Slope => (8, 0.0, 0.0),
            PeakToPeak => (9, 0.0, 0.0),
            MeanCrossingRate => (10, 0.0, 0.0),
            Band { low_hz, high_hz } => (11, low_hz, high_hz),
        };
        kinds.push(k);
        lo.push(l);
        hi.push(h);
    }
    (kinds, lo, hi)
}

/// Groups a batch's windows by sensor slot, each slot's windows kept in batch (time) order:
/// `(order, segment offsets, slot of each segment)`, the layout cuda/score.cu walks with one
/// thread per segment.
pub fn segments(slots: &[u32]) -> (Vec<i32>, Vec<u32>, Vec<u32>) {
    let mut order: Vec<i32> = (0..slots.len() as i32).collect();
    order.sort_by_key(|&w| slots[w as usize]); // stable: keeps time order within a slot
    let (mut offsets, mut seg_slot) = (Vec::new(), Vec::new());
    for (k, &w) in order.iter().enumerate() {
        let slot = slots[w as usize];
        if seg_slot.last() != Some(&slot) {
            offsets.push(k as u32);
            seg_slot.push(slot);
        }
    }
    offsets.push(order.len() as u32);
    (order, offsets, seg_slot)
}

/// The engine for a `[compute] device` setting: `cpu`; `cuda:N` (the GPU, falling back to the
/// CPU batch by batch on errors); `auto` (the hybrid scheduler over the CPU and GPU 0 when CUDA
/// is present, else the CPU, said once in the log); in builds with the `kernel-emulation`
/// feature, for tests, `emu:N` (cuda/features.cu run on the host as a dedicated device, like
/// `cuda:N`) and `auto-emu` (routing by cost between the CPU and `emu:0`, like `auto`).
pub fn backend_for(
    device: crate::plan::Device,
    cross_check: f64,
    tolerance: f64,
) -> Result<scheduler::Hybrid, ComputeError> {
    use crate::plan::Device;
    use scheduler::{Hybrid, Policy};
    let cpu_only = || {
        Hybrid::new(
            Box::new(cpu::CpuBackend),
            Vec::new(),
            Policy::Cheapest,
            0.0,
            tolerance,
        )
    };
    let with = |engine: Box<dyn ComputeBackend>, policy| {
        Hybrid::new(
            Box::new(cpu::CpuBackend),
            vec![engine],
            policy,
            cross_check,
            tolerance,
        )
    };
    let setting = device;
    Ok(match setting {
        Device::Cpu => cpu_only(),
        Device::Cuda(n) => with(Box::new(cuda::CudaBackend::new(n)?), Policy::Accelerator),
        Device::Emu(n) => with(emulated_backend(device, n)?, Policy::Accelerator),
        Device::AutoEmu => with(emulated_backend(device, 0)?, Policy::Cheapest),
        Device::Auto => {
            static ONCE: std::sync::Once = std::sync::Once::new();
            match cuda::CudaBackend::new(0) {
                Ok(gpu) => {
                    ONCE.call_once(|| {
                        tracing::info!(
                            "device = \"auto\": routing batches between the CPU and cuda:0 by measured cost"
                        )
                    });
                    with(Box::new(gpu), Policy::Cheapest)
                }
                Err(e) => {
                    ONCE.call_once(|| tracing::info!("device = \"auto\": using the CPU ({e})"));
                    cpu_only()
                }
            }
        }
    })
}

/// Emulated device `n` for the setting `device`, in builds with `kernel-emulation`.
fn emulated_backend(
    device: crate::plan::Device,
    n: usize,
) -> Result<Box<dyn ComputeBackend>, ComputeError> {
    #[cfg(feature = "kernel-emulation")]
    {
        let _ = device; // named only in the error of builds without the feature
        Ok(Box::new(emulated::EmulatedBackend::new(n)))
    }
    #[cfg(not(feature = "kernel-emulation"))]
    Err(ComputeError::Unavailable(format!(
        "device \"{device}\" (emulated device {n}) needs a build with the kernel-emulation feature"
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_group_by_slot_in_time_order() {
        let (order, offsets, slots) = super::segments(&[5, 2, 5, 9, 2, 5]);
        assert_eq!(order, vec![1, 4, 0, 2, 5, 3]);
        assert_eq!(offsets, vec![0, 2, 5, 6]);
        assert_eq!(slots, vec![2, 5, 9]);
        assert_eq!(super::segments(&[]), (vec![], vec![0], vec![]));
    }
}
