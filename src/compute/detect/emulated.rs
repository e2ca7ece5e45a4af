//! The emulated detector device (`emu:N`, builds with the `kernel-emulation` feature):
//! cuda/score.cu compiled as host C++ (build.rs) and run on the worker's thread, its cells in
//! host memory standing for device memory. For tests of the detector engine without a GPU.

use super::{DetectDevice, Job};
use crate::compute::ComputeError;
use crate::stages::detect::cell::Cell;

unsafe extern "C" {
    fn hyflow_emu_detect(
        x: *const f64,
        bucket: *const i32,
        n_watch: i32,
        kinds: *const i32,
        params: *const f64,
        cell_at: *const i32,
        block: i32,
        order: *const i32,
        seg_offsets: *const u32,
        seg_slot: *const u32,
        seg_patch: *const i32,
        patch: *const Cell,
        n_segments: i32,
        state: *mut Cell,
        raw: *mut f64,
        after: *mut Cell,
        learn: *const i32,
        gate: *const f64,
        seen0: *const u32,
        gated: *mut u32,
        fate: *mut i32,
    );
}

/// The emulated device's cells.
pub struct EmulatedDetect {
    name: String,
    state: Vec<Cell>,
}

impl EmulatedDetect {
    /// Emulated device `ordinal`.
    pub fn new(ordinal: usize) -> Self {
        Self {
            name: format!("emu:{ordinal}"),
            state: Vec::new(),
        }
    }

    /// The device's cells, a block per slot (for tests).
    pub fn state(&self) -> &[Cell] {
        &self.state
    }
}

impl DetectDevice for EmulatedDetect {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        after: &mut [Cell],
        fate: &mut [i32],
    ) -> Result<(), ComputeError> {
        let need = job.slots * job.block;
        if self.state.len() < need {
            // Grown, as the CUDA device does: from the host's mirror.
            self.state = job.mirror.to_vec();
            self.state.resize(need.next_power_of_two(), Cell::default());
        }
        let cells = |j: usize, b: i32| {
            let end = job.cell_at.get(j + 1).map_or(job.block, |&e| e as usize);
            (job.cell_at[j] as usize + b as usize) < end && b >= 0
        };
        let ok = job.x.len() == job.order.len() * job.n_watch
            && job.bucket.len() == job.x.len()
            && raw.len() == job.x.len()
            && after.len() == job.x.len()
            && fate.len() == job.x.len()
            && job.kinds.len() == job.n_watch
            && job.learn.len() == 3 * job.n_watch
            && job.gate.len() == job.n_watch
            && job.seen.len() == job.seg_slot.len()
            && job.gated.len() == job.seg_slot.len() * job.n_watch
            && job.cell_at.len() == job.n_watch
            && job.seg_patch.len() == job.seg_slot.len()
            && job.seg_offsets.len() == job.seg_slot.len() + 1
            && job.seg_slot.iter().all(|&s| (s as usize) < job.slots)
            && job.patch.len() >= job.seg_patch.iter().filter(|&&p| p >= 0).count() * job.block
            && job
                .bucket
                .iter()
                .enumerate()
                .all(|(i, &b)| cells(i % job.n_watch, b));
        if !ok {
            return Err(ComputeError::Device(format!(
                "{}: inconsistent batch layout",
                self.name
            )));
        }
        // The kernel counts on in its copy of the gated counts, as a device does.
        let mut gated = job.gated.to_vec();
        // SAFETY: checked above: x, bucket, raw, after and fate hold n_watch entries per
        // window of `order`, every bucket stays inside its watch's cells, state holds a block
        // for every slot below `slots` (every slot of the batch is), patch a block per patched
        // segment, learn 3 and gate 1 per watch, seen one and gated n_watch per segment.
        unsafe {
            hyflow_emu_detect(
                job.x.as_ptr(),
                job.bucket.as_ptr(),
                job.n_watch as i32,
                job.kinds.as_ptr(),
                job.params.as_ptr(),
                job.cell_at.as_ptr(),
                job.block as i32,
                job.order.as_ptr(),
                job.seg_offsets.as_ptr(),
                job.seg_slot.as_ptr(),
                job.seg_patch.as_ptr(),
                job.patch.as_ptr(),
                job.seg_slot.len() as i32,
                self.state.as_mut_ptr(),
                raw.as_mut_ptr(),
                after.as_mut_ptr(),
                job.learn.as_ptr(),
                job.gate.as_ptr(),
                job.seen.as_ptr(),
                gated.as_mut_ptr(),
                fate.as_mut_ptr(),
            );
        }
        Ok(())
    }
}
