//! The hybrid scheduler, the one engine the features stage talks to: routes each batch of
//! windows to the CPU reference or an accelerator (`cuda:N`, `emu:N`) by an online cost model
//! per engine (`auto`), or to the accelerator always (`cuda:N`); keeps up to the accelerator's
//! depth of batches in flight on it and, under `auto`, spills a batch to the CPU when that queue
//! is full and the CPU is expected to finish it before the accelerator could (else waits); recomputes a batch on the CPU when an engine fails it (no batch is ever lost) and
//! stops using an engine after 3 failures in a row; recomputes a fraction of the accelerator's
//! batches on the CPU and reports the largest difference (the cross-check); and keeps the
//! per-engine counts of the cost report.
//!
//! Batches go in with [`Hybrid::submit`] and come out, possibly in another order, from
//! [`Hybrid::poll`], each with the ticket `submit` gave it.

use super::cost::{CostBook, EngineReport, SharedCost};
use super::{ComputeBackend, ComputeError, FeatureBatch, Ticket, WindowBatch};
use crate::events::{
    BatchComputed, BatchFailed, BatchSpilled, CrossChecked, DeviceLost, Event as _, Stage,
};
use crate::features::FeatureSet;
use std::collections::VecDeque;
use std::time::Instant;

#[cfg(test)]
mod tests;

struct Engine {
    backend: Box<dyn ComputeBackend>,
    cost: SharedCost,
    report: EngineReport,
    failures_in_a_row: u32,
    disabled: bool,
    /// Batches begun on this engine and not finished yet, oldest first.
    flight: VecDeque<(Ticket, WindowBatch)>,
}

impl Engine {
    /// Learns the cost of a finished batch and counts it.
    fn record(&mut self, batch: &WindowBatch, secs: f64) {
        self.cost.observe(batch.values.len() as f64, secs);
        self.report.batches += 1;
        self.report.windows += batch.len() as u64;
        self.report.values += batch.values.len() as u64;
        self.report.busy_secs += secs;
        BatchComputed {
            stage: Stage::Features,
            engine: &self.report.name,
            windows: batch.len() as u64,
            seconds: secs,
        }
        .emit();
    }
}

/// Routing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// By measured cost (`auto`); a batch for a full accelerator goes to the CPU when that is
    /// expected to be sooner than waiting.
    Cheapest,
    /// Always the accelerator unless it fails (`cuda:N`); a full accelerator is waited for.
    Accelerator,
}

/// A batch the scheduler has finished with.
#[derive(Debug)]
pub struct Completed {
    /// What [`Hybrid::submit`] returned for it.
    pub ticket: Ticket,
    /// The batch, given back.
    pub batch: WindowBatch,
    /// Its features; an error only when the CPU reference failed too.
    pub result: Result<FeatureBatch, ComputeError>,
}

/// The scheduler; engine 0 is always the CPU reference.
pub struct Hybrid {
    engines: Vec<Engine>,
    policy: Policy,
    cross_check: f64,
    tolerance: f64,
    batches: u64,
    next_ticket: Ticket,
    done: VecDeque<Completed>,
}

impl Hybrid {
    /// A scheduler over `cpu` and `others`; `cross_check` is the fraction of non-CPU batches
    /// recomputed on the CPU, `tolerance` the relative difference that gets logged.
    pub fn new(
        cpu: Box<dyn ComputeBackend>,
        others: Vec<Box<dyn ComputeBackend>>,
        policy: Policy,
        cross_check: f64,
        tolerance: f64,
    ) -> Self {
        let engines = std::iter::once(cpu)
            .chain(others)
            .map(|backend| Engine {
                report: EngineReport {
                    name: backend.name().to_string(),
                    ..Default::default()
                },
                backend,
                cost: SharedCost::default(),
                failures_in_a_row: 0,
                disabled: false,
                flight: VecDeque::new(),
            })
            .collect();
        Self {
            engines,
            policy,
            cross_check: cross_check.clamp(0.0, 1.0),
            tolerance,
            batches: 0,
            next_ticket: 0,
            done: VecDeque::new(),
        }
    }

    /// Makes the engines learn their costs in `book` (shared by the workers of a run) instead
    /// of on their own.
    pub fn share_costs(&mut self, book: &CostBook) {
        for e in &mut self.engines {
            e.cost = book.get(&e.report.name);
        }
    }

    /// True when an accelerator is in use (batches are then worth filling up).
    pub fn accelerated(&self) -> bool {
        self.engines.iter().skip(1).any(|e| !e.disabled)
    }

    /// Batches submitted and not yet returned by [`Self::poll`].
    pub fn outstanding(&self) -> usize {
        self.done.len() + self.engines.iter().map(|e| e.flight.len()).sum::<usize>()
    }

    /// Per-engine counts so far.
    pub fn engine_reports(&self) -> Vec<EngineReport> {
        self.engines.iter().map(|e| e.report.clone()).collect()
    }

    /// The engine for the next batch of `values` values.
    fn choose(&self, values: f64) -> usize {
        let live: Vec<usize> = (0..self.engines.len())
            .filter(|&i| !self.engines[i].disabled)
            .collect();
        if self.policy == Policy::Accelerator {
            return live.iter().copied().find(|&i| i > 0).unwrap_or(0);
        }
        // Measure every engine a few times first (over the run's workers, with shared costs),
        // then now and then again (every 64th batch) so that estimates follow changing
        // conditions.
        if let Some(&i) = live.iter().find(|&&i| self.engines[i].cost.samples() < 3) {
            return i;
        }
        if self.batches % 64 == 63 && live.len() > 1 {
            return live[(self.batches as usize / 64) % live.len()];
        }
        live.iter()
            .copied()
            .min_by(|&a, &b| {
                let cost = |i: usize| self.engines[i].cost.predict(values);
                cost(a).total_cmp(&cost(b))
            })
            .unwrap_or(0)
    }

    /// True when the CPU is expected to finish a batch of `values` values before full
    /// accelerator `i` could (its batches in flight first, then this one).
    fn cpu_sooner(&self, i: usize, values: usize) -> bool {
        let e = &self.engines[i];
        let queued: f64 = e
            .flight
            .iter()
            .map(|(_, b)| e.cost.predict(b.values.len() as f64))
            .sum();
        let cpu = self.engines[0].cost.predict(values as f64);
        self.engines[0].cost.samples() == 0 || cpu < queued + e.cost.predict(values as f64)
    }

    /// Hands `batch` to an engine; its features come back from [`Self::poll`] under the
    /// returned ticket. Synchronous engines (the CPU) finish it before this returns.
    pub fn submit(&mut self, features: &FeatureSet, window_ms: i64, batch: WindowBatch) -> Ticket {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let mut i = self.choose(batch.values.len() as f64);
        self.batches += 1;
        let depth = self.engines[i].backend.depth();
        if i > 0 && depth > 0 {
            if self.engines[i].flight.len() >= depth {
                if self.policy == Policy::Cheapest && self.cpu_sooner(i, batch.values.len()) {
                    self.engines[i].report.spilled += 1;
                    BatchSpilled {
                        engine: &self.engines[i].report.name,
                        windows: batch.len() as u64,
                    }
                    .emit();
                    i = 0;
                } else {
                    self.collect(i, features, window_ms, true);
                }
            }
            if i > 0 {
                let e = &mut self.engines[i];
                match e.backend.begin(ticket, features, window_ms, &batch) {
                    Ok(()) => {
                        e.flight.push_back((ticket, batch));
                        return ticket;
                    }
                    Err(err) => {
                        self.failed(i, &err, batch.len());
                        i = 0;
                    }
                }
            }
        }
        if i == 0 {
            let result = self.cpu(features, window_ms, &batch);
            self.done.push_back(Completed {
                ticket,
                batch,
                result,
            });
        } else {
            let started = Instant::now();
            let mut out = FeatureBatch::default();
            let outcome = self.engines[i]
                .backend
                .features(features, window_ms, &batch, &mut out)
                .map(|()| (out, started.elapsed().as_secs_f64()));
            self.settle(i, features, window_ms, ticket, batch, outcome);
        }
        ticket
    }

    /// Records what engine `i` (an accelerator) gave for a batch, recomputing it on the CPU
    /// when it failed, and queues the batch as completed.
    fn settle(
        &mut self,
        i: usize,
        features: &FeatureSet,
        window_ms: i64,
        ticket: Ticket,
        batch: WindowBatch,
        outcome: Result<(FeatureBatch, f64), ComputeError>,
    ) {
        let result = match outcome {
            Ok((out, secs)) => self.succeeded(i, features, window_ms, &batch, out, secs),
            Err(err) => {
                self.failed(i, &err, batch.len());
                self.cpu(features, window_ms, &batch)
            }
        };
        self.done.push_back(Completed {
            ticket,
            batch,
            result,
        });
    }

    /// Every batch finished since the last call; with `wait`, at least one when any is
    /// outstanding (blocking for the oldest in flight).
    pub fn poll(&mut self, features: &FeatureSet, window_ms: i64, wait: bool) -> Vec<Completed> {
        for i in 1..self.engines.len() {
            self.collect(i, features, window_ms, false);
        }
        if wait && self.done.is_empty() {
            let oldest = (1..self.engines.len())
                .filter_map(|i| self.engines[i].flight.front().map(|(t, _)| (*t, i)))
                .min();
            if let Some((_, i)) = oldest {
                self.collect(i, features, window_ms, true);
            }
        }
        self.done.drain(..).collect()
    }

    /// Takes engine `i`'s finished batches (with `wait`, blocking for its oldest first).
    fn collect(&mut self, i: usize, features: &FeatureSet, window_ms: i64, wait: bool) {
        let mut wait = wait;
        while !self.engines[i].flight.is_empty() {
            let finished = self.engines[i].backend.finish(wait);
            let Some(f) = finished else {
                if wait {
                    // An engine that cannot say when its batches finish has lost them: they
                    // are recomputed on the CPU rather than waited for forever.
                    let err = ComputeError::Device(format!(
                        "{} lost {} batches in flight",
                        self.engines[i].report.name,
                        self.engines[i].flight.len()
                    ));
                    while let Some((ticket, batch)) = self.engines[i].flight.pop_front() {
                        self.settle(i, features, window_ms, ticket, batch, Err(err.clone()));
                    }
                }
                return;
            };
            wait = false;
            let flight = &mut self.engines[i].flight;
            let Some(k) = flight.iter().position(|(t, _)| *t == f.ticket) else {
                tracing::error!(
                    "{}: finished unknown batch {}",
                    self.engines[i].report.name,
                    f.ticket
                );
                continue;
            };
            let (ticket, batch) = flight.remove(k).expect("position is in range");
            let outcome = f.result.map(|out| (out, f.busy_secs));
            self.settle(i, features, window_ms, ticket, batch, outcome);
        }
    }

    /// Counts a batch accelerator `i` computed, and cross-checks it when one is due.
    fn succeeded(
        &mut self,
        i: usize,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: FeatureBatch,
        secs: f64,
    ) -> Result<FeatureBatch, ComputeError> {
        let e = &mut self.engines[i];
        e.record(batch, secs);
        e.failures_in_a_row = 0;
        // Cross-check: every k-th batch of the engine, k = 1 / fraction.
        let every = (1.0 / self.cross_check).round().max(1.0) as u64;
        if self.cross_check > 0.0 && e.report.batches.is_multiple_of(every) {
            let reference = self.cpu(features, window_ms, batch)?;
            let (mut abs, mut rel) = (0.0f64, 0.0f64);
            for (a, b) in reference.data.iter().zip(&out.data) {
                if a == b || (a.is_nan() && b.is_nan()) {
                    continue;
                }
                let d = (a - b).abs();
                abs = abs.max(d);
                rel = rel.max(d / a.abs().max(b.abs()).max(f64::MIN_POSITIVE));
            }
            let e = &mut self.engines[i].report;
            e.cross_checked += 1;
            e.max_abs_diff = e.max_abs_diff.max(abs);
            e.max_rel_diff = e.max_rel_diff.max(rel);
            CrossChecked {
                stage: Stage::Features,
                engine: &e.name,
                windows: batch.len() as u64,
                max_abs: abs,
                max_rel: Some(rel),
                mismatch: rel > self.tolerance || reference.data.len() != out.data.len(),
            }
            .emit();
        }
        Ok(out)
    }

    /// Counts a batch engine `i` failed; stops using it after 3 failures in a row.
    fn failed(&mut self, i: usize, err: &ComputeError, windows: usize) {
        let e = &mut self.engines[i];
        e.report.errors += 1;
        e.failures_in_a_row += 1;
        BatchFailed {
            stage: Stage::Features,
            engine: &e.report.name,
            windows: windows as u64,
            error: err,
            lost: false,
        }
        .emit();
        if e.disabled {
            return;
        }
        let reason = if let ComputeError::Lost(_) = err {
            "is lost for this run"
        } else if e.failures_in_a_row >= 3 {
            "failed 3 batches in a row"
        } else {
            return;
        };
        e.disabled = true;
        DeviceLost {
            stage: Stage::Features,
            engine: &e.report.name,
            reason,
        }
        .emit();
    }

    /// Computes `batch` on the CPU reference.
    fn cpu(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
    ) -> Result<FeatureBatch, ComputeError> {
        let started = Instant::now();
        let mut out = FeatureBatch::default();
        self.engines[0]
            .backend
            .features(features, window_ms, batch, &mut out)?;
        self.engines[0].record(batch, started.elapsed().as_secs_f64());
        Ok(out)
    }
}

/// The scheduler used synchronously: one batch in, its features out.
impl ComputeBackend for Hybrid {
    fn name(&self) -> &str {
        "auto"
    }

    fn report(&self) -> Vec<EngineReport> {
        self.engine_reports()
    }

    fn features(
        &mut self,
        features: &FeatureSet,
        window_ms: i64,
        batch: &WindowBatch,
        out: &mut FeatureBatch,
    ) -> Result<(), ComputeError> {
        let ticket = self.submit(features, window_ms, batch.clone());
        let mut others = Vec::new();
        let mine = loop {
            let done = self.poll(features, window_ms, true);
            if done.is_empty() {
                break None;
            }
            let mut found = None;
            for c in done {
                if c.ticket == ticket {
                    found = Some(c);
                } else {
                    others.push(c);
                }
            }
            if found.is_some() {
                break found;
            }
        };
        self.done.extend(others);
        let mine = mine.ok_or_else(|| ComputeError::Device("a batch was lost".into()))?;
        *out = mine.result?;
        Ok(())
    }
}
