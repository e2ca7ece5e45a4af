//! The CUDA detector device: cuda/score.cu (`hyflow_detect`) compiled by NVRTC, its cells kept
//! in device memory between batches. A batch's inputs are copied in through pinned buffers,
//! the kernel runs (a thread per sensor of the batch), and the scores and the cells they left
//! are copied back into pinned buffers; then the stream is synchronised. The state grows by doubling; a grown buffer starts from the host's
//! mirror. Device errors that leave the context unusable are shared with the feature engine
//! (one process-wide "lost" flag per device).

use super::{DetectDevice, Job};
use crate::compute::ComputeError;
use crate::compute::cuda::{Buffer, SCORE_CU, err, lost, note_lost, open};
use crate::stages::detect::cell::Cell;
use cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED;
use cudarc::driver::{
    CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use std::sync::Arc;

// SAFETY: `Cell` is `repr(C)`, plain old data (four f64 and two u32, no padding), the same
// layout as `HfCell` in cuda/score.cu; all zero bits is a valid (the initial) cell.
unsafe impl DeviceRepr for Cell {}
// SAFETY: see above.
unsafe impl ValidAsZeroBits for Cell {}

/// Threads per block of `hyflow_detect` (a thread per sensor of the batch).
const THREADS: u32 = 64;

/// The pinned buffers of a batch (inputs write-combined, outputs not: the host reads them).
struct Buffers {
    x: Buffer<f64>,
    bucket: Buffer<i32>,
    order: Buffer<i32>,
    seg_offsets: Buffer<u32>,
    seg_slot: Buffer<u32>,
    seg_patch: Buffer<i32>,
    patch: Buffer<Cell>,
    seen: Buffer<u32>,
    gated: Buffer<u32>,
    raw: Buffer<f64>,
    after: Buffer<Cell>,
    fate: Buffer<i32>,
}

/// The watches' constant arguments, on the device.
struct Watches {
    kinds: CudaSlice<i32>,
    params: CudaSlice<f64>,
    cell_at: CudaSlice<i32>,
    learn: CudaSlice<i32>,
    gate: CudaSlice<f64>,
}

/// `hyflow_detect` on one device, with the cells it keeps there.
pub struct CudaDetect {
    name: String,
    ordinal: usize,
    stream: Arc<CudaStream>,
    function: CudaFunction,
    /// Kind codes, parameters, cell offsets, learn policies and gates, uploaded once (they do
    /// not change during a run).
    watch: Option<Watches>,
    /// The cells, a block per slot, and how many of them are in use.
    state: Buffer<Cell>,
    state_len: usize,
    io: Buffers,
}

impl CudaDetect {
    /// Opens device `ordinal` and compiles cuda/score.cu for it.
    pub fn new(ordinal: usize) -> Result<Self, ComputeError> {
        let (ctx, module) = open(ordinal, SCORE_CU, "cuda/score.cu")?;
        let function = module
            .load_function("hyflow_detect")
            .map_err(|e| err("hyflow_detect", e))?;
        let stream = ctx.new_stream().map_err(|e| err("creating a stream", e))?;
        let wc = CU_MEMHOSTALLOC_WRITECOMBINED;
        Ok(Self {
            name: format!("cuda:{ordinal}"),
            ordinal,
            stream,
            function,
            watch: None,
            state: Buffer::new(wc),
            state_len: 0,
            io: Buffers {
                x: Buffer::new(wc),
                bucket: Buffer::new(wc),
                order: Buffer::new(wc),
                seg_offsets: Buffer::new(wc),
                seg_slot: Buffer::new(wc),
                seg_patch: Buffer::new(wc),
                patch: Buffer::new(wc),
                seen: Buffer::new(wc),
                gated: Buffer::new(wc),
                raw: Buffer::new(0),
                after: Buffer::new(0),
                fate: Buffer::new(0),
            },
        })
    }

    fn queue_and_wait(
        &mut self,
        job: &Job<'_>,
        raw: &mut [f64],
        after: &mut [Cell],
        fate: &mut [i32],
    ) -> Result<(), ComputeError> {
        let s = self.stream.clone();
        if self.watch.is_none() {
            let up = |e| err("copy to device", e);
            self.watch = Some(Watches {
                kinds: s.clone_htod(job.kinds).map_err(up)?,
                params: s.clone_htod(job.params).map_err(up)?,
                cell_at: s.clone_htod(job.cell_at).map_err(up)?,
                learn: s.clone_htod(job.learn).map_err(up)?,
                gate: s.clone_htod(job.gate).map_err(up)?,
            });
        }
        let need = job.slots * job.block;
        if self.state_len < need {
            // Grown: start from the host's mirror (current for every slot), zeros beyond.
            let mut init = job.mirror.to_vec();
            init.resize(need.next_power_of_two(), Cell::default());
            self.state_len = 0;
            self.state.upload(&s, &init)?;
            self.state_len = init.len();
        }
        let io = &mut self.io;
        io.x.upload(&s, job.x)?;
        io.bucket.upload(&s, job.bucket)?;
        io.order.upload(&s, job.order)?;
        io.seg_offsets.upload(&s, job.seg_offsets)?;
        io.seg_slot.upload(&s, job.seg_slot)?;
        io.seg_patch.upload(&s, job.seg_patch)?;
        if job.patch.is_empty() {
            // Still a buffer to pass (the kernel then never reads it).
            io.patch.reserve(&s, 1)?;
        } else {
            io.patch.upload(&s, job.patch)?;
        }
        io.seen.upload(&s, job.seen)?;
        io.gated.upload(&s, job.gated)?;
        io.raw.reserve(&s, raw.len())?;
        io.after.reserve(&s, after.len())?;
        io.fate.reserve(&s, fate.len())?;
        let w = self.watch.as_ref().expect("uploaded above");
        let (n_watch, block) = (job.n_watch as i32, job.block as i32);
        let n_segments = job.seg_slot.len() as i32;
        let cfg = LaunchConfig {
            grid_dim: ((job.seg_slot.len() as u32).div_ceil(THREADS), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = s.launch_builder(&self.function);
        launch
            .arg(io.x.device())
            .arg(io.bucket.device())
            .arg(&n_watch);
        launch
            .arg(&w.kinds)
            .arg(&w.params)
            .arg(&w.cell_at)
            .arg(&block);
        launch.arg(io.order.device()).arg(io.seg_offsets.device());
        launch.arg(io.seg_slot.device()).arg(io.seg_patch.device());
        launch.arg(io.patch.device()).arg(&n_segments);
        launch.arg(self.state.device_mut());
        launch.arg(io.raw.device_mut()).arg(io.after.device_mut());
        launch.arg(&w.learn).arg(&w.gate);
        launch.arg(io.seen.device()).arg(io.gated.device_mut());
        launch.arg(io.fate.device_mut());
        // SAFETY: the arguments match hyflow_detect's signature; x, bucket, raw, after and
        // fate hold n_watch entries per window of `order`, state a block for every slot of the
        // batch, patch a block per index in seg_patch, learn 3 and gate 1 per watch, seen one
        // and gated n_watch per segment; the engine's buckets stay inside each watch's cells
        // (season buckets).
        unsafe { launch.launch(cfg) }.map_err(|e| err("launching the detector kernel", e))?;
        io.raw.download(&s, raw.len())?;
        io.after.download(&s, after.len())?;
        io.fate.download(&s, fate.len())?;
        s.synchronize()
            .map_err(|e| err("running the detector kernel", e))?;
        raw.copy_from_slice(io.raw.host(raw.len())?);
        after.copy_from_slice(io.after.host(after.len())?);
        fate.copy_from_slice(io.fate.host(fate.len())?);
        Ok(())
    }
}

impl DetectDevice for CudaDetect {
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
        if lost(self.ordinal) {
            return Err(ComputeError::Lost(format!(
                "{} was lost earlier in this run",
                self.name
            )));
        }
        let r = self.queue_and_wait(job, raw, after, fate);
        note_lost(self.ordinal, r)
    }
}
