//! The CUDA engine: cuda/features.cu compiled by NVRTC at start-up and run through cudarc's
//! driver API (loaded at run time, so hyflow runs where CUDA is absent).
//!
//! One engine per timely worker, each with its own stream and [`DEPTH`] slots of buffers, so
//! that up to that many batches are in flight: a batch is copied into a slot's page-locked
//! (pinned, write-combined) input buffers, and on the stream: copied to the device, computed,
//! and copied back into the slot's pinned output buffer (not write-combined: the host reads
//! it), then an event is recorded; [`ComputeBackend::finish`] queries that event, so the worker
//! goes on windowing the next batch while this one is copied and computed. Buffers grow by
//! doubling and are reused.
//!
//! The detectors' kernel (cuda/score.cu) has an engine of its own, `compute::detect`. This
//! engine has not run on a GPU yet: no device was lent while it was
//! written; scripts/gpu-check.sh is the check to run when one is. CI runs it against a CUDA
//! driver that runs on the CPU (cuda/emu/fake_driver.cpp, tests/it/fake_cuda.rs).

use super::{
    ComputeBackend, ComputeError, FeatureBatch, Finished, KernelLayout, Ticket, WindowBatch,
    kernel_codes,
};
use crate::stages::features::FeatureSet;
use cudarc::driver::sys::{CU_MEMHOSTALLOC_WRITECOMBINED, CUevent_flags};
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtrMut,
    DeviceRepr, DriverError, LaunchConfig, PinnedHostSlice, PushKernelArg, ValidAsZeroBits, result,
};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Source of the feature kernel.
pub const FEATURES_CU: &str = include_str!("../../cuda/features.cu");
/// Source of the detector kernel.
pub const SCORE_CU: &str = include_str!("../../cuda/score.cu");

/// Threads per block of the feature kernel (a multiple of 32).
pub const THREADS: u32 = 128;

/// Batches in flight per engine (per worker).
pub const DEPTH: usize = 2;

/// True when both the CUDA driver and NVRTC can be loaded.
pub fn available() -> bool {
    // SAFETY: only probe whether the shared libraries load.
    unsafe { cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present() }
}

/// A driver error while doing `what`: [`ComputeError::Lost`] for the errors after which the
/// context is unusable (every later call fails with them), else [`ComputeError::Device`].
pub(crate) fn err(what: &str, e: DriverError) -> ComputeError {
    use cudarc::driver::sys::CUresult as R;
    let msg = format!("{what}: {e:?}");
    match e.0 {
        R::CUDA_ERROR_ILLEGAL_ADDRESS
        | R::CUDA_ERROR_LAUNCH_FAILED
        | R::CUDA_ERROR_LAUNCH_TIMEOUT
        | R::CUDA_ERROR_HARDWARE_STACK_ERROR
        | R::CUDA_ERROR_ILLEGAL_INSTRUCTION
        | R::CUDA_ERROR_MISALIGNED_ADDRESS
        | R::CUDA_ERROR_INVALID_ADDRESS_SPACE
        | R::CUDA_ERROR_INVALID_PC
        | R::CUDA_ERROR_ASSERT
        | R::CUDA_ERROR_ECC_UNCORRECTABLE
        | R::CUDA_ERROR_CONTEXT_IS_DESTROYED
        | R::CUDA_ERROR_DEVICE_UNAVAILABLE
        | R::CUDA_ERROR_UNKNOWN => ComputeError::Lost(msg),
        _ => ComputeError::Device(msg),
    }
}

/// Opens device `ordinal` and compiles `source` (named `file` in errors) for it with NVRTC:
/// FMA contraction off, so that the roundings are the CPU reference's and cross-checks compare
/// like with like; PTX for the device's own architecture ([`arch`]).
pub(crate) fn open(
    ordinal: usize,
    source: &str,
    file: &str,
) -> Result<(Arc<CudaContext>, Arc<CudaModule>), ComputeError> {
    if !available() {
        return Err(ComputeError::Unavailable(
            "no CUDA driver (libcuda) or NVRTC (libnvrtc) could be loaded".into(),
        ));
    }
    let ctx = CudaContext::new(ordinal).map_err(|e| err(&format!("opening cuda:{ordinal}"), e))?;
    let opts = CompileOptions {
        fmad: Some(false),
        arch: arch(&ctx),
        ..Default::default()
    };
    let ptx = compile_ptx_with_opts(source, opts)
        .map_err(|e| ComputeError::Device(format!("compiling {file}: {e:?}")))?;
    let module = ctx
        .load_module(ptx)
        .map_err(|e| err(&format!("loading {file}"), e))?;
    Ok((ctx, module))
}

/// The NVRTC target for the device's own architecture where it is one NVRTC knows by name
/// (else None: NVRTC's default, which the driver compiles on load).
fn arch(ctx: &CudaContext) -> Option<&'static str> {
    match ctx.compute_capability() {
        Ok((8, 0)) => Some("compute_80"),
        Ok((8, 6)) => Some("compute_86"),
        Ok((8, 9)) => Some("compute_89"),
        Ok((9, 0)) => Some("compute_90"),
        _ => None,
    }
}

/// Devices lost in this process, by ordinal (bit i: cuda:i): every worker's engine on a lost
/// device stops at once instead of failing batches of its own first.
static LOST: AtomicU64 = AtomicU64::new(0);

pub(crate) fn lost(ordinal: usize) -> bool {
    ordinal < 64 && LOST.load(Ordering::SeqCst) & (1 << ordinal) != 0
}

/// Notes `ordinal` as lost when `r` says so, and passes `r` on.
pub(crate) fn note_lost<T>(ordinal: usize, r: Result<T, ComputeError>) -> Result<T, ComputeError> {
    if let Err(ComputeError::Lost(_)) = &r
        && ordinal < 64
    {
        LOST.fetch_or(1 << ordinal, Ordering::SeqCst);
    }
    r
}

/// A pinned host buffer and its device twin, with room for at least `cap` elements.
pub(crate) struct Buffer<T: DeviceRepr> {
    host: Option<PinnedHostSlice<T>>,
    device: Option<CudaSlice<T>>,
    /// `cuMemHostAlloc` flags of the host side.
    flags: u32,
}

impl<T: DeviceRepr + ValidAsZeroBits> Buffer<T> {
    /// An empty buffer whose host side gets `cuMemHostAlloc` `flags`.
    pub(crate) fn new(flags: u32) -> Self {
        Self {
            host: None,
            device: None,
            flags,
        }
    }

    /// Makes room for `n` elements (doubling), dropping the old contents. Only called on a slot
    /// with no work in flight.
    pub(crate) fn reserve(
        &mut self,
        stream: &Arc<CudaStream>,
        n: usize,
    ) -> Result<(), ComputeError> {
        // Both sides, or neither: a failed allocation leaves the buffer empty.
        let have = match (&self.host, &self.device) {
            (Some(h), Some(_)) => h.len(),
            _ => 0,
        };
        if have >= n.max(1) {
            return Ok(());
        }
        let cap = n.max(1).next_power_of_two();
        self.host = None;
        self.device = None;
        // SAFETY: the memory is written before it is read (inputs by the host, outputs by a
        // copy from the device).
        self.host = Some(
            unsafe {
                stream
                    .context()
                    .alloc_pinned_with_flags::<T>(cap, self.flags)
            }
            .map_err(|e| err("allocating pinned host memory", e))?,
        );
        // SAFETY: as above, device memory is written before it is read.
        match unsafe { stream.alloc::<T>(cap) } {
            Ok(d) => self.device = Some(d),
            Err(e) => {
                self.host = None;
                return Err(err("allocating device memory", e));
            }
        }
        Ok(())
    }

    /// The device side (after [`Self::reserve`]).
    pub(crate) fn device(&self) -> &CudaSlice<T> {
        self.device.as_ref().expect("reserved before use")
    }

    /// The device side, writable (after [`Self::reserve`]).
    pub(crate) fn device_mut(&mut self) -> &mut CudaSlice<T> {
        self.device.as_mut().expect("reserved before use")
    }

    /// Queues a copy of the first `n` device elements into the pinned buffer; read them with
    /// [`Self::host`] once the stream has passed it.
    pub(crate) fn download(
        &mut self,
        stream: &Arc<CudaStream>,
        n: usize,
    ) -> Result<(), ComputeError> {
        let (Some(host), Some(device)) = (self.host.as_mut(), self.device.as_mut()) else {
            unreachable!("reserved before use");
        };
        let pinned = &mut host.as_mut_slice().map_err(|e| err("pinned buffer", e))?[..n];
        let (src, _record) = device.device_ptr_mut(stream);
        // SAFETY: `pinned` is page-locked and stays in this buffer, unread, until the caller
        // has waited for the stream.
        unsafe { result::memcpy_dtoh_async(pinned, src, stream.cu_stream()) }
            .map_err(|e| err("copy from device", e))
    }

    /// The first `n` elements of the pinned buffer (after a download the stream has passed).
    pub(crate) fn host(&self, n: usize) -> Result<&[T], ComputeError> {
        let host = self.host.as_ref().expect("reserved before use");
        Ok(&host.as_slice().map_err(|e| err("pinned buffer", e))?[..n])
    }

    /// Copies `src` into the pinned buffer and queues its copy to the device.
    pub(crate) fn upload(&mut self, stream: &Arc<CudaStream>, src: &[T]) -> Result<(), ComputeError>
    where
        T: Copy,
    {
        self.reserve(stream, src.len())?;
        let (Some(host), Some(device)) = (self.host.as_mut(), self.device.as_mut()) else {
            unreachable!("reserve allocates both");
        };
        let pinned = &mut host.as_mut_slice().map_err(|e| err("pinned buffer", e))?[..src.len()];
        pinned.copy_from_slice(src);
        let (dst, _record) = device.device_ptr_mut(stream);
        // SAFETY: `pinned` is page-locked and lives in this slot until the slot's batch is
        // finished (the slot is not written again before then); `dst` has room for it.
        unsafe { result::memcpy_htod_async(dst, pinned, stream.cu_stream()) }
            .map_err(|e| err("copy to device", e))
    }
}

/// The buffers and events of one batch in flight.
struct Slot {
    values: Buffer<f64>,
    times: Buffer<i64>,
    offsets: Buffer<u32>,
    starts: Buffer<i64>,
    out: Buffer<f64>,
    started: CudaEvent,
    launched: CudaEvent,
    computed: CudaEvent,
    done: CudaEvent,
    /// The batch in this slot: (ticket, rows, features per row).
    job: Option<(Ticket, usize, usize)>,
}

/// The feature codes last uploaded, and their device copies.
struct Params {
    codes: (Vec<i32>, Vec<f64>, Vec<f64>),
    kinds: CudaSlice<i32>,
    lo: CudaSlice<f64>,
    hi: CudaSlice<f64>,
}

/// The CUDA engine on one device.
pub struct CudaBackend {
    name: String,
    ordinal: usize,
    stream: Arc<CudaStream>,
    /// `hyflow_features` (a block per window) and `hyflow_features_warp` (a warp per window).
    block_fn: CudaFunction,
    warp_fn: CudaFunction,
    /// The layout every batch uses, instead of choosing by window length (for measuring).
    layout: Option<KernelLayout>,
    slots: Vec<Slot>,
    /// Slots in flight, oldest first.
    order: VecDeque<usize>,
    params: Option<Params>,
    /// Seconds spent in the kernel alone (without copies), over all batches.
    kernel_secs: f64,
}

impl CudaBackend {
    /// Opens device `ordinal`, compiles the kernels for it and creates this engine's stream.
    pub fn new(ordinal: usize) -> Result<Self, ComputeError> {
        let (ctx, module) = open(ordinal, FEATURES_CU, "cuda/features.cu")?;
        let load = |layout: KernelLayout| {
            module
                .load_function(layout.kernel())
                .map_err(|e| err(layout.kernel(), e))
        };
        let (block_fn, warp_fn) = (load(KernelLayout::Block)?, load(KernelLayout::Warp)?);
        let stream = ctx.new_stream().map_err(|e| err("creating a stream", e))?;
        let event = || {
            ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| err("creating an event", e))
        };
        let wc = CU_MEMHOSTALLOC_WRITECOMBINED;
        let mut slots = Vec::new();
        for _ in 0..DEPTH {
            slots.push(Slot {
                values: Buffer::new(wc),
                times: Buffer::new(wc),
                offsets: Buffer::new(wc),
                starts: Buffer::new(wc),
                out: Buffer::new(0),
                started: event()?,
                launched: event()?,
                computed: event()?,
                done: event()?,
                job: None,
            });
        }
        Ok(Self {
            name: format!("cuda:{ordinal}"),
            ordinal,
            stream,
            block_fn,
            warp_fn,
            layout: None,
            slots,
            order: VecDeque::new(),
            params: None,
            kernel_secs: 0.0,
        })
    }

    /// Makes every batch use `layout` (None: chosen per batch by its mean window length,
    /// [`KernelLayout::for_batch`]). For measuring both kernels.
    pub fn set_layout(&mut self, layout: Option<KernelLayout>) {
        self.layout = layout;
    }

    /// Seconds the feature kernel itself ran, over every batch finished so far (the rest of
    /// the busy time is copies).
    pub fn kernel_secs(&self) -> f64 {
        self.kernel_secs
    }

    /// The device copies of the feature codes, uploaded again only when they change.
    fn params(&mut self, features: &FeatureSet) -> Result<&Params, ComputeError> {
        let codes = kernel_codes(features);
        if self.params.as_ref().is_none_or(|p| p.codes != codes) {
            let s = &self.stream;
            let up = |e| err("copy to device", e);
            self.params = Some(Params {
                kinds: s.clone_htod(&codes.0).map_err(up)?,
                lo: s.clone_htod(&codes.1).map_err(up)?,
                hi: s.clone_htod(&codes.2).map_err(up)?,
                codes,
            });
        }
        Ok(self.params.as_ref().expect("set above"))
    }

    /// Reads back the oldest slot once its event has passed.
    fn take_oldest(&mut self) -> Finished {
        let k = self.order.pop_front().expect("caller checked");
        let slot = &mut self.slots[k];
        let (ticket, rows, width) = slot.job.take().expect("slot in flight has a job");
        let result = (|| {
            slot.done
                .synchronize()
                .map_err(|e| err("running the feature kernel", e))?;
            let data = if rows > 0 {
                slot.out.host(rows * width)?.to_vec()
            } else {
                Vec::new()
            };
            Ok(FeatureBatch { width, data })
        })();
        let secs =
            |a: &CudaEvent, b: &CudaEvent| a.elapsed_ms(b).map_or(0.0, |ms| f64::from(ms) / 1e3);
        let busy_secs = secs(&slot.started, &slot.done);
        if rows > 0 {
            self.kernel_secs += secs(&slot.launched, &slot.computed);
        }
        Finished {
            ticket,
            result,
            busy_secs,
        }
    }
}

impl ComputeBackend for CudaBackend {
    fn name(&self) -> &str {
        &self.name
    }

    /// One batch, waited for (uses a free slot; for tests and benchmarks).
    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        if !self.order.is_empty() {
            return Err(ComputeError::Device(
                "features() called with batches in flight".into(),
            ));
        }
        self.begin(Ticket::MAX, features, window_ms, batch)?;
        while let Some(f) = self.finish(true) {
            if f.ticket == Ticket::MAX {
                *out = f.result?;
                return Ok(());
            }
        }
        Err(ComputeError::Device("the batch did not come back".into()))
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
        if lost(self.ordinal) {
            return Err(ComputeError::Lost(format!(
                "{} was lost earlier in this run",
                self.name
            )));
        }
        let r = self.queue(ticket, features, window_ms, batch);
        note_lost(self.ordinal, r)
    }

    fn finish(&mut self, wait: bool) -> Option<Finished> {
        let &k = self.order.front()?;
        if !wait {
            // An error comes back with the batch.
            if let Ok(false) = self.slots[k].done.try_is_complete() {
                return None;
            }
        }
        let mut f = self.take_oldest();
        f.result = note_lost(self.ordinal, f.result);
        Some(f)
    }
}

impl CudaBackend {
    /// Queues `batch` on the stream in a free slot (see [`ComputeBackend::begin`]).
    fn queue(
        &mut self,
        ticket: Ticket,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
    ) -> Result<(), ComputeError> {
        let k = (0..self.slots.len())
            .find(|&k| self.slots[k].job.is_none())
            .ok_or_else(|| {
                ComputeError::Device(format!("{}: every slot is in flight", self.name))
            })?;
        let (rows, width) = (batch.len(), features.len());
        self.params(features)?;
        let stream = self.stream.clone();
        let params = self.params.as_ref().expect("uploaded above");
        let slot = &mut self.slots[k];
        slot.started
            .record(&stream)
            .map_err(|e| err("recording an event", e))?;
        if rows > 0 {
            slot.values.upload(&stream, &batch.values)?;
            slot.times.upload(&stream, &batch.times)?;
            slot.offsets.upload(&stream, &batch.offsets)?;
            slot.starts.upload(&stream, &batch.start)?;
            slot.out.reserve(&stream, rows * width)?;
            let (n_windows, n_feat) = (rows as i32, width as i32);
            let secs = window_ms as f64 / 1000.0;
            let layout = self
                .layout
                .unwrap_or_else(|| KernelLayout::for_batch(batch));
            let (function, blocks) = match layout {
                KernelLayout::Block => (&self.block_fn, rows as u32),
                KernelLayout::Warp => (&self.warp_fn, (rows as u32).div_ceil(THREADS / 32)),
            };
            let cfg = LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let (values, times, offsets, starts) = (
                slot.values.device(),
                slot.times.device(),
                slot.offsets.device(),
                slot.starts.device(),
            );
            let out = slot.out.device.as_mut().expect("reserved above");
            slot.launched
                .record(&stream)
                .map_err(|e| err("recording an event", e))?;
            let mut launch = stream.launch_builder(function);
            launch.arg(values).arg(times).arg(offsets).arg(starts);
            launch.arg(&n_windows).arg(&secs);
            launch.arg(&params.kinds).arg(&params.lo).arg(&params.hi);
            launch.arg(&n_feat).arg(&mut *out);
            // SAFETY: the arguments match the signature both kernels share in cuda/features.cu,
            // and every buffer covers what they index (offsets has windows + 1 entries, out
            // rows × width); the grid covers every window in either layout.
            unsafe { launch.launch(cfg) }.map_err(|e| err("launching the feature kernel", e))?;
            slot.computed
                .record(&stream)
                .map_err(|e| err("recording an event", e))?;
            // Read in take_oldest, once the slot's `done` event has passed.
            slot.out.download(&stream, rows * width)?;
        }
        slot.done
            .record(&stream)
            .map_err(|e| err("recording an event", e))?;
        slot.job = Some((ticket, rows, width));
        self.order.push_back(k);
        Ok(())
    }
}
