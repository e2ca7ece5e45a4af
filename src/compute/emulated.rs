//! The emulated accelerator (`device = "emu:N"`, builds with the `kernel-emulation` feature):
//! cuda/features.cu compiled as host C++ over cuda/emu/hyflow_emu.h (build.rs) and run on a
//! thread of its own, as a GPU runs on its own stream: batches are copied in at
//! [`ComputeBackend::begin`], computed while the worker goes on, and collected in order from
//! [`ComputeBackend::finish`]. It exists so that CI, which has no GPU, runs the whole
//! asynchronous path (several batches in flight, capabilities held until results are back,
//! spills, the scheduler) end to end through the real kernel source. It is slow (every block's
//! threads are host threads), so keep its inputs small.

use super::{
    ComputeBackend, ComputeError, FeatureBatch, Finished, KernelLayout, Ticket, WindowBatch,
};
use crate::stages::features::FeatureSet;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

unsafe extern "C" {
    fn hyflow_emu_features(
        values: *const f64,
        times: *const i64,
        offsets: *const u32,
        starts: *const i64,
        n_windows: i32,
        window_secs: f64,
        kinds: *const i32,
        band_lo: *const f64,
        band_hi: *const f64,
        n_feat: i32,
        out: *mut f64,
        threads: u32,
        warp: i32,
    );
}

/// Batches in flight at once, as on the GPU.
const DEPTH: usize = 2;

/// Threads per block: one warp (the kernel takes any multiple of 32; tests/it/kernel_emulation.rs
/// covers others). Every thread is a host thread here, so fewer is faster.
const THREADS: u32 = 32;

/// One batch copied for the kernel.
struct Job {
    ticket: Ticket,
    features: FeatureSet,
    window_ms: i64,
    batch: WindowBatch,
}

/// The emulated device.
pub struct EmulatedBackend {
    name: String,
    jobs: Option<Sender<Job>>,
    results: Receiver<Finished>,
    in_flight: VecDeque<Ticket>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmulatedBackend {
    /// Starts emulated device `ordinal` (its thread).
    pub fn new(ordinal: usize) -> Self {
        let (jobs, inbox) = channel::<Job>();
        let (outbox, results) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("emu:{ordinal}"))
            .spawn(move || {
                for job in inbox {
                    let started = Instant::now();
                    let result = Ok(kernel_features(
                        &job.features,
                        job.window_ms,
                        &job.batch,
                        THREADS,
                        KernelLayout::for_batch(&job.batch),
                    ));
                    let done = Finished {
                        ticket: job.ticket,
                        result,
                        busy_secs: started.elapsed().as_secs_f64(),
                    };
                    if outbox.send(done).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the emulated device's thread");
        Self {
            name: format!("emu:{ordinal}"),
            jobs: Some(jobs),
            results,
            in_flight: VecDeque::new(),
            thread: Some(thread),
        }
    }
}

/// Runs cuda/features.cu, emulated, over `batch` with `threads` threads per block (a multiple
/// of 32) in `layout`: the features the GPU kernel gives, for this engine and the kernel tests.
pub fn kernel_features(
    features: &FeatureSet,
    window_ms: i64,
    batch: &WindowBatch,
    threads: u32,
    layout: KernelLayout,
) -> FeatureBatch {
    let (kinds, lo, hi) = super::kernel_codes(features);
    let width = kinds.len();
    let mut out = FeatureBatch {
        width,
        data: vec![f64::NAN; batch.len() * width],
    };
    if batch.is_empty() {
        return out;
    }
    // SAFETY: offsets has windows + 1 entries, values and times `offsets[last]`, kinds/lo/hi
    // `width`, and out windows × width: everything the kernel indexes.
    unsafe {
        hyflow_emu_features(
            batch.values.as_ptr(),
            batch.times.as_ptr(),
            batch.offsets.as_ptr(),
            batch.start.as_ptr(),
            batch.len() as i32,
            window_ms as f64 / 1000.0,
            kinds.as_ptr(),
            lo.as_ptr(),
            hi.as_ptr(),
            width as i32,
            out.data.as_mut_ptr(),
            threads,
            i32::from(layout == KernelLayout::Warp),
        );
    }
    out
}

impl ComputeBackend for EmulatedBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        *out = kernel_features(
            features,
            window_ms,
            batch,
            THREADS,
            KernelLayout::for_batch(batch),
        );
        Ok(())
    }

    fn depth(&self) -> usize {
        DEPTH
    }

    fn begin(
        &mut self,
        ticket: Ticket,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
    ) -> Result<(), ComputeError> {
        let job = Job {
            ticket,
            features: features.clone(),
            window_ms,
            batch: batch.clone(),
        };
        let lost = || ComputeError::Lost(format!("{}: the device thread is gone", self.name));
        self.jobs
            .as_ref()
            .ok_or_else(lost)?
            .send(job)
            .map_err(|_| lost())?;
        self.in_flight.push_back(ticket);
        Ok(())
    }

    fn finish(&mut self, wait: bool) -> Option<Finished> {
        self.in_flight.front()?;
        let done = if wait {
            self.results.recv().ok()?
        } else {
            self.results.try_recv().ok()?
        };
        self.in_flight.pop_front();
        Some(done)
    }
}

impl Drop for EmulatedBackend {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
